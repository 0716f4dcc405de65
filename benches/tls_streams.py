#!/usr/bin/env python3
"""Holds COUNT throttled HTTPS streams of PATH on 127.0.0.1:PORT for SECONDS,
reading each as it arrives (like players that play), with asyncio and the
ssl module; prints how many streams lived to the end and the bytes read.
With `idle`, each connection reads one whole response to PATH and then
stays open with nothing to do (an idle keep-alive connection).

    tls_streams.py PORT PATH COUNT SECONDS [idle]
"""
import asyncio
import ssl
import sys


async def stream(port, path, until, context, totals, idle):
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="localhost")
    except OSError:
        return
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    loop = asyncio.get_running_loop()
    try:
        if idle:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            totals["bytes"] += len(head) + len(await reader.readexactly(length))
        while loop.time() < until:
            try:
                data = await asyncio.wait_for(reader.read(65536), until - loop.time())
            except asyncio.TimeoutError:
                break
            if not data:
                return
            totals["bytes"] += len(data)
        totals["alive"] += 1
    except (OSError, ssl.SSLError):
        return
    except (asyncio.IncompleteReadError, StopIteration, ValueError):
        return
    finally:
        writer.close()


async def main():
    port, path, count, seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    idle = sys.argv[5:] == ["idle"]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    totals = {"bytes": 0, "alive": 0}
    until = asyncio.get_running_loop().time() + seconds
    tasks = []
    for _ in range(count):
        tasks.append(asyncio.create_task(stream(port, path, until, context, totals, idle)))
        await asyncio.sleep(0.001)
    await asyncio.gather(*tasks)
    print(f"alive {totals['alive']} bytes {totals['bytes']}", flush=True)


asyncio.run(main())

#!/usr/bin/env bash
# The monitor under load: its own ceiling, and the workers' throughput with
# and without 1 000 admin requests per second.
#
# Loomiere (access log off) serves a 10 KB file to wrk -t1 -c50; in
# alternate rounds a paced client asks the admin port for
# /monitor?format=json and /metrics in turn, 1 000 times a second (one
# connection each, as the monitor closes after every answer). Then wrk alone
# against /monitor measures the monitor's ceiling.
#
#   benches/monitor.sh [SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
duration=${1:-10}
rounds=${2:-3}
workers=${WORKERS:-$(nproc)}
for tool in wrk curl python3; do
    command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk curl python3 >/dev/null; }
done
build_release

work=$(mktemp -d /tmp/loomiere-monitor.XXXXXX)
trap '[ -n "${lpid:-}" ] && kill -QUIT "$lpid" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/www"
head -c 10240 /dev/urandom > "$work/www/small.bin"
chmod -R a+rX "$work"
loomiere_port=18580
loomiere_admin=18581
start_loomiere "options.mimes['application/octet-stream'] = 'bin'"

# pace SECONDS RATE: admin requests at RATE per second; prints the rate achieved.
pace() {
    python3 - "$loomiere_admin" "$1" "$2" <<'PY'
import socket, sys, time
port, seconds, rate = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
paths = [b"/monitor?format=json", b"/metrics"]
start = time.monotonic()
done = 0
while True:
    now = time.monotonic()
    if now - start >= seconds:
        break
    due = start + done / rate
    if due > now:
        time.sleep(due - now)
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET " + paths[done % 2] + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()
    done += 1
print("%.0f" % (done / (time.monotonic() - start)))
PY
}

rps() { wrk -t1 -c50 -d"${duration}s" "$1" | awk '/Requests\/sec/ { print $2 }'; }

# The monitor is the master's last child.
monitor_pid=$(tr ' ' '\n' < "/proc/$lpid/task/$lpid/children" | grep -v '^$' | sort -n | tail -1)
ticks() { awk '{ print $14 + $15 }' "/proc/$monitor_pid/stat"; }
alone_sum=0; loaded_sum=0; admin_sum=0; monitor_ticks=0
for round in $(seq "$rounds"); do
    alone=$(rps "http://127.0.0.1:$loomiere_port/small.bin")
    before=$(ticks)
    pace "$duration" 1000 > "$work/admin-rate" &
    pacer=$!
    loaded=$(rps "http://127.0.0.1:$loomiere_port/small.bin")
    wait "$pacer"
    monitor_ticks=$((monitor_ticks + $(ticks) - before))
    admin=$(cat "$work/admin-rate")
    echo "round $round: workers alone $alone req/s; with the admin load $loaded req/s (admin $admin req/s)"
    alone_sum=$(python3 -c "print($alone_sum + $alone)")
    loaded_sum=$(python3 -c "print($loaded_sum + $loaded)")
    admin_sum=$(python3 -c "print($admin_sum + $admin)")
done
ceiling=$(wrk -t1 -c4 -d"${duration}s" "http://127.0.0.1:$loomiere_admin/monitor?format=json" | awk '/Requests\/sec/ { print $2 }')
python3 - "$alone_sum" "$loaded_sum" "$admin_sum" "$rounds" "$ceiling" "$monitor_ticks" "$(getconf CLK_TCK)" "$duration" <<'PY'
import sys
alone, loaded, admin, rounds, ceiling, ticks, hz, seconds = map(float, sys.argv[1:])
print(f"\nmean over {rounds:.0f} rounds: workers alone {alone/rounds:.0f} req/s, "
      f"with {admin/rounds:.0f} admin req/s {loaded/rounds:.0f} req/s (ratio {loaded/alone:.3f})")
print(f"monitor CPU under that load: {ticks / hz / (rounds * seconds) * 100:.1f} % of one core, "
      f"{ticks / hz / max(admin / rounds * rounds * seconds, 1) * 1e6:.0f} µs per admin request")
print(f"monitor alone, /monitor?format=json: {ceiling:.0f} req/s")
# Rows for benches/RESULTS.md (nginx has no counterpart: its stub_status has
# no per-host or per-code counters).
print(f"result|the monitor (Loomiere only)|workers' requests/s with 1 000 admin requests/s, against alone||{loaded/rounds:.0f}|{loaded/alone:.2f}\u00d7")
print(f"result|the monitor (Loomiere only)|monitor CPU per admin request||{ticks / hz / max(admin * seconds, 1) * 1e6:.0f} µs|")
print(f"result|the monitor (Loomiere only)|monitor alone, /monitor?format=json: requests/s||{ceiling:.0f}|")
PY

#!/usr/bin/env bash
# Memory per idle keep-alive connection, Loomiere against nginx.
#
# CONNECTIONS clients (Python, at most 5 000 sockets per process: the
# open-file limit here is 20 000 per process) each fetch a 1 KB file on a
# keep-alive connection and then stay connected, idle. The servers' memory
# is the PSS of all their processes (/proc/PID/smaps_rollup), read before the
# clients connect and once they all idle; the difference divided by the
# connections still open is the memory an idle viewer costs (a player that
# paused, or a page left open). Both servers keep idle connections for 120 s.
#
#   benches/idle.sh [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
connections=${1:-10000}
rounds=${2:-2}
workers=${WORKERS:-$(nproc)}
per_process=5000

for tool in nginx curl python3; do
    command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx curl python3 >/dev/null; }
done
build_release

work=$(mktemp -d /tmp/loomiere-idle.XXXXXX)
trap 'stop_servers; rm -rf "$work"' EXIT
mkdir -p "$work/www"
head -c 1024 /dev/urandom > "$work/www/one.bin"
chmod -R a+rX "$work"

nginx_port=18780
loomiere_port=18781
nginx_connections=$((connections + 1000))
nginx_http='keepalive_timeout 120s;'

# pss PID: PSS in KiB of a process and its children.
pss() {
    local total=0 pid
    for pid in $1 $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
        [ -r "/proc/$pid/smaps_rollup" ] || continue
        total=$((total + $(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup")))
    done
    echo "$total"
}

# The idle clients: connect COUNT sockets, fetch the file once on each,
# print "ready", wait for a line on stdin, then print how many are still open.
cat > "$work/idle.py" <<'PY'
import selectors, socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
request = b"GET /one.bin HTTP/1.1\r\nHost: bench\r\n\r\n"
sockets, pending = [], {}
selector = selectors.DefaultSelector()
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(request)
    s.setblocking(False)
    selector.register(s, selectors.EVENT_READ)
    pending[s] = b""
    sockets.append(s)
    # Keep the accept queue short: read what has come before opening more.
    for key, _ in selector.select(timeout=0):
        sock = key.fileobj
        pending[sock] += sock.recv(65536)
def answered(received):
    _, blank_line, body = received.partition(b"\r\n\r\n")
    return blank_line and len(body) >= 1024
while not all(answered(v) for v in pending.values()):
    for key, _ in selector.select(timeout=5):
        sock = key.fileobj
        data = sock.recv(65536)
        if not data:
            print("a connection closed before its answer", file=sys.stderr)
            sys.exit(1)
        pending[sock] += data
bad = [v[:12] for v in pending.values() if not v.startswith(b"HTTP/1.1 200")]
if bad:
    print("answers other than 200: %d, e.g. %r" % (len(bad), bad[0]), file=sys.stderr)
    sys.exit(1)
print("ready", flush=True)
sys.stdin.readline()
open_now = 0
for s in sockets:
    try:
        open_now += s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        open_now += 1
    except OSError:
        pass
print(open_now, flush=True)
PY

# idle_run PID PORT: prints "KiB-per-connection connections-still-open".
idle_run() {
    local root=$1 port=$2 processes=$(( (connections + per_process - 1) / per_process )) i
    sleep 1
    local before after
    before=$(pss "$root")
    local fifos=() readers=()
    for i in $(seq 0 $((processes - 1))); do
        local share=$(( connections / processes + (i < connections % processes ? 1 : 0) ))
        mkfifo "$work/go.$i"
        python3 "$work/idle.py" "$port" "$share" < "$work/go.$i" > "$work/idle.$i" &
        readers+=($!)
        exec {fd}>"$work/go.$i"
        fifos+=($fd)
    done
    for i in $(seq 0 $((processes - 1))); do
        until grep -q ready "$work/idle.$i" 2>/dev/null; do
            kill -0 "${readers[$i]}" 2>/dev/null || { echo "idle client $i failed" >&2; exit 1; }
            sleep 0.2
        done
    done
    sleep 2
    after=$(pss "$root")
    for fd in "${fifos[@]}"; do echo go >&"$fd"; exec {fd}>&-; done
    for pid in "${readers[@]}"; do wait "$pid"; done
    local open_now
    open_now=$(cat "$work"/idle.* | grep -v ready | awk '{ s += $1 } END { print s }')
    rm -f "$work"/idle.[0-9]* "$work"/go.*
    echo "$(echo "($after - $before) * 1.024 / $open_now" | bc -l) $open_now"
}

sum_nginx=0 sum_loomiere=0
for round in $(seq "$rounds"); do
    start_nginx
    read -r nginx_kb nginx_open < <(idle_run "$(cat "$work/nginx.pid")" $nginx_port)
    stop_servers
    start_loomiere "options.clients = $((connections + 1000))
options.keepalive_timeout = 120
options.mimes['application/octet-stream'] = 'bin'"
    read -r loomiere_kb loomiere_open < <(idle_run "$lpid" $loomiere_port)
    stop_servers
    printf 'round %d: nginx %.2f KB per idle connection (%d open), loomiere %.2f KB (%d open)\n' \
        "$round" "$nginx_kb" "$nginx_open" "$loomiere_kb" "$loomiere_open"
    sum_nginx=$(echo "$sum_nginx + $nginx_kb" | bc -l)
    sum_loomiere=$(echo "$sum_loomiere + $loomiere_kb" | bc -l)
done
result "idle keep-alive connections ($connections)" "server memory (PSS) per idle connection" \
    "$(printf '%.2f KB' "$(echo "$sum_nginx / $rounds" | bc -l)")" "$(printf '%.2f KB' "$(echo "$sum_loomiere / $rounds" | bc -l)")" \
    "$(ratio "$sum_loomiere" "$sum_nginx")"

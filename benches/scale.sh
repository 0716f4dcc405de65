#!/usr/bin/env bash
# Massive scale: STREAMS low-bitrate players (low600.mp4, about 43 kbit/s)
# held at once against Loomiere (throttle 20) and nginx limit_rate (1.1× the
# film's mean rate after 20 s of it), for each size given.
#
# Both servers get the same worker count: enough that no worker needs more
# than 18 000 descriptors (this machine caps a process at 20 000), and at
# least two. Players (benches/players) run 5 000 to a process, each process
# connecting from its own address in 127.0.0.0/8, so no ephemeral-port range
# (about 28 000 ports per source address) runs out. nginx gets
# open_file_cache, as an operator at this scale would set it. The players
# run at nice 10: on a machine of its own the server would not wait for the
# CPU behind twenty load generators, and a slice's lag should say what the
# server does, not how the scheduler shares two cores.
#
# Reported per size and server, over a steady window after the ramp-up:
# streams held, server memory (PSS of all its processes, less the idle
# server's) per stream, server CPU per stream-second (µs), Loomiere's slice
# lag p50/p99 (from its /monitor histogram), player stalls, and the kernel's
# TCP memory (/proc/net/sockstat, pages of 4 KiB: both ends of every
# connection, since the players are on this machine too) per stream.
#
#   benches/scale.sh [STREAMS...]        default: 1000 10000 50000 100000
#   WINDOW=20 benches/scale.sh ...       the steady window in seconds
#   ARRIVALS=2500 benches/scale.sh ...   new players a second while ramping up
#                                        (each takes a 20 s lead at line speed)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 50000 100000)
window=${WINDOW:-20}
arrivals=${ARRIVALS:-2500}
per_process=5000
per_worker=18000

for tool in nginx ffmpeg ffprobe curl python3; do
    command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx ffmpeg curl python3 >/dev/null; }
done
build_release
CARGO_TARGET_DIR=target cargo build --release --quiet --manifest-path benches/players/Cargo.toml
player_bin=target/release/loomiere-players
make_films

work=$(mktemp -d /tmp/loomiere-scale.XXXXXX)
trap 'stop_servers; rm -rf "$work"' EXIT
mkdir -p "$work/www"
ln "$media/low600.mp4" "$work/www/low600.mp4" 2>/dev/null || cp "$media/low600.mp4" "$work/www/low600.mp4"
chmod -R a+rX "$work"

loomiere_port=18490
nginx_port=18491
loomiere_admin=18492
low_rate=$(python3 -c "import sys; print(int(int(sys.argv[1]) / float(open(sys.argv[2]).read().split()[-2])))" \
    "$(stat -c %s "$media/low600.mp4")" "$media/low600.need")
limit=$((low_rate * 11 / 10))

# TCP memory in use, in pages (the "mem" field of sockstat's TCP line).
tcp_pages() { awk '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "mem") print $(i + 1) }' /proc/net/sockstat; }

# hold NAME KEY ROOT_PID ADMIN|"" STREAMS: holds STREAMS players through a
# ramp and the steady window; writes the figures to $work/scale.KEY.
hold() {
    local name=$1 key=$2 root=$3 admin=$4 count=$5
    local processes=$(( (count + per_process - 1) / per_process ))
    local ramp=$(( count / arrivals + 10 )) idle start end hist0= hist1= tcp0 tcp1 i pids=()
    idle=$(measure $(server_pids "$root"))
    tcp0=$(tcp_pages)
    for i in $(seq 0 $((processes - 1))); do
        local share=$(( count / processes + (i < count % processes ? 1 : 0) ))
        nice -n 10 "$player_bin" --port "$port" --path /low600.mp4 --curve "$media/low600.need" \
            --count "$share" --run-for $((ramp + window + 5)) \
            --connect-rate "$(python3 -c "print($arrivals / $processes)")" \
            --source "127.0.$((i / 200 + 1)).$((i % 200 + 10))" > "$work/players.$i" 2> "$work/errors.$i" &
        pids+=($!)
    done
    sleep "$ramp"
    start=$(measure $(server_pids "$root"))
    [ -n "$admin" ] && hist0=$(curl -s "http://127.0.0.1:$admin/monitor?format=json")
    sleep $((window / 2))
    tcp1=$(tcp_pages)
    sleep $((window - window / 2))
    end=$(measure $(server_pids "$root"))
    [ -n "$admin" ] && hist1=$(curl -s "http://127.0.0.1:$admin/monitor?format=json")
    for i in "${pids[@]}"; do wait "$i" || true; done
    cat "$work"/errors.* >&2 2>/dev/null || true
    cat "$work"/players.[0-9]* | awk '{ s[$1] += $2 } END { for (k in s) print k, s[k] }' > "$work/players.sum"
    rm -f "$work"/players.[0-9]* "$work"/errors.*
    local lags="- -"
    [ -n "$admin" ] && lags=$(lag_percentiles "$hist0" "$hist1")
    python3 - "$name" "$idle" "$start" "$end" "$window" "$(getconf CLK_TCK)" "$count" "$lags" \
        "$tcp0" "$tcp1" "$work/players.sum" "$work/scale.$key" <<'PY'
import sys
name, idle, start, end = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
window, hz, count = float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
p50, p99 = sys.argv[8].split()
tcp0, tcp1 = int(sys.argv[9]), int(sys.argv[10])
r = {k: float(v) for k, v in (l.split() for l in open(sys.argv[11]))}
held = int(r.get("held", 0))
per = max(held, 1)
pss = (int(end[1]) - int(idle[1])) * 1.024 / per            # KB per stream
cpu = (int(end[0]) - int(start[0])) / hz * 1e6 / (per * window)  # µs per stream-second
tcp = tcp1 * 4.096 / per                                    # KB per stream, both ends
stalls = int(r.get("stalls", 0))
print("%-30s %8d %8d %10.2f %12.2f %8s %8s %8d %10.2f" % (name, count, held, pss, cpu, p50, p99, stalls, tcp))
open(sys.argv[12], "w").write("%d %.2f %.2f %s %s %d %.2f\n" % (held, pss, cpu, p50, p99, stalls, tcp))
PY
}

echo "low600.mp4: $(stat -c %s "$media/low600.mp4") bytes, mean $((low_rate / 1024)) KiB/s; nginx limit_rate $limit"
printf '%-30s %8s %8s %10s %12s %8s %8s %8s %10s\n' server streams held "PSS KB/st" "CPU us/st-s" "lag p50" "lag p99" stalls "TCP KB/st"
for count in "${sizes[@]}"; do
    workers=$(( (count + per_worker - 1) / per_worker ))
    [ "$workers" -ge 2 ] || workers=2
    port=$loomiere_port
    start_loomiere "options.clients = $((count * 2 + 1000))
options.throttle = 20"
    hold "Loomiere, $workers workers" loomiere "$lpid" "$loomiere_admin" "$count"
    stop_servers
    port=$nginx_port
    nginx_connections=$(( count / workers + 2000 ))
    # One descriptor per file, not per stream: without open_file_cache each
    # nginx connection holds its own, and the 20 000-descriptor cap stops a
    # worker at 10 000 streams.
    nginx_http="open_file_cache max=1000 inactive=60s;"
    start_nginx "limit_rate $limit; limit_rate_after $((low_rate * 20));"
    hold "nginx limit_rate, $workers workers" nginx "$(cat "$work/nginx.pid")" "" "$count"
    stop_servers
    read -r held_l pss_l cpu_l p50_l p99_l stalls_l tcp_l < "$work/scale.loomiere"
    read -r held_n pss_n cpu_n _ _ stalls_n tcp_n < "$work/scale.nginx"
    section="$count throttled streams at once, $workers workers (nginx: limit_rate)"
    result "$section" "streams held; stalls" "$held_n; $stalls_n" "$held_l; $stalls_l" ""
    result "$section" "server memory (PSS) per stream" "$pss_n KB" "$pss_l KB" "$(ratio "$pss_l" "$pss_n")"
    result "$section" "server CPU per stream-second" "$cpu_n µs" "$cpu_l µs" "$(ratio "$cpu_l" "$cpu_n")"
    result "$section" "Loomiere's slice lag p50 / p99" "" "$p50_l / $p99_l ms" ""
    result "$section" "kernel TCP memory per stream" "$tcp_n KB" "$tcp_l KB" "$(ratio "$tcp_l" "$tcp_n")"
done

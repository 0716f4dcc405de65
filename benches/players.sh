#!/usr/bin/env bash
# Bandwidth conservation with simulated players: Loomiere (throttle 5 and 20)
# against nginx without a limit and nginx with the limit_rate an operator
# would set (1.1 × the film's mean bitrate after 20 s of it).
#
# Players (benches/players, on mio, spread over processes of at most 5 000
# connections: the open-file limit here is 20 000 per process) read what the
# network gives and play it out at the media's own rate, from a map of media
# time to bytes taken with ffprobe -show_packets. Half of them quit after
# 60 s. Reported per server: stalls and their total time, bytes per player,
# bytes per player that quit after 60 s against the bytes of the first 80 s
# of media, and the server's CPU time and memory (all its processes, /proc).
# Then STREAMS players of a low-bitrate 10-minute film held at once: server
# memory (PSS) per stream, server CPU as % of one core over a steady window,
# and Loomiere's slice lag (p99 from its /monitor histogram).
# Last, player hints: PLAYERS players of which 30 % pause once for 60 s,
# with and without hints (the players report their position to /.hint as
# hint.js does): bytes sent per pausing player, and stalls after resuming.
#
#   benches/players.sh [RUN_SECONDS] [PLAYERS] [STREAMS]
#   ONLY=bandwidth|streams|pauses benches/players.sh ...   one part only
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
run_for=${1:-90}
players=${2:-100}
streams=${3:-20000}
workers=${WORKERS:-$(nproc)}
per_process=5000
only=${ONLY:-all}
part() { [ "$only" = all ] || [ "$only" = "$1" ]; }

for tool in nginx ffmpeg ffprobe curl python3; do
    command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx ffmpeg curl python3 >/dev/null; }
done
build_release
CARGO_TARGET_DIR=target cargo build --release --quiet --manifest-path benches/players/Cargo.toml
player_bin=target/release/loomiere-players

make_films

work=$(mktemp -d /tmp/loomiere-players.XXXXXX)
trap 'stop_servers; rm -rf "$work"' EXIT
mkdir -p "$work/www"
for film in scenes600 low600; do
    ln "$media/$film.mp4" "$work/www/$film.mp4" 2>/dev/null || cp "$media/$film.mp4" "$work/www/$film.mp4"
done
chmod -R a+rX "$work"

bitrate() { # mean bytes per second of a film
    python3 -c "import sys; size=int(sys.argv[1]); t=float(open(sys.argv[2]).read().split()[-2]); print(int(size/t))" \
        "$(stat -c %s "$media/$1.mp4")" "$media/$1.need"
}
needed_by() { # bytes needed to play the first $2 seconds of film $1
    awk -v t="$2" '$1 <= t { b = $2 } END { print b }' "$media/$1.need"
}

# run_players PORT FILM COUNT QUITTERS RUN_FOR [PLAYER FLAGS...] > summed "key value" lines
run_players() {
    local port=$1 film=$2 count=$3 quitters=$4 run=$5
    shift 5
    local processes=$(( (count + per_process - 1) / per_process ))
    local pids=() i
    for i in $(seq 0 $((processes - 1))); do
        local share=$(( count / processes + (i < count % processes ? 1 : 0) ))
        local quit_share=$(( quitters / processes + (i < quitters % processes ? 1 : 0) ))
        local extra=("$@")
        if [ -n "${pausers:-}" ]; then
            extra+=(--pausers $(( pausers / processes + (i < pausers % processes ? 1 : 0) )))
        fi
        "$player_bin" --port "$port" --path "/$film.mp4" --curve "$media/$film.need" \
            --count "$share" --quitters "$quit_share" --quit-after 60 --run-for "$run" \
            "${extra[@]}" > "$work/players.$i" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    cat "$work"/players.* | awk '{ s[$1] += $2 } END { for (k in s) print k, s[k] }'
    rm -f "$work"/players.*
}

loomiere_port=18480
nginx_port=18481
loomiere_admin=18482
nginx_connections=12000
vbr_rate=$(bitrate scenes600)
low_rate=$(bitrate low600)
echo "scenes600.mp4: $(stat -c %s "$media/scenes600.mp4") bytes, mean $((vbr_rate / 1024)) KiB/s; first 80 s: $(needed_by scenes600 80) bytes"
echo "low600.mp4: $(stat -c %s "$media/low600.mp4") bytes, mean $((low_rate / 1024)) KiB/s"
echo "$workers workers; $players players for $run_for s (half quit at 60 s)"
echo

if part bandwidth; then
printf '%-32s %7s %8s %9s %14s %16s %10s %9s\n' server stalls stalled "stall s" "bytes/player" "quitter/80s" "CPU s" "PSS MB"
# bandwidth_run NAME PORT ROOT_PID KEY: prints a row and keeps its figures in
# $work/bandwidth.KEY for the result lines.
bandwidth_run() {
    local name=$1 port=$2 root=$3 key=$4
    local before after result
    before=$(measure $(server_pids "$root"))
    result=$(run_players "$port" scenes600 "$players" $((players / 2)) "$run_for")
    after=$(measure $(server_pids "$root"))
    python3 - "$name" "$before" "$after" "$(needed_by scenes600 80)" "$(getconf CLK_TCK)" "$work/bandwidth.$key" <<PY
import sys
name, before, after, need80, hz = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), int(sys.argv[4]), int(sys.argv[5])
r = {k: float(v) for k, v in (l.split() for l in """$result""".strip().splitlines())}
stayed = r["stayed_bytes"] / max(r["stayed"], 1)
quit = r["quit_bytes"] / max(r["quit"], 1)
quit_max = r["quit_bytes_max"]
cpu = (int(after[0]) - int(before[0])) / hz
print("%-32s %7d %8d %9.1f %14.0f %9.0f (%.2fx) %10.1f %9.0f" % (name, r["stalls"], r["stalled_players"], r["stall_seconds"],
      stayed, quit_max, quit_max / need80, cpu, int(after[1]) / 1024))
open(sys.argv[6], "w").write("%d %d %.0f %.0f %.2f\\n" % (r["stalls"], r["stalled_players"], stayed, quit_max, quit_max / need80))
PY
}

start_loomiere "options.throttle = 5"
bandwidth_run "Loomiere throttle=5" "$loomiere_port" "$lpid" throttle5
stop_servers
start_loomiere "options.throttle = 20"
bandwidth_run "Loomiere throttle=20" "$loomiere_port" "$lpid" throttle20
stop_servers
start_nginx
bandwidth_run "nginx, no limit" "$nginx_port" "$(cat "$work/nginx.pid")" nginx
stop_servers
limit=$((vbr_rate * 11 / 10))
start_nginx "limit_rate $limit; limit_rate_after $((vbr_rate * 20));"
bandwidth_run "nginx limit_rate=${limit}" "$nginx_port" "$(cat "$work/nginx.pid")" nginx_limited
stop_servers
read -r _ _ _ quit_nginx _ < "$work/bandwidth.nginx"
read -r stalls_limited stalled_limited _ _ _ < "$work/bandwidth.nginx_limited"
read -r stalls20 stalled20 _ quit20 need20 < "$work/bandwidth.throttle20"
section="bandwidth ($players simulated players, ${run_for} s, throttle = 20)"
result "$section" "bytes to a player quitting at 60 s (nginx without a limit)" "$quit_nginx" "$quit20 ($need20× the first 80 s)" "$(ratio "$quit20" "$quit_nginx")"
result "$section" "stalls, players stalled (nginx limit_rate 1.1× the mean)" "$stalls_limited, $stalled_limited" "$stalls20, $stalled20" ""
fi

if part streams; then
echo
echo "$streams streams of low600.mp4 at once (players ramp up, then a 15 s steady window):"
printf '%-34s %9s %12s %14s %12s %10s\n' server streams "PSS KB/str" "CPU % of core" "lag p99 ms" "stalls"
# many_streams NAME PORT ROOT_PID ADMIN_PORT|"" KEY
many_streams() {
    local name=$1 port=$2 root=$3 admin=$4
    local idle ramp=$(( streams / 2000 + 8 )) window=15 start end hist0= hist1= result
    idle=$(measure $(server_pids "$root"))
    run_players "$port" low600 "$streams" 0 $((ramp + window + 5)) > "$work/many.out" &
    local runner=$!
    sleep "$ramp"
    start=$(measure $(server_pids "$root"))
    [ -n "$admin" ] && hist0=$(curl -s "http://127.0.0.1:$admin/monitor?format=json")
    sleep "$window"
    end=$(measure $(server_pids "$root"))
    [ -n "$admin" ] && hist1=$(curl -s "http://127.0.0.1:$admin/monitor?format=json")
    wait "$runner"
    local p99=-
    [ -n "$admin" ] && p99=$(lag_percentiles "$hist0" "$hist1" | awk '{ print $2 }')
    python3 - "$name" "$idle" "$start" "$end" "$window" "$(getconf CLK_TCK)" "$streams" "$p99" "$work/many.out" "$work/streams.$5" <<'PY'
import sys
name, idle, start, end = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
window, hz, streams, p99 = float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
r = {k: float(v) for k, v in (l.split() for l in open(sys.argv[9]))}
held = streams - r["never_started"] - r["refused"]
pss_per = (int(end[1]) - int(idle[1])) / max(held, 1)
cpu = (int(end[0]) - int(start[0])) / hz / window * 100
print("%-34s %9d %12.2f %14.1f %12s %10d" % (name, held, pss_per * 1.024, cpu, p99, r["stalls"]))
open(sys.argv[10], "w").write("%d %.2f %.1f %d %s\n" % (held, pss_per * 1.024, cpu, r["stalls"], p99))
PY
}
start_loomiere "options.clients = 40000"
many_streams "Loomiere throttle=20" "$loomiere_port" "$lpid" "$loomiere_admin" loomiere
stop_servers
nginx_connections=12000
limit=$((low_rate * 11 / 10))
start_nginx "limit_rate $limit; limit_rate_after $((low_rate * 20));"
many_streams "nginx limit_rate=${limit}" "$nginx_port" "$(cat "$work/nginx.pid")" "" nginx
stop_servers
read -r held_l pss_l cpu_l stalls_l p99_l < "$work/streams.loomiere"
read -r held_n pss_n cpu_n stalls_n _ < "$work/streams.nginx"
section="$streams throttled streams at once (nginx: limit_rate)"
result "$section" "server memory (PSS) per stream" "$pss_n KB" "$pss_l KB" "$(ratio "$pss_l" "$pss_n")"
result "$section" "server CPU, % of one core" "$cpu_n %" "$cpu_l %" "$(ratio "$cpu_l" "$cpu_n")"
result "$section" "streams held, stalls; Loomiere's slice lag p99" "$held_n, $stalls_n" "$held_l, $stalls_l; $p99_l ms" ""
fi

if part pauses; then
echo
pausers=$((players * 3 / 10))
pause_run=100
echo "$players players of scenes600.mp4 for $pause_run s; $pausers of them pause once, 20 s in, for 60 s (throttle=20):"
printf '%-34s %16s %16s %10s %12s %10s %10s\n' server "bytes/pauser" "bytes/other" "stalls" "after pause" "reports" "CPU s"
# pause_run NAME HINTS
pause_run() {
    local name=$1 hints=$2 before after result
    before=$(measure $(server_pids "$lpid"))
    result=$(run_players "$loomiere_port" scenes600 "$players" 0 "$pause_run" --pause-at 20 --pause-for 60 --hints "$hints")
    after=$(measure $(server_pids "$lpid"))
    python3 - "$name" "$before" "$after" "$(getconf CLK_TCK)" "$work/pauses.$hints" <<PY
import sys
name, before, after, hz = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), int(sys.argv[4])
r = {k: float(v) for k, v in (l.split() for l in """$result""".strip().splitlines())}
pausers = max(r["pausers"], 1)
others = max(r["players"] - r["pausers"], 1)
per_pauser = r["pauser_bytes"] / pausers
per_other = (r["stayed_bytes"] - r["pauser_bytes"]) / others
cpu = (int(after[0]) - int(before[0])) / hz
print("%-34s %16.0f %16.0f %10d %12d %10d %10.1f" % (name, per_pauser, per_other, r["stalls"],
      r["stalls_after_pause"], r["reports_ok"], cpu))
open(sys.argv[5], "w").write("%.0f %d\\n" % (per_pauser, r["stalls_after_pause"]))
if r["reports_failed"]:
    print("  (%d reports not answered 204)" % r["reports_failed"])
PY
}
start_loomiere "options.throttle = 20
options.hosts[''] = { folder = '$work/www', hints = true }"
pause_run "Loomiere, wall clock (no reports)" 0
pause_run "Loomiere, player hints" 1
stop_servers
echo "media needed by a pausing player at the end (40 s played + 20 s lead): $(needed_by scenes600 60) bytes"
read -r wall_bytes _ < "$work/pauses.0"
read -r hinted_bytes hinted_stalls < "$work/pauses.1"
result "player hints (Loomiere only; 30 % of players pause 60 s)" "bytes per pausing player: hints against the wall clock" "" "$hinted_bytes ($hinted_stalls stalls after resuming)" "$(ratio "$hinted_bytes" "$wall_bytes")"
pausers=
fi

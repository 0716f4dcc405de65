#!/usr/bin/env bash
# What throttled streams cost everyone else: the 10 KB and 100 MB runs of
# benches/http.sh, on a server idle and on the same server while STREAMS
# throttled streams play (Loomiere throttle = 20; nginx limit_rate 1.1 × the
# film's mean rate after 20 s of it, as an operator would set it).
#
# The streams are simulated players (benches/players) of low600.mp4 (10 min,
# about 5 KiB/s), at most 5 000 per process. Each round, per server: wrk on
# the idle server, then the players start, and once they are all playing wrk
# runs again beside them. Printed: requests/s and MB/s idle and busy, the
# ratio busy/idle for each server, the server's CPU per request, and the
# players' stalls.
#
#   benches/busy.sh [DURATION_SECONDS] [ROUNDS] [STREAMS]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
duration=${1:-10}
rounds=${2:-2}
streams=${3:-5000}
workers=${WORKERS:-$(nproc)}
per_process=5000

for tool in nginx wrk ffmpeg ffprobe curl python3 bc; do
    command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk ffmpeg curl python3 bc >/dev/null; }
done
build_release
CARGO_TARGET_DIR=target cargo build --release --quiet --manifest-path benches/players/Cargo.toml
player_bin=target/release/loomiere-players
make_films

work=$(mktemp -d /tmp/loomiere-busy.XXXXXX)
trap 'stop_servers; rm -rf "$work"' EXIT
mkdir -p "$work/www"
ln "$media/low600.mp4" "$work/www/low600.mp4" 2>/dev/null || cp "$media/low600.mp4" "$work/www/low600.mp4"
head -c 10240 /dev/urandom > "$work/www/small.bin"
head -c $((100 * 1024 * 1024)) /dev/urandom > "$work/www/big.bin"
chmod -R a+rX "$work"

nginx_port=18680
loomiere_port=18681
nginx_connections=12000
mean_rate=$(python3 -c "import sys; size=int(sys.argv[1]); t=float(open(sys.argv[2]).read().split()[-2]); print(int(size/t))" \
    "$(stat -c %s "$media/low600.mp4")" "$media/low600.need")
limit=$((mean_rate * 11 / 10))

start_server() { # nginx|loomiere; sets $pid (the root process) and $port
    if [ "$1" = nginx ]; then
        start_nginx "location = /low600.mp4 { limit_rate $limit; limit_rate_after $((mean_rate * 20)); }"
        pid=$(cat "$work/nginx.pid") port=$nginx_port
    else
        start_loomiere "options.throttle = 20
options.clients = 40000
options.mimes['application/octet-stream'] = 'bin'"
        pid=$lpid port=$loomiere_port
    fi
}

# wrk_run PID PORT PATH CONNECTIONS: requests/s, MB/s, server CPU µs per request.
wrk_run() {
    local before after out rps mbs requests
    before=$(tree_ticks "$1")
    out=$(wrk -t2 -c"$4" -d"${duration}s" "http://127.0.0.1:$2$3")
    after=$(tree_ticks "$1")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    mbs=$(awk '/Transfer\/sec/ {v=$2; u=substr(v, length(v)-1); n=substr(v, 1, length(v)-2);
        if (u=="GB") n*=1024; else if (u=="KB") n/=1024; else if (u!="MB") n/=1048576; print n}' <<<"$out")
    echo "$rps $mbs $(cpu_us_per "$before" "$after" "$requests")"
}

# start_players PORT RUN_FOR: STREAMS players in processes of at most 5 000;
# their summed "key value" lines end up in $work/summed.
start_players() {
    local processes=$(( (streams + per_process - 1) / per_process )) i
    player_pids=()
    for i in $(seq 0 $((processes - 1))); do
        local share=$(( streams / processes + (i < streams % processes ? 1 : 0) ))
        "$player_bin" --port "$1" --path /low600.mp4 --curve "$media/low600.need" \
            --count "$share" --quitters 0 --quit-after 60 --run-for "$2" > "$work/players.$i" &
        player_pids+=($!)
    done
}
wait_players() {
    for pid in "${player_pids[@]}"; do wait "$pid"; done
    cat "$work"/players.* | awk '{ s[$1] += $2 } END { for (k in s) print k, s[k] }' > "$work/summed"
    rm -f "$work"/players.[0-9]*
}

declare -A sum
add() { sum[$1]=$(echo "${sum[$1]:-0} + $2" | bc -l); }
ramp=$(( streams / 1000 + 8 ))
for round in $(seq "$rounds"); do
    for server in nginx loomiere; do
        start_server $server
        read -r small_rps _ small_cpu < <(wrk_run "$pid" $port /small.bin 100)
        read -r _ big_mbs big_cpu < <(wrk_run "$pid" $port /big.bin 4)
        start_players $port $((ramp + 2 * duration + 5))
        sleep "$ramp"
        read -r small_rps_busy _ small_cpu_busy < <(wrk_run "$pid" $port /small.bin 100)
        read -r _ big_mbs_busy big_cpu_busy < <(wrk_run "$pid" $port /big.bin 4)
        wait_players
        held=$(awk '$1 == "players" { p = $2 } $1 == "never_started" { n = $2 } $1 == "refused" { r = $2 } END { print p - n - r }' "$work/summed")
        stalls=$(awk '$1 == "stalls" { print $2 }' "$work/summed")
        stop_servers
        printf 'round %d %-8s 10 KB %9.0f req/s idle, %9.0f busy (%4.2fx; %5.1f / %5.1f us CPU/req)  100 MB %6.0f MB/s idle, %6.0f busy (%4.2fx)  %d streams, %d stalls\n' \
            "$round" $server "$small_rps" "$small_rps_busy" "$(echo "$small_rps_busy / $small_rps" | bc -l)" "$small_cpu" "$small_cpu_busy" \
            "$big_mbs" "$big_mbs_busy" "$(echo "$big_mbs_busy / $big_mbs" | bc -l)" "$held" "$stalls"
        add "$server small" "$small_rps"; add "$server small busy" "$small_rps_busy"
        add "$server big" "$big_mbs"; add "$server big busy" "$big_mbs_busy"
        add "$server stalls" "$stalls"; add "$server held" "$held"
    done
done

mean() { printf %.0f "$(echo "${sum[$1]} / $rounds" | bc -l)"; }
section="beside $streams throttled streams (nginx: limit_rate)"
result "$section" "10 KB, wrk -c100: requests/s while streaming" "$(mean "nginx small busy")" "$(mean "loomiere small busy")" \
    "$(ratio "${sum[loomiere small busy]}" "${sum[nginx small busy]}")"
result "$section" "10 KB: requests/s while streaming ÷ idle" "$(ratio "${sum[nginx small busy]}" "${sum[nginx small]}")" \
    "$(ratio "${sum[loomiere small busy]}" "${sum[loomiere small]}")" ""
result "$section" "100 MB, wrk -c4: MB/s while streaming" "$(mean "nginx big busy")" "$(mean "loomiere big busy")" \
    "$(ratio "${sum[loomiere big busy]}" "${sum[nginx big busy]}")"
result "$section" "100 MB: MB/s while streaming ÷ idle" "$(ratio "${sum[nginx big busy]}" "${sum[nginx big]}")" \
    "$(ratio "${sum[loomiere big busy]}" "${sum[loomiere big]}")" ""
result "$section" "streams held, player stalls (all rounds)" "$(printf %.0f "${sum[nginx held]}"), $(printf %.0f "${sum[nginx stalls]}")" \
    "$(printf %.0f "${sum[loomiere held]}"), $(printf %.0f "${sum[loomiere stalls]}")" ""

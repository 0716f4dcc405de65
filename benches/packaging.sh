#!/usr/bin/env bash
# HLS segments packaged on the fly against the same film pre-packaged by
# ffmpeg (`-f hls -hls_segment_type fmp4`) and served by nginx as static
# files: the upper bound any on-the-fly packager is held to.
#
# The one-hour film of benches/seek.sh (generated once into
# target/bench-media/) is packaged by ffmpeg into 6 s fMP4 segments once.
# wrk -t2 -c8 asks each server for random segments of it, the two servers
# alternating for ROUNDS rounds: segments/s and the servers' CPU per segment
# (all their processes, from /proc; wrk shares the cores), and Loomiere
# serving nginx's ffmpeg-packaged files too: the floor, the same bytes with
# no packaging, which shows what is left to gain. Then the time to
# first byte of a cold master.m3u8 (the first request after start-up, which
# indexes the file and plans the presentation) and of a warm one.
#
# Then benches/sets.sh with the same arguments: a three-rendition one-hour
# rendition set against nginx-vod-module with the same set URL.
#
#   benches/packaging.sh [DURATION_SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
duration=${1:-10}
rounds=${2:-2}
workers=${WORKERS:-$(nproc)}

for tool in nginx wrk ffmpeg curl bc; do
    command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk ffmpeg curl bc >/dev/null; }
done
build_release

make_hour_film
if [ ! -e "$media/hour-hls.done" ]; then
    echo "packaging $media/hour.mp4 with ffmpeg into $media/hour-hls/"
    rm -rf "$media/hour-hls"
    mkdir -p "$media/hour-hls"
    ffmpeg -hide_banner -loglevel error -y -nostdin -i "$media/hour.mp4" -c copy \
        -f hls -hls_time 6 -hls_playlist_type vod -hls_segment_type fmp4 \
        -hls_fmp4_init_filename init.mp4 -hls_segment_filename "$media/hour-hls/seg-%d.m4s" \
        "$media/hour-hls/index.m3u8"
    touch "$media/hour-hls.done"
fi
segments=$(grep -c '^seg-' "$media/hour-hls/index.m3u8")

work=$(mktemp -d /tmp/loomiere-packaging.XXXXXX)
cleanup() {
    [ -e "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
    [ -n "${lpid:-}" ] && kill -QUIT "$lpid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/www"
ln "$media/hour.mp4" "$work/www/hour.mp4" 2>/dev/null || cp "$media/hour.mp4" "$work/www/hour.mp4"
cp -r "$media/hour-hls" "$work/www/hls"
chmod -R a+rX "$work"

nginx_port=18880
loomiere_port=18881
start_nginx 'types { video/iso.segment m4s; application/vnd.apple.mpegurl m3u8; video/mp4 mp4; }'
start_loomiere "options.mimes['video/iso.segment'] = 'm4s'"  # the static segments of the floor

# Random segments of the first $segments (both packagings cut every 6 s on the
# film's 2 s keyframes, so the same numbers are the same stretches of film).
cat > "$work/segments.lua" <<LUA
math.randomseed(os.time())
local prefix = os.getenv("SEGMENT_PREFIX")
request = function()
    return wrk.format("GET", prefix .. math.random(0, $segments - 1) .. ".m4s")
end
LUA

measure() { # PID PORT PREFIX
    local before after out rps requests mbs
    before=$(tree_ticks "$1")
    # wrk's own CPU too (bash's time keyword): it shares the cores.
    out=$( { TIMEFORMAT='wrk-cpu %U %S'; time SEGMENT_PREFIX=$3 wrk -t2 -c8 -d"${duration}s" -s "$work/segments.lua" "http://127.0.0.1:$2"; } 2>&1)
    after=$(tree_ticks "$1")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    mbs=$(awk '/Transfer\/sec/ {v=$2; u=substr(v, length(v)-1); n=substr(v, 1, length(v)-2);
        if (u=="GB") n*=1024; else if (u=="KB") n/=1024; else if (u!="MB") n/=1048576; print n}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    [ -z "$non2xx" ] || { echo "$non2xx answers were not 2xx" >&2; exit 1; }
    client=$(awk '/^wrk-cpu/ {printf "%.0f\n", ($2 + $3) * 1000000}' <<<"$out")
    [ -n "$client" ] || { echo "wrk's CPU time is missing from: $out" >&2; exit 1; }
    echo "$rps $mbs $(cpu_us_per "$before" "$after" "$requests") $(echo "$client / $requests" | bc -l)"
}

# Every segment URL answers before anything is measured.
for url in "http://127.0.0.1:$nginx_port/hls/seg-0.m4s" "http://127.0.0.1:$loomiere_port/hour.mp4/seg-0.m4s" \
    "http://127.0.0.1:$loomiere_port/hour.mp4/seg-$((segments - 1)).m4s"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$url")
    [ "$code" = 200 ] || { echo "$url answered $code" >&2; exit 1; }
done

nginx_pid=$(cat "$work/nginx.pid")
sum_n=0 sum_l=0 cpu_n=0 cpu_l=0 mb_n=0 mb_l=0 sum_s=0 cpu_s=0 wrk_n=0 wrk_l=0 wrk_s=0
for round in $(seq "$rounds"); do
    read -r rps mbs cpu client < <(measure "$nginx_pid" $nginx_port /hls/seg-)
    printf 'round %d nginx (ffmpeg-packaged) %9.1f segments/s %8.1f MB/s %8.1f us CPU/segment (wrk %.1f us)\n' "$round" "$rps" "$mbs" "$cpu" "$client"
    sum_n=$(echo "$sum_n + $rps" | bc -l) cpu_n=$(echo "$cpu_n + $cpu" | bc -l) wrk_n=$(echo "$wrk_n + $client" | bc -l) mb_n=$(echo "$mb_n + $mbs" | bc -l)
    read -r rps mbs cpu client < <(measure "$lpid" $loomiere_port /hour.mp4/seg-)
    printf 'round %d loomiere (on the fly)  %9.1f segments/s %8.1f MB/s %8.1f us CPU/segment (wrk %.1f us)\n' "$round" "$rps" "$mbs" "$cpu" "$client"
    sum_l=$(echo "$sum_l + $rps" | bc -l) cpu_l=$(echo "$cpu_l + $cpu" | bc -l) wrk_l=$(echo "$wrk_l + $client" | bc -l) mb_l=$(echo "$mb_l + $mbs" | bc -l)
    # The floor: Loomiere serving nginx's ffmpeg-packaged files, the same
    # bytes with no packaging at all.
    read -r rps mbs cpu client < <(measure "$lpid" $loomiere_port /hls/seg-)
    printf 'round %d loomiere (static files) %9.1f segments/s %8.1f MB/s %8.1f us CPU/segment (wrk %.1f us)\n' "$round" "$rps" "$mbs" "$cpu" "$client"
    sum_s=$(echo "$sum_s + $rps" | bc -l) cpu_s=$(echo "$cpu_s + $cpu" | bc -l) wrk_s=$(echo "$wrk_s + $client" | bc -l)
done

# Time to first byte of master.m3u8: cold right after start-up, then warm.
ttfb() { curl -s -o /dev/null -w '%{time_starttransfer}' "$1"; }
# Cold: the median of five fresh starts.
colds=()
for _ in 1 2 3 4 5; do
    kill -QUIT "$lpid"; wait "$lpid" 2>/dev/null || true
    lpid=""
    start_loomiere "options.mimes['video/iso.segment'] = 'm4s'"
    colds+=("$(ttfb "http://127.0.0.1:$loomiere_port/hour.mp4/master.m3u8")")
done
cold=$(printf '%s\n' "${colds[@]}" | sort -g | sed -n 3p)
# Every worker keeps its own index and plan: let each build them first.
for _ in $(seq 10); do ttfb "http://127.0.0.1:$loomiere_port/hour.mp4/master.m3u8" > /dev/null; done
warm=0
for _ in $(seq 20); do warm=$(echo "$warm + $(ttfb "http://127.0.0.1:$loomiere_port/hour.mp4/master.m3u8")" | bc -l); done
nginx_master=0
for _ in $(seq 20); do nginx_master=$(echo "$nginx_master + $(ttfb "http://127.0.0.1:$nginx_port/hls/index.m3u8")" | bc -l); done

printf '\naverage: nginx %.1f segments/s (%.1f us CPU each), loomiere %.1f segments/s (%.1f us CPU each): %.2fx segments/s\n' \
    "$(echo "$sum_n / $rounds" | bc -l)" "$(echo "$cpu_n / $rounds" | bc -l)" \
    "$(echo "$sum_l / $rounds" | bc -l)" "$(echo "$cpu_l / $rounds" | bc -l)" "$(echo "$sum_l / $sum_n" | bc -l)"
printf 'master.m3u8 time to first byte: loomiere cold %.1f ms, warm %.2f ms (mean of 20); nginx static playlist %.2f ms\n' \
    "$(echo "$cold * 1000" | bc -l)" "$(echo "$warm * 50" | bc -l)" "$(echo "$nginx_master * 50" | bc -l)"
section="HLS segments (one-hour film, 6 s; nginx: ffmpeg-packaged files)"
result "$section" "segments/s, random segments, wrk -c8 (target ≥ 1.2×)" \
    "$(printf %.0f "$(echo "$sum_n / $rounds" | bc -l)")" "$(printf %.0f "$(echo "$sum_l / $rounds" | bc -l)")" "$(ratio "$sum_l" "$sum_n")"
result "$section" "server CPU per segment (target ≤ 0.8×)" \
    "$(printf '%.0f µs' "$(echo "$cpu_n / $rounds" | bc -l)")" "$(printf '%.0f µs' "$(echo "$cpu_l / $rounds" | bc -l)")" "$(ratio "$cpu_l" "$cpu_n")"
result "$section" "the floor: Loomiere serving the ffmpeg-packaged files, segments/s" \
    "$(printf %.0f "$(echo "$sum_n / $rounds" | bc -l)")" "$(printf %.0f "$(echo "$sum_s / $rounds" | bc -l)")" "$(ratio "$sum_s" "$sum_n")"
result "$section" "the floor: server CPU per static segment" \
    "$(printf '%.0f µs' "$(echo "$cpu_n / $rounds" | bc -l)")" "$(printf '%.0f µs' "$(echo "$cpu_s / $rounds" | bc -l)")" "$(ratio "$cpu_s" "$cpu_n")"
# wrk shares the two cores, so segments/s is the cores over (server + wrk)
# CPU per segment: a server costing nothing would reach (nginx + wrk) / wrk.
result "$section" "wrk's own CPU per segment (it shares the cores)" \
    "$(printf '%.0f µs' "$(echo "$wrk_n / $rounds" | bc -l)")" "$(printf '%.0f µs' "$(echo "$wrk_l / $rounds" | bc -l)")" ""
result "$section" "segments/s ratio the CPU figures predict, (nginx + wrk) / (Loomiere + wrk)" "" "" \
    "$(ratio "$(echo "$cpu_n + $wrk_n" | bc -l)" "$(echo "$cpu_l + $wrk_l" | bc -l)")"
result "$section" "the ceiling, a server costing no CPU, (nginx + wrk) / wrk" "" "" \
    "$(ratio "$(echo "$cpu_n + $wrk_n" | bc -l)" "$wrk_n")"
result "$section" "master.m3u8 time to first byte, cold (median of 5 starts; target ≤ 20 ms)" "" "$(printf '%.1f ms' "$(echo "$cold * 1000" | bc -l)")" ""
result "$section" "playlist time to first byte, warm (mean of 20)" \
    "$(printf '%.2f ms' "$(echo "$nginx_master * 50" | bc -l)")" "$(printf '%.2f ms' "$(echo "$warm * 50" | bc -l)")" "$(ratio "$warm" "$nginx_master")"

# The rendition sets against nginx-vod-module, on servers of their own.
cleanup || true
trap - EXIT
exec benches/sets.sh "$duration" "$rounds"

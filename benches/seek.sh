#!/usr/bin/env bash
# Seeks per second into a one-hour MP4, Loomiere against nginx's mp4 module.
#
# A one-hour H.264/AAC file (320x180, 25 fps, a keyframe every 2 s, moov at
# the end as ffmpeg writes it, about 300 MB) is generated once into
# target/bench-media/. wrk -t2 -c8 asks for ?start=<random 0..3500> with
# Range: bytes=0-65535, so what is measured is building the seeked header,
# not shipping the film. The two servers alternate for ROUNDS rounds; then the
# time to first byte is measured with curl, cold (first seek after start-up)
# and warm. Server CPU per seek (all processes of each server, from /proc) is
# printed beside seeks/s.
#
#   benches/seek.sh [DURATION_SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
duration=${1:-10}
rounds=${2:-2}
workers=${WORKERS:-$(nproc)}

for tool in nginx wrk ffmpeg curl; do
    command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk ffmpeg curl >/dev/null; }
done
build_release

make_long_films

work=$(mktemp -d /tmp/loomiere-seek.XXXXXX)
cleanup() {
    [ -e "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
    [ -e "$work/vod/nginx.pid" ] && kill "$(cat "$work/vod/nginx.pid")" 2>/dev/null
    [ -n "${lpid:-}" ] && kill -QUIT "$lpid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/www"
for film in hour hour_frag hour_frag_nomap ten_hours ten_hours_frag big_moov; do
    ln "$media/$film.mp4" "$work/www/$film.mp4" 2>/dev/null || cp "$media/$film.mp4" "$work/www/$film.mp4"
done
# A plain 64 KiB file: sent with sendfile and no seek work, it is the most
# 64 KiB answers per second this machine can move.
head -c 65536 /dev/urandom > "$work/www/plain64k.mp4"
chmod -R a+rX "$work"

nginx_port=18290
loomiere_port=18291
start_nginx 'location ~ \.mp4$ { mp4; mp4_max_buffer_size 64m; }'
# A cache that holds the 71 MB moov's index (76 MB; the default 64 MB would
# build it for every request, as the manual says).
loomiere_cache='options.cache = 256'
start_loomiere "$loomiere_cache"

cat > "$work/seek.lua" <<'LUA'
math.randomseed(os.time())
request = function()
    local start = math.random(0, 3500) + math.random(0, 99) / 100
    return wrk.format("GET", "/hour.mp4?start=" .. start, { ["Range"] = "bytes=0-65535" })
end
LUA

# measure PID PORT: seeks/s, mean latency, non-2xx answers and the server's
# CPU microseconds per seek (all its processes, from /proc): wrk shares the
# two cores and moving 64 KiB over loopback caps seeks/s for any server, so
# the CPU per seek is what shows the cost of seeking itself.
measure() {
    local out rps latency requests before after
    before=$(tree_ticks "$1")
    out=$(wrk -t2 -c8 -d"${duration}s" --latency -s "$work/seek.lua" "http://127.0.0.1:$2")
    after=$(tree_ticks "$1")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    latency=$(awk '/^    Latency/ {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    echo "$rps $latency ${non2xx:-0} $(cpu_us_per "$before" "$after" "$requests")"
}

nginx_pid=$(cat "$work/nginx.pid")
total_nginx=0 total_loomiere=0 cpu_nginx=0 cpu_loomiere=0
for round in $(seq "$rounds"); do
    for server in nginx loomiere; do
        port=$nginx_port pid=$nginx_pid
        [ $server = loomiere ] && port=$loomiere_port pid=$lpid
        read -r rps latency bad cpu < <(measure "$pid" $port)
        printf 'round %d %-9s %10.1f seeks/s   mean latency %s   non-2xx %s   %7.1f us CPU/seek\n' "$round" $server "$rps" "$latency" "$bad" "$cpu"
        if [ $server = nginx ]; then
            total_nginx=$(echo "$total_nginx + $rps" | bc -l) cpu_nginx=$(echo "$cpu_nginx + $cpu" | bc -l)
        else
            total_loomiere=$(echo "$total_loomiere + $rps" | bc -l) cpu_loomiere=$(echo "$cpu_loomiere + $cpu" | bc -l)
        fi
    done
done
printf '\naverage: nginx %.1f seeks/s, loomiere %.1f seeks/s, ratio %.1fx\n' \
    "$(echo "$total_nginx / $rounds" | bc -l)" "$(echo "$total_loomiere / $rounds" | bc -l)" "$(echo "$total_loomiere / $total_nginx" | bc -l)"
printf 'server CPU per seek: nginx %.1f us, loomiere %.1f us (nginx/loomiere %.1fx)\n' \
    "$(echo "$cpu_nginx / $rounds" | bc -l)" "$(echo "$cpu_loomiere / $rounds" | bc -l)" "$(echo "$cpu_nginx / $cpu_loomiere" | bc -l)"

ceiling=$(wrk -t2 -c8 -d"${duration}s" "http://127.0.0.1:$loomiere_port/plain64k.mp4" | awk '/Requests\/sec/ {print $2}')
printf 'ceiling: a plain 64 KiB file from loomiere, %.1f requests/s (%.1fx nginx seeks)\n' "$ceiling" \
    "$(echo "$ceiling * $rounds / $total_nginx" | bc -l)"

# Time to first byte: cold is the first seek after start-up (the index is built
# then), warm a seek to a new start once the index is cached.
ttfb() { # port start
    curl -s -o /dev/null -H 'Range: bytes=0-65535' -w '%{time_starttransfer}' "http://127.0.0.1:$1/hour.mp4?start=$2"
}
# Cold: the median of five fresh starts (one sample is at the mercy of the
# scheduler on a shared machine).
colds=()
for _ in 1 2 3 4 5; do
    kill -QUIT "$lpid"; wait "$lpid" 2>/dev/null || true
    lpid=""
    start_loomiere "$loomiere_cache"
    colds+=("$(ttfb $loomiere_port 1234.5)")
done
cold=$(printf '%s\n' "${colds[@]}" | sort -g | sed -n 3p)
# Every worker keeps its own index: let each build it before "warm" is measured.
for i in $(seq 10); do ttfb $loomiere_port $((i * 13)) > /dev/null; done
warm=0
for i in $(seq 20); do w=$(ttfb $loomiere_port $((i * 97 + 13)).25); warm=$(echo "$warm + $w" | bc -l); done
nginx_ttfb=0
for i in $(seq 20); do w=$(ttfb $nginx_port $((i * 97 + 13)).25); nginx_ttfb=$(echo "$nginx_ttfb + $w" | bc -l); done
printf 'time to first byte: loomiere cold %.2f ms, warm %.2f ms (mean of 20); nginx %.2f ms (mean of 20)\n' \
    "$(echo "$cold * 1000" | bc -l)" "$(echo "$warm * 50" | bc -l)" "$(echo "$nginx_ttfb * 50" | bc -l)"
result "seeking (MP4, ?start=, Range 0-65535)" "seeks/s into a one-hour film, wrk -c8" \
    "$(printf %.0f "$(echo "$total_nginx / $rounds" | bc -l)")" "$(printf %.0f "$(echo "$total_loomiere / $rounds" | bc -l)")" \
    "$(ratio "$total_loomiere" "$total_nginx")"
result "seeking (MP4, ?start=, Range 0-65535)" "server CPU per seek" \
    "$(printf '%.0f µs' "$(echo "$cpu_nginx / $rounds" | bc -l)")" "$(printf '%.0f µs' "$(echo "$cpu_loomiere / $rounds" | bc -l)")" \
    "$(ratio "$cpu_loomiere" "$cpu_nginx")"
result "seeking (MP4, ?start=, Range 0-65535)" "time to first byte, warm (mean of 20)" \
    "$(printf '%.2f ms' "$(echo "$nginx_ttfb * 50" | bc -l)")" "$(printf '%.2f ms' "$(echo "$warm * 50" | bc -l)")" "$(ratio "$warm" "$nginx_ttfb")"
result "seeking (MP4, ?start=, Range 0-65535)" "time to first byte, cold (index built, median of 5 starts; target ≤ 10 ms)" \
    "" "$(printf '%.1f ms' "$(echo "$cold * 1000" | bc -l)")" ""

# Fragmented and very long films (issue 24): the same seeks into the
# fragmented one-hour film, the ten-hour film and the same fragmented, and
# the film whose moov takes 71 MB, each
# beside the regular one-hour film measured above (goals: a fragmented seek
# costs at most 1.2x a regular one; the ten-hour film's warm seek at most
# 1.5x the one-hour film's; a cold first seek under 150 ms).
cat > "$work/film.lua" <<'LUA'
math.randomseed(os.time())
local film, span = os.getenv("FILM"), tonumber(os.getenv("SPAN"))
request = function()
    local start = math.random(0, span) + math.random(0, 99) / 100
    return wrk.format("GET", "/" .. film .. "?start=" .. start, { ["Range"] = "bytes=0-65535" })
end
LUA
film_ttfb() { # port film start
    curl -s -o /dev/null -H 'Range: bytes=0-65535' -w '%{time_starttransfer}' "http://127.0.0.1:$1/$2?start=$3"
}
hour_cpu=$(echo "$cpu_loomiere / $rounds" | bc -l)
hour_warm=$(echo "$warm * 50" | bc -l)
section="seeking fragmented and ten-hour films (MP4, ?start=, Range 0-65535)"
for spec in hour_frag:3500:"fragmented one-hour film" ten_hours:35900:"ten-hour film (900 000 frames, 22 MB moov)" \
    ten_hours_frag:35900:"ten-hour film, fragmented (18 000 moofs)" \
    big_moov:23900:"71 MB moov (6 000 000 samples of 4 ms)"; do
    film=${spec%%:*} rest=${spec#*:}
    span=${rest%%:*} label=${rest#*:}
    # nginx's answer with this benchmark's mp4_max_buffer_size 64m (its
    # default, 500k, refuses even the one-hour film's moov).
    nginx_code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Range: bytes=0-65535' "http://127.0.0.1:$nginx_port/$film.mp4?start=$((span / 2))")
    nginx_said=
    case $nginx_code in 2*) ;; *) nginx_said=$(tail -n 1 "$work/nginx-error.log" 2>/dev/null | sed 's/.*\] [0-9#]*: \*[0-9]* //; s/, client.*//; s|"[^"]*/www/|"|' | cut -c1-80 || true) ;; esac
    before=$(tree_ticks "$lpid")
    out=$(FILM=$film.mp4 SPAN=$span wrk -t2 -c8 -d"${duration}s" -s "$work/film.lua" "http://127.0.0.1:$loomiere_port")
    after=$(tree_ticks "$lpid")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    cpu=$(cpu_us_per "$before" "$after" "$requests")
    colds=()
    for _ in 1 2 3 4 5; do
        kill -QUIT "$lpid"; wait "$lpid" 2>/dev/null || true
        lpid=""
        start_loomiere "$loomiere_cache"
        colds+=("$(film_ttfb $loomiere_port "$film.mp4" $((span - 1234)).5)")
    done
    cold=$(printf '%s\n' "${colds[@]}" | sort -g | sed -n 3p)
    for i in $(seq 10); do film_ttfb $loomiere_port "$film.mp4" $((i * 13)) > /dev/null; done
    film_warm=0
    for i in $(seq 20); do
        w=$(film_ttfb $loomiere_port "$film.mp4" $((i * span / 21)).25)
        film_warm=$(echo "$film_warm + $w" | bc -l)
    done
    film_warm=$(echo "$film_warm * 50" | bc -l)
    rss=$(for pid in $(cat "/proc/$lpid/task/$lpid/children"); do grep VmRSS "/proc/$pid/status" | awk '{print $2}'; done | sort -n | tail -1)
    printf '%s: loomiere %.1f seeks/s (non-2xx %s), %.1f us CPU/seek (%.2fx the one-hour film), TTFB cold %.1f ms, warm %.2f ms (%.2fx the one-hour film), largest worker RSS %s KiB after indexing; nginx mp4 answers %s %s\n' \
        "$label" "$rps" "${non2xx:-0}" "$cpu" "$(echo "$cpu / $hour_cpu" | bc -l)" "$(echo "$cold * 1000" | bc -l)" "$film_warm" \
        "$(echo "$film_warm / $hour_warm" | bc -l)" "$rss" "$nginx_code" "${nginx_said:+($nginx_said)}"
    result "$section" "$label: seeks/s, wrk -c8 (nginx mp4 module: HTTP $nginx_code)" "" "$(printf %.0f "$rps")" ""
    result "$section" "$label: server CPU per seek (÷ the regular one-hour film's)" "" "$(printf '%.0f µs' "$cpu")" "$(ratio "$cpu" "$hour_cpu")"
    result "$section" "$label: time to first byte cold (median of 5 starts; goal < 150 ms) / warm (÷ the one-hour film's)" "" \
        "$(printf '%.1f ms / %.2f ms' "$(echo "$cold * 1000" | bc -l)" "$film_warm")" "$(ratio "$film_warm" "$hour_warm")"
    result "$section" "$label: largest worker's memory after indexing (RSS)" "" "$(printf '%.1f MB' "$(echo "$rss / 1024" | bc -l)")" ""
done

# From a cold disk: the first seek with the film's pages dropped from the
# page cache (posix_fadvise DONTNEED) before it, median of 5 fresh starts.
# A fragmented film's scan reads a moof every 2 s of media; with the map in
# its mfra Loomiere asks the disk for all of them at once. The same file
# without an mfra (ffmpeg's skip_trailer) shows what the map saves, and the
# regular film what a moov read in one piece costs.
drop_pages() {
    python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$1"
}
declare -A from_disk
for film in hour hour_frag hour_frag_nomap; do
    colds=()
    for _ in 1 2 3 4 5; do
        kill -QUIT "$lpid"; wait "$lpid" 2>/dev/null || true
        lpid=""
        start_loomiere "$loomiere_cache"
        drop_pages "$work/www/$film.mp4"
        colds+=("$(film_ttfb $loomiere_port "$film.mp4" 1234.5)")
    done
    from_disk[$film]=$(printf '%s\n' "${colds[@]}" | sort -g | sed -n 3p)
done
# nginx reads the regular film's moov for every seek: its first from disk.
nginx_colds=()
for _ in 1 2 3 4 5; do
    drop_pages "$work/www/hour.mp4"
    nginx_colds+=("$(film_ttfb $nginx_port hour.mp4 1234.5)")
done
nginx_from_disk=$(printf '%s\n' "${nginx_colds[@]}" | sort -g | sed -n 3p)
printf 'first seek from a cold disk: nginx regular hour %.1f ms; loomiere regular hour %.1f ms, fragmented hour with its mfra %.1f ms, without %.1f ms (%.2fx)\n' \
    "$(echo "$nginx_from_disk * 1000" | bc -l)" "$(echo "${from_disk[hour]} * 1000" | bc -l)" "$(echo "${from_disk[hour_frag]} * 1000" | bc -l)" \
    "$(echo "${from_disk[hour_frag_nomap]} * 1000" | bc -l)" "$(echo "${from_disk[hour_frag]} / ${from_disk[hour_frag_nomap]}" | bc -l)"
result "$section" "first seek from a cold disk, regular one-hour film" \
    "$(printf '%.1f ms' "$(echo "$nginx_from_disk * 1000" | bc -l)")" "$(printf '%.1f ms' "$(echo "${from_disk[hour]} * 1000" | bc -l)")" \
    "$(ratio "${from_disk[hour]}" "$nginx_from_disk")"
result "$section" "first seek from a cold disk, fragmented one-hour film with its mfra (÷ the same without one)" "" \
    "$(printf '%.1f ms' "$(echo "${from_disk[hour_frag]} * 1000" | bc -l)")" \
    "$(ratio "${from_disk[hour_frag]}" "${from_disk[hour_frag_nomap]}")"

# nginx-vod-module on the same films (where built, as in benches/sets.sh):
# its HLS index and last segment of each, to say what it answers.
vod=${VOD_NGINX:-/opt/vod-nginx/sbin/nginx}
if [ -x "$vod" ]; then
    mkdir -p "$work/vod/logs"
    cat > "$work/vod/nginx.conf" <<CONF
worker_processes 1;
pid $work/vod/nginx.pid;
error_log $work/vod/error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $work/vod;
    proxy_temp_path $work/vod;
    fastcgi_temp_path $work/vod;
    uwsgi_temp_path $work/vod;
    scgi_temp_path $work/vod;
    vod_mode local;
    vod_segment_duration 6000;
    vod_hls_container_format fmp4;
    server {
        listen 127.0.0.1:18293;
        location / { root $work/www; vod hls; }
    }
}
CONF
    "$vod" -c "$work/vod/nginx.conf" -p "$work/vod"
    sleep 0.5
    for film in hour hour_frag ten_hours ten_hours_frag big_moov; do
        index=$(curl -s "http://127.0.0.1:18293/$film.mp4/index-v1-a1.m3u8")
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:18293/$film.mp4/index-v1-a1.m3u8")
        last= segment=-
        [ "$code" = 200 ] && last=$( (grep -v '^#' <<<"$index" || true) | tail -n 1)
        case $last in http*) ;; ?*) last=http://127.0.0.1:18293/$film.mp4/$last ;; esac
        [ -n "$last" ] && segment=$(curl -s -o /dev/null -w '%{http_code}' "$last" || true)
        said=$( (grep -h "$film.mp4" "$work/vod/error.log" 2>/dev/null || true) | tail -n 1 | sed 's/.*\] [0-9#]*: \*[0-9]* //; s/, client.*//' | cut -c1-90)
        echo "nginx-vod-module on $film.mp4: index HTTP $code, last segment (${last##*/}) HTTP $segment ${said:+($said)}"
        result "$section" "nginx-vod-module on $film.mp4: HLS index / last segment" "HTTP $code / $segment" "" ""
    done
    kill -QUIT "$(cat "$work/vod/nginx.pid")" 2>/dev/null || true
fi

#!/usr/bin/env bash
# Rendition sets against nginx-vod-module with the same set URL
# (/hour_,a,b,c,.mp4.urlset/): random video segments of a three-rendition
# one-hour set (320x180 at 300 and 600 kb/s, 640x360 at 1.2 Mb/s, a
# keyframe every 2 s, cut every 6 s by both), then the time to first byte
# of the set's master.m3u8, cold (the first request after start-up: every
# file indexed, the ladder checked) and warm.
#
# The peer is nginx 1.26 with kaltura/nginx-vod-module, built outside the
# repository from their public sources:
#
#   git clone https://github.com/nginx/nginx && git -C nginx checkout release-1.26.3
#   git clone https://github.com/kaltura/nginx-vod-module vod
#   cd nginx && ./auto/configure --prefix=/opt/vod-nginx --with-threads \
#       --with-file-aio --add-module=../vod --with-cc-opt=-O3 && make -j2 && make install
#
# It is looked for at $VOD_NGINX, then /opt/vod-nginx/sbin/nginx. Without
# it, the script says so and compares with Debian's nginx serving the first
# rendition packaged by ffmpeg as static files instead (a floor, not the
# peer). Both servers get the same worker count; wrk -t2 -c8 shares the two
# cores, so server CPU per segment (from /proc) is the figure that counts.
#
#   benches/sets.sh [DURATION_SECONDS] [ROUNDS]
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
# The other two renditions, on the same GOP.
rendition() { # NAME SIZE BITRATE
    [ -e "$media/$1.done" ] && return
    echo "generating $media/$1.mp4 ($2 at $3, a few minutes)"
    ffmpeg -hide_banner -loglevel error -y -nostdin \
        -f lavfi -i "testsrc2=size=$2:rate=25:duration=3600" \
        -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=3600" \
        -c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0 -b:v "$3" \
        -c:a aac -b:a 64k "$media/$1.mp4"
    touch "$media/$1.done"
}
rendition hour-300k 320x180 300k
rendition hour-360p 640x360 1200k

vod=${VOD_NGINX:-/opt/vod-nginx/sbin/nginx}
[ -x "$vod" ] || vod=""

work=$(mktemp -d /tmp/loomiere-sets.XXXXXX)
cleanup() {
    [ -e "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
    [ -n "${lpid:-}" ] && kill -QUIT "$lpid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/www"
for pair in a:hour-300k b:hour c:hour-360p; do
    ln "$media/${pair#*:}.mp4" "$work/www/hour_${pair%%:*}.mp4" 2>/dev/null ||
        cp "$media/${pair#*:}.mp4" "$work/www/hour_${pair%%:*}.mp4"
done
chmod -R a+rX "$work"
set_path=/hour_,a,b,c,.mp4.urlset
nginx_port=18890
loomiere_port=18891

if [ -n "$vod" ]; then
    peer="nginx-vod-module ($vod)"
    # nginx opens <prefix>/logs/error.log before it reads error_log.
    mkdir -p "$work/logs"
    cat > "$work/nginx.conf" <<CONF
worker_processes $workers;
worker_rlimit_nofile 20000;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $work;
    proxy_temp_path $work;
    fastcgi_temp_path $work;
    uwsgi_temp_path $work;
    scgi_temp_path $work;
    vod_mode local;
    vod_segment_duration 6000;
    vod_align_segments_to_key_frames on;
    vod_hls_container_format fmp4;
    vod_metadata_cache metadata_cache 512m;
    vod_response_cache response_cache 64m;
    open_file_cache max=1000 inactive=5m;
    server {
        listen 127.0.0.1:$nginx_port reuseport;
        location / {
            root $work/www;
            vod hls;
        }
    }
}
CONF
    "$vod" -c "$work/nginx.conf" -p "$work"
    # nginx-vod-module numbers segments from 1 and selects the set's file r
    # and its video alone with -f<r>-v1: the bytes Loomiere's seg-v<r>-<n-1>
    # carries.
    nginx_segment='"'$set_path'/seg-" .. (n + 1) .. "-f" .. r .. "-v1.m4s"'
    nginx_master=$set_path/master.m3u8
else
    peer="Debian's nginx serving ffmpeg-packaged static segments (nginx-vod-module not found: set VOD_NGINX)"
    echo "nginx-vod-module is absent (no \$VOD_NGINX, no /opt/vod-nginx/sbin/nginx): comparing with $peer" >&2
    if [ ! -e "$media/hour-hls.done" ]; then
        rm -rf "$media/hour-hls" && mkdir -p "$media/hour-hls"
        ffmpeg -hide_banner -loglevel error -y -nostdin -i "$media/hour.mp4" -c copy \
            -f hls -hls_time 6 -hls_playlist_type vod -hls_segment_type fmp4 \
            -hls_fmp4_init_filename init.mp4 -hls_segment_filename "$media/hour-hls/seg-%d.m4s" \
            "$media/hour-hls/index.m3u8"
        touch "$media/hour-hls.done"
    fi
    cp -r "$media/hour-hls" "$work/www/hls"
    start_nginx 'types { video/iso.segment m4s; application/vnd.apple.mpegurl m3u8; }'
    nginx_segment='"/hls/seg-" .. n .. ".m4s"'
    nginx_master=/hls/index.m3u8
fi
start_loomiere
nginx_pid=$(cat "$work/nginx.pid")

segments=$(curl -sf "http://127.0.0.1:$loomiere_port$set_path/index-v1.m3u8" | grep -c '^seg-')
[ "$segments" -gt 500 ] || { echo "the set has $segments segments" >&2; exit 1; }
for url in "http://127.0.0.1:$nginx_port$nginx_master" "http://127.0.0.1:$loomiere_port$set_path/seg-v3-0.m4s"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$url")
    [ "$code" = 200 ] || { echo "$url answered $code" >&2; exit 1; }
done

# Random rendition r (1-3) and segment n (from 0) for each request.
script() { # FILE EXPRESSION
    cat > "$1" <<LUA
math.randomseed(os.time())
request = function()
    local r, n = math.random(1, 3), math.random(0, $segments - 1)
    return wrk.format("GET", $2)
end
LUA
}
script "$work/nginx.lua" "$nginx_segment"
script "$work/loomiere.lua" '"'$set_path'/seg-v" .. r .. "-" .. n .. ".m4s"'
if [ -n "$vod" ]; then
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$nginx_port$set_path/seg-$segments-f3-v1.m4s")
    [ "$code" = 200 ] || { echo "nginx-vod-module's last segment answered $code" >&2; exit 1; }
fi

measure() { # PID PORT SCRIPT
    local before after out rps requests non2xx
    before=$(tree_ticks "$1")
    out=$(wrk -t2 -c8 -d"${duration}s" -s "$3" "http://127.0.0.1:$2")
    after=$(tree_ticks "$1")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    [ -z "$non2xx" ] || { echo "$non2xx answers were not 2xx" >&2; exit 1; }
    echo "$rps $(cpu_us_per "$before" "$after" "$requests")"
}

sum_n=0 sum_l=0 cpu_n=0 cpu_l=0
for round in $(seq "$rounds"); do
    read -r rps cpu < <(measure "$nginx_pid" $nginx_port "$work/nginx.lua")
    printf 'round %d peer     %9.1f segments/s %8.1f us CPU/segment\n' "$round" "$rps" "$cpu"
    sum_n=$(echo "$sum_n + $rps" | bc -l) cpu_n=$(echo "$cpu_n + $cpu" | bc -l)
    read -r rps cpu < <(measure "$lpid" $loomiere_port "$work/loomiere.lua")
    printf 'round %d loomiere %9.1f segments/s %8.1f us CPU/segment\n' "$round" "$rps" "$cpu"
    sum_l=$(echo "$sum_l + $rps" | bc -l) cpu_l=$(echo "$cpu_l + $cpu" | bc -l)
done

ttfb() { curl -s -o /dev/null -w '%{time_starttransfer}' "$1"; }
# Cold: the median of five fresh starts (the page cache is warm: this is
# the indexing and the ladder check, not the disk).
colds=()
for _ in 1 2 3 4 5; do
    kill -QUIT "$lpid"; wait "$lpid" 2>/dev/null || true
    lpid=""
    start_loomiere
    colds+=("$(ttfb "http://127.0.0.1:$loomiere_port$set_path/master.m3u8")")
done
cold=$(printf '%s\n' "${colds[@]}" | sort -g | sed -n 3p)
for _ in $(seq 10); do ttfb "http://127.0.0.1:$loomiere_port$set_path/master.m3u8" > /dev/null; done
warm=0 peer_master=0
for _ in $(seq 20); do
    warm=$(echo "$warm + $(ttfb "http://127.0.0.1:$loomiere_port$set_path/master.m3u8")" | bc -l)
    peer_master=$(echo "$peer_master + $(ttfb "http://127.0.0.1:$nginx_port$nginx_master")" | bc -l)
done

printf '\npeer: %s\n' "$peer"
printf 'average: peer %.1f segments/s (%.1f us CPU each), loomiere %.1f segments/s (%.1f us CPU each)\n' \
    "$(echo "$sum_n / $rounds" | bc -l)" "$(echo "$cpu_n / $rounds" | bc -l)" \
    "$(echo "$sum_l / $rounds" | bc -l)" "$(echo "$cpu_l / $rounds" | bc -l)"
printf 'set master.m3u8 time to first byte: loomiere cold %.1f ms, warm %.2f ms; peer warm %.2f ms\n' \
    "$(echo "$cold * 1000" | bc -l)" "$(echo "$warm * 50" | bc -l)" "$(echo "$peer_master * 50" | bc -l)"
if [ -n "$vod" ]; then
    section="Rendition sets (three renditions, one hour, 6 s; nginx: nginx-vod-module)"
else
    section="Rendition sets (three renditions, one hour, 6 s; nginx: static files, nginx-vod-module absent)"
fi
result "$section" "segments/s, random video segments, wrk -c8 (target ≥ 1.0×)" \
    "$(printf %.0f "$(echo "$sum_n / $rounds" | bc -l)")" "$(printf %.0f "$(echo "$sum_l / $rounds" | bc -l)")" "$(ratio "$sum_l" "$sum_n")"
result "$section" "server CPU per segment (target ≤ 0.5×)" \
    "$(printf '%.0f µs' "$(echo "$cpu_n / $rounds" | bc -l)")" "$(printf '%.0f µs' "$(echo "$cpu_l / $rounds" | bc -l)")" "$(ratio "$cpu_l" "$cpu_n")"
result "$section" "set master.m3u8 time to first byte, cold (median of 5 starts; target ≤ 30 ms)" "" "$(printf '%.1f ms' "$(echo "$cold * 1000" | bc -l)")" ""
result "$section" "set master.m3u8 time to first byte, warm (mean of 20; target ≤ 1 ms)" \
    "$(printf '%.2f ms' "$(echo "$peer_master * 50" | bc -l)")" "$(printf '%.2f ms' "$(echo "$warm * 50" | bc -l)")" "$(ratio "$warm" "$peer_master")"

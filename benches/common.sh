# Shared by the benchmark scripts: nginx and Loomiere on loopback over the
# same folder, with the same worker count, sendfile on and access logs off.
# Expects $work (a scratch folder holding www/), $workers, $nginx_port and
# $loomiere_port; sets $lpid.

# build_release: the release binary, unless benches/run built it already
# (then every script measures the same binary, whatever is edited meanwhile).
build_release() {
    [ -n "${BENCH_PREBUILT:-}" ] || cargo build --release --quiet
}

# start_nginx [EXTRA_SERVER_DIRECTIVES]; $nginx_connections (default 4096)
# sets worker_connections, $nginx_http (default none) adds http-level directives.
start_nginx() {
    cat > "$work/nginx.conf" <<CONF
worker_processes $workers;
worker_rlimit_nofile 20000;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections ${nginx_connections:-4096}; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types { video/mp4 mp4; }
    ${nginx_http:-}
    client_body_temp_path $work;
    proxy_temp_path $work;
    fastcgi_temp_path $work;
    uwsgi_temp_path $work;
    scgi_temp_path $work;
    server {
        listen 127.0.0.1:$nginx_port reuseport;
        root $work/www;
        ${1:-}
    }
}
CONF
    nginx -c "$work/nginx.conf"
}

# start_loomiere [EXTRA_OPTION_LINES]: starts it on $loomiere_port (admin
# port $loomiere_admin, default off) and waits until it answers.
start_loomiere() {
    cat > "$work/options.lua" <<CONF
options.workers = $workers
options.access_log = false
options.root = ${loomiere_admin:-false}
options.hosts[''] = { folder = '$work/www' }
${1:-}
CONF
    ./target/release/loomiere -o "$work/options.lua" -b 127.0.0.1 -p "$loomiere_port" 2>"$work/loomiere.log" &
    lpid=$!
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$loomiere_port/" && return; sleep 0.1; done
    echo "loomiere did not start:" >&2
    cat "$work/loomiere.log" >&2
    exit 1
}

# tree_ticks PID: CPU ticks (user + system) of a process and its children,
# for CPU per request when the load generator shares the server's cores.
tree_ticks() {
    local total=0 pid
    for pid in $1 $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
        [ -r "/proc/$pid/stat" ] || continue
        total=$((total + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat")))
    done
    echo "$total"
}

# result BENCHMARK MEASURE NGINX LOOMIERE RATIO: one row of benches/RESULTS.md.
# benches/run collects these lines from every script's output; a script run
# alone prints them at its end too.
result() { printf 'result|%s|%s|%s|%s|%s\n' "$@"; }

# ratio A B: A/B to two decimals, with a multiplication sign.
ratio() { echo "$1 $2" | awk '{ if ($2 > 0) printf "%.2f\xc3\x97", $1 / $2; else print "-" }'; }

# cpu_us_per TICKS_BEFORE TICKS_AFTER COUNT: server CPU microseconds per item.
cpu_us_per() { echo "$1 $2 $3 $(getconf CLK_TCK)" | awk '{ printf "%.1f", ($2 - $1) * 1000000 / $4 / ($3 > 0 ? $3 : 1) }'; }

# make_films: the simulated players' films, generated once into
# target/bench-media/ ($media): scenes600.mp4 (10 min, busy and calm scenes
# in turn) and low600.mp4 (10 min at about 40 kbit/s, for many streams), each
# with its .need map of media time to bytes taken from ffprobe's packets.
media=target/bench-media
make_films() {
    mkdir -p "$media"
    if [ ! -e "$media/scenes600.done" ]; then
        echo "generating $media/scenes600.mp4: 10 min, 30 s busy scenes (noise) and 30 s calm ones in turn (a few minutes)"
        ffmpeg -hide_banner -loglevel error -y -nostdin \
            -f lavfi -i "color=c=gray:size=320x180:rate=25:duration=600" \
            -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=600" \
            -vf "noise=alls=40:allf=t+u:enable='lt(mod(t\,60)\,30)'" \
            -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0 -crf 26 \
            -c:a aac -b:a 48k -ac 1 -movflags +faststart "$media/scenes600.mp4"
        touch "$media/scenes600.done"
    fi
    make_low_film low600 600
    need_curves scenes600 low600
}

# make_low_film NAME SECONDS: a film at about 40 kbit/s, for many streams.
make_low_film() {
    local name=$1 seconds=$2
    mkdir -p "$media"
    if [ ! -e "$media/$name.done" ]; then
        echo "generating $media/$name.mp4: $((seconds / 60)) min at about 40 kbit/s, for many streams"
        ffmpeg -hide_banner -loglevel error -y -nostdin \
            -f lavfi -i "testsrc2=size=160x90:rate=10:duration=$seconds" \
            -f lavfi -i "sine=frequency=440:sample_rate=22050:duration=$seconds" \
            -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 20 -b:v 24k -maxrate 32k -bufsize 64k \
            -c:a aac -b:a 16k -ac 1 -movflags +faststart "$media/$name.mp4"
        touch "$media/$name.done"
    fi
}

# need_curves FILM...: each film's media time → bytes map, from ffprobe's
# packets (not from Loomiere's parsers), into $media/FILM.need.
need_curves() {
    for film in "$@"; do
        [ -e "$media/$film.need" ] && continue
        ffprobe -v error -show_entries packet=dts_time,pos,size -of compact=p=0 "$media/$film.mp4" |
            python3 -c '
import sys
packets = []
for line in sys.stdin:
    f = dict(kv.split("=", 1) for kv in line.strip().split("|") if "=" in kv)
    try:
        packets.append((float(f["dts_time"]), int(f["pos"]) + int(f["size"])))
    except (KeyError, ValueError):
        pass
packets.sort()
first = packets[0][0]
reached = 0
for time, end in packets:
    reached = max(reached, end)
    print("%.3f %d" % (time - first, reached))
' > "$media/$film.need"
    done
}

# make_hour_film: the one-hour film of the seek and packaging benchmarks
# (320x180 H.264/AAC, 25 fps, a keyframe every 2 s, moov at the end as ffmpeg
# writes it, about 300 MB), generated once into $media.
make_hour_film() {
    mkdir -p "$media"
    if [ ! -e "$media/hour.done" ]; then
        echo "generating $media/hour.mp4 (about a minute)"
        ffmpeg -hide_banner -loglevel error -y -nostdin \
            -f lavfi -i "testsrc2=size=320x180:rate=25:duration=3600" \
            -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=3600" \
            -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0 -b:v 600k \
            -c:a aac -b:a 64k "$media/hour.mp4"
        touch "$media/hour.done"
    fi
}

# make_long_films: the films of issue 24 in $media, generated once: the
# one-hour film fragmented (ffmpeg -c copy, one moof a keyframe), and a
# ten-hour film as tests/media/generate.sh makes it (160x90, 25 fps, a
# keyframe every 2 s, moov at the end: ten minutes encoded and copied end to
# end, 900 000 video frames, a 22 MB moov) with the same fragmented, and a
# film of 6 000 000 samples of 4 ms whose moov takes 71 MB (a minute at 250
# frames a second copied end to end 400 times), and the fragmented hour
# again without its mfra.
make_long_films() {
    make_hour_film
    [ -e "$media/big_moov.mp4" ] && [ -e "$media/hour_frag_nomap.mp4" ] || rm -f "$media/long.done"
    if [ ! -e "$media/long.done" ]; then
        echo "generating $media/hour_frag.mp4, $media/ten_hours{,_frag}.mp4 and $media/big_moov.mp4 (about two minutes)"
        local quiet=(-hide_banner -loglevel error -y -nostdin)
        ffmpeg "${quiet[@]}" -i "$media/hour.mp4" -map 0 -c copy -movflags frag_keyframe+empty_moov "$media/hour_frag.mp4"
        ffmpeg "${quiet[@]}" -f lavfi -i "testsrc2=size=160x90:rate=25:duration=600" \
            -f lavfi -i "sine=frequency=440:sample_rate=22050:duration=600" \
            -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0 -b:v 20k \
            -c:a aac -b:a 16k -ac 1 "$media/ten_minutes.mp4"
        for _ in $(seq 60); do echo "file 'ten_minutes.mp4'"; done > "$media/ten_hours.txt"
        ffmpeg "${quiet[@]}" -f concat -safe 0 -i "$media/ten_hours.txt" -c copy "$media/ten_hours.mp4"
        ffmpeg "${quiet[@]}" -i "$media/ten_hours.mp4" -map 0 -c copy -movflags frag_keyframe+empty_moov "$media/ten_hours_frag.mp4"
        rm -f "$media/ten_minutes.mp4" "$media/ten_hours.txt"
        ffmpeg "${quiet[@]}" -f lavfi -i "testsrc2=size=160x90:rate=250:duration=60" \
            -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 500 -keyint_min 500 -sc_threshold 0 -b:v 40k \
            "$media/one_minute.mp4"
        for _ in $(seq 400); do echo "file 'one_minute.mp4'"; done > "$media/big_moov.txt"
        ffmpeg "${quiet[@]}" -f concat -safe 0 -i "$media/big_moov.txt" -c copy "$media/big_moov.mp4"
        rm -f "$media/one_minute.mp4" "$media/big_moov.txt"
        # The fragmented hour without the mfra ffmpeg writes at the end: no
        # map of its moofs to read ahead from a cold disk.
        ffmpeg "${quiet[@]}" -i "$media/hour.mp4" -map 0 -c copy -movflags frag_keyframe+empty_moov+skip_trailer "$media/hour_frag_nomap.mp4"
        touch "$media/long.done"
    fi
}

# stop_servers: stops the nginx and the Loomiere a script started (the
# scripts that start them more than once, and their EXIT traps).
stop_servers() {
    if [ -e "$work/nginx.pid" ]; then
        kill -QUIT "$(cat "$work/nginx.pid")" 2>/dev/null || true
        sleep 1
        rm -f "$work/nginx.pid"
    fi
    if [ -n "${lpid:-}" ]; then
        kill -QUIT "$lpid" 2>/dev/null || true
        wait "$lpid" 2>/dev/null || true
        lpid=
    fi
}

# Prints the server's process ids (the master and its children).
server_pids() {
    local root=$1
    echo "$root"
    cat "/proc/$root/task/$root/children" 2>/dev/null | tr ' ' '\n' | grep -v '^$' || true
}
# CPU ticks (user + system) and PSS in KiB of a list of processes.
measure() {
    python3 - "$@" <<'PY'
import sys
ticks = pss = 0
for pid in sys.argv[1:]:
    try:
        stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        ticks += int(stat[11]) + int(stat[12])
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                pss += int(line.split()[1])
    except OSError:
        pass
print(ticks, pss)
PY
}

# lag_percentiles JSON_BEFORE JSON_AFTER: the slice lag's p50 and p99 (as
# "<=N" ms, the histogram bucket's upper bound) over the slices sent between
# two /monitor?format=json snapshots.
lag_percentiles() {
    python3 - "$1" "$2" <<'PY'
import json, sys
def hist(text):
    return {h["le_ms"]: h["count"] for h in json.loads(text)["data:delay:histogram"]}
h0, h1 = hist(sys.argv[1]), hist(sys.argv[2])
keys = sorted(h1, key=lambda k: float("inf") if k is None else k)
delta = [(k, h1[k] - h0.get(k, 0)) for k in keys]
total = sum(c for _, c in delta)
found = []
for share in (0.50, 0.99):
    seen = 0
    for k, c in delta:
        seen += c
        if total and seen >= share * total:
            found.append("<=%s" % ("inf" if k is None else k))
            break
    else:
        found.append("-")
print(*found)
PY
}

#!/usr/bin/env bash
# A soak: MINUTES (default 30) of mixed load on one Loomiere, 2 workers:
#
#   - 20 000 throttled streams of low1200.mp4 (20 min) with churn: cohorts of
#     2 000 players, each living ten minutes, one joining every minute: ten
#     minutes of ramp, then every minute the oldest cohort leaves as a new one
#     joins. (Starting all ten at once would put twice as many streams in the
#     first generation of workers as a reload cycle ever gives one later, and
#     minute 10, the reference, would not look like the steady state.) Odd
#     cohorts seek (?start=60); even ones report their position to /.hint as
#     hint.js does.
#   - background traffic (a Python client): 10 KB files on keep-alive
#     connections, random HLS segments of scenes600.mp4, the monitor.
#   - a SIGHUP reload every 5 minutes, and one `kill -9` of the busiest worker
#     at minute 10.
#
# Every minute it records each server process's RSS and PSS and open
# descriptors, the streams and the counters; at the end it checks that
# memory is flat (in the minute before each reload of the last ten minutes
# within 5 % of minute 10's: old workers finish their streams after a
# reload, so memory follows the reload cycle),
# that descriptors did not grow, that no answer was a 5xx and that the log
# has nothing above warn that the faults do not explain. Writes the figures
# and an SVG plot to benches/soak.md and benches/soak.svg (benches/run puts
# them into benches/RESULTS.md).
#
#   benches/soak.sh [MINUTES]          not part of the test command
#   SOAK_MINUTE=5 SOAK_COHORT=200 benches/soak.sh 12
#                                      a quick check of the script itself
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
minutes=${1:-30}
[ "$minutes" -ge 12 ] || { echo "soak: at least 12 minutes (minute 10 is the reference)" >&2; exit 2; }
cohort=${SOAK_COHORT:-2000}
cohorts=10
tick=${SOAK_MINUTE:-60}  # seconds in a "minute"
workers=2

for tool in ffmpeg ffprobe curl python3; do
    command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg curl python3 >/dev/null; }
done
build_release
CARGO_TARGET_DIR=target cargo build --release --quiet --manifest-path benches/players/Cargo.toml
player_bin=target/release/loomiere-players
make_films
# Streams must outlast their ten-minute players, seeking ones too: a film of
# twenty minutes (low600 would end, seeked to 60 s, after about nine).
make_low_film low1200 1200
need_curves low1200

work=$(mktemp -d /tmp/loomiere-soak.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; stop_servers; rm -rf "$work"' EXIT
mkdir -p "$work/www"
for film in scenes600 low1200; do
    ln "$media/$film.mp4" "$work/www/$film.mp4" 2>/dev/null || cp "$media/$film.mp4" "$work/www/$film.mp4"
done
for i in $(seq 0 9); do head -c 10240 /dev/urandom > "$work/www/small$i.jpg"; done
chmod -R a+rX "$work"

loomiere_port=18500
loomiere_admin=18501
start_loomiere "options.clients = 40000
options.access_log = true
options.hosts[''].hints = true"

# cohort N LIFETIME_SECONDS: one process of $cohort players.
cohort() {
    local n=$1 lifetime=$2 path=/low1200.mp4 extra=()
    if [ $((n % 2)) = 1 ]; then path="/low1200.mp4?start=60"; else extra=(--hints 1); fi
    nice -n 10 "$player_bin" --port "$loomiere_port" --path "$path" --curve "$media/low1200.need" \
        --count "$cohort" --run-for "$lifetime" --connect-rate 500 \
        --source "127.0.$((n / 200 + 1)).$((n % 200 + 10))" "${extra[@]}" \
        > "$work/cohort.$n" 2>> "$work/players.err" &
}

# The background traffic, until killed; it counts answers by status class.
python3 - "$loomiere_port" "$loomiere_admin" "$work/traffic.counts" <<'PY' &
import http.client, random, sys, time, json
port, admin, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
counts = {}
conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(4)]
segments = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
monitor = http.client.HTTPConnection("127.0.0.1", admin, timeout=10)
def get(conn, target):
    # A keep-alive connection the server closed (a reload drains idle ones)
    # is retried once on a new connection, as browsers and players do.
    for attempt in (1, 2):
        try:
            conn.request("GET", target)
            r = conn.getresponse()
            r.read()
            key = "%dxx" % (r.status // 100)
            break
        except Exception as e:
            conn.close()
            key = "error:" + type(e).__name__
            if attempt == 1:
                counts["reconnects"] = counts.get("reconnects", 0) + 1
    counts[key] = counts.get(key, 0) + 1
last = time.time()
tick = 0
while True:
    # About 200 small files, 10 segments and one monitor page a second.
    for conn in conns:
        for _ in range(5):
            get(conn, "/small%d.jpg" % random.randrange(10))
    if tick % 4 == 0:
        get(segments, "/scenes600.mp4/seg-%d.m4s" % random.randrange(100))
    if tick % 40 == 0:
        get(monitor, "/monitor?format=json")
    tick += 1
    time.sleep(0.1)
    if time.time() - last >= 5:
        last = time.time()
        open(out, "w").write(json.dumps(counts))
PY
traffic=$!

# One line per minute: minute, streams, server RSS/PSS (KiB), descriptors,
# then per-process "pid:rss:fds" fields.
sample() {
    python3 - "$1" "$lpid" "$loomiere_admin" <<'PY'
import json, os, sys, urllib.request
minute, root, admin = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pids = [root] + [int(p) for p in open(f"/proc/{root}/task/{root}/children").read().split()]
rss = pss = fds = 0
per = []
for pid in pids:
    try:
        r = int(next(l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:")).split()[1])
        p = int(next(l for l in open(f"/proc/{pid}/smaps_rollup") if l.startswith("Pss:")).split()[1])
        f = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        continue
    rss, pss, fds = rss + r, pss + p, fds + f
    per.append(f"{pid}:{r}:{f}")
streams = "-"
try:
    data = json.load(urllib.request.urlopen(f"http://127.0.0.1:{admin}/monitor?format=json", timeout=5))
    streams = int(data.get("streams:active", 0))
except Exception:
    pass
print(minute, streams, rss, pss, fds, " ".join(per))
PY
}

echo "soak: $minutes minutes, $((cohort * cohorts)) streams with churn, 2 workers (log: $work/loomiere.log)"
cohort 1 $((cohorts * tick))
next=2
killed=
# The worker killed with SIGKILL goes at minute 10, right after its sample:
# the bench players do not redial, so the streams it held are gone until their
# cohorts' turn to be replaced comes, which is over before the last ten minutes.
kill_at=10
: > "$work/minutes"
# Samples are taken half a minute after each cohort joined and half a minute
# before the next change: a fixed phase of the churn, when every cohort is in
# (a cohort joins in a few seconds) and none is leaving. Each reload comes
# before the cohort of its minute joins, so a cohort's streams are all with
# one generation of workers.
half=$((tick / 2))
for minute in $(seq 1 "$minutes"); do
    sleep "$half"
    sample "$minute" | tee -a "$work/minutes" | cut -d' ' -f1-5
    sleep $((tick - half))
    if [ "$minute" = "$kill_at" ]; then
        # The busiest worker (most descriptors); the monitor holds the admin port.
        holders=$(ss -Hltnp "sport = :$loomiere_admin" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)
        killed=$(for pid in $(cat "/proc/$lpid/task/$lpid/children"); do
            echo "$(ls "/proc/$pid/fd" 2>/dev/null | wc -l) $pid"; done |
            awk -v held=" $(echo $holders) " 'index(held, " " $2 " ") == 0' | sort -rn | head -1 | cut -d' ' -f2)
        kill -9 "$killed"
        echo "minute $minute: kill -9 $killed"
    fi
    if [ $((minute % 5)) = 0 ]; then kill -HUP "$lpid"; echo "minute $minute: SIGHUP"; fi
    cohort "$next" $((cohorts * tick))
    next=$((next + 1))
done
kill "$traffic" 2>/dev/null || true
sleep 1
cp "$work/loomiere.log" "$work/loomiere.log.end"
mkdir -p target && cp "$work/minutes" target/soak-minutes.txt  # per-process figures, for a closer look

python3 - "$work/minutes" "$work/traffic.counts" "$work/loomiere.log.end" "$minutes" "$(git rev-parse --short HEAD)" <<'PY'
import json, re, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
counts = json.loads(open(sys.argv[2]).read() or "{}")
log = open(sys.argv[3], errors="replace").read().splitlines()
minutes, commit = int(sys.argv[4]), sys.argv[5]
minute = [int(r[0]) for r in rows]
streams = [int(r[1]) if r[1] != "-" else 0 for r in rows]
rss = [int(r[2]) for r in rows]
pss = [int(r[3]) for r in rows]
fds = [int(r[4]) for r in rows]
# Old workers finish their streams after a reload, so how many generations of
# workers run (and their memory) follows the 5-minute reload cycle: memory is
# compared at one point of that cycle, the sample before each reload (minutes
# 10, 15, ...), between minute 10 and the last ten minutes.
ref = minute.index(10)
last10 = [i for i in range(len(rows)) if minute[i] % 5 == 0 and minute[i] > max(minutes - 10, 10)]
if not last10:
    last10 = [len(rows) - 1]
drift = max(abs(pss[i] - pss[ref]) / pss[ref] for i in last10)
fd_growth = (max(fds[i] for i in last10) - fds[ref]) / fds[ref]
compared = ", ".join(str(minute[i]) for i in last10)
# Access log: status is the field after the quoted request line.
statuses = {}
refused = []
for line in log:
    m = re.search(r'" (\d{3}) ', line)
    if m and '"GET / HTTP/1.1" 403' in line and '"curl/' in line:
        continue  # start_loomiere's readiness probe (a folder is not listed)
    if m:
        statuses[m.group(1)[0] + "xx"] = statuses.get(m.group(1)[0] + "xx", 0) + 1
        if m.group(1)[0] in "45":
            refused.append(line)
fives = statuses.get("5xx", 0) + counts.get("5xx", 0)
# Lines above warn, and those the faults explain (the killed worker and its replacement).
explained = re.compile(r"was killed by SIGKILL|starting a new one|is stuck")
serious = [l for l in log if re.match(r"^\S+ \S+ ERROR ", l)]
unexplained = [l for l in serious if not explained.search(l)]
errors = sum(v for k, v in counts.items() if k.startswith("error:"))
failures = [why for bad, why in [
    (drift > 0.05, "memory drifted more than 5 %"),
    (fd_growth > 0.05, "descriptors grew more than 5 %"),
    (fives > 0, "5xx answers"),
    (errors > 0, "requests that failed even when retried"),
    (statuses.get("4xx", 0) > 0, "4xx answers (the traffic asks only for what exists)"),
    (bool(unexplained), "log lines above warn that the faults do not explain"),
] if bad]
ok = not failures
lines = []
lines.append(f"Soak of commit {commit}: {minutes} minutes, 20 000 throttled streams with churn "
             "(a cohort of 2 000 joins every minute; after the ten-minute ramp 2 000 leave as 2 000 join, half of them seeking, half reporting hints), "
             "10 KB keep-alive requests, random HLS segments and the monitor beside them, "
             "SIGHUP every 5 minutes, the busiest worker killed with SIGKILL at minute 10.")
lines.append("")
at = lambda values: " / ".join(str(values[i]) for i in last10)
lines.append(f"Memory and descriptors are compared in the minute before each reload (old workers finish their streams after a reload, so the number of worker generations follows the 5-minute cycle): minute 10 against minutes {compared}.")
lines.append("")
lines.append("| | figure |")
lines.append("|---|---|")
lines.append(f"| streams held (minute 10 / minutes {compared}) | {streams[ref]} / {at(streams)} |")
lines.append(f"| server PSS, all processes (minute 10 / minutes {compared} / largest drift) | {pss[ref] / 1024:.1f} MB / {' / '.join(f'{pss[i] / 1024:.1f}' for i in last10)} MB / {drift * 100:.1f} % |")
lines.append(f"| server RSS, all processes (minute 10 / minutes {compared}) | {rss[ref] / 1024:.1f} MB / {' / '.join(f'{rss[i] / 1024:.1f}' for i in last10)} MB |")
lines.append(f"| open descriptors (minute 10 / minutes {compared}) | {fds[ref]} / {at(fds)} ({fd_growth * 100:+.1f} %) |")
lines.append(f"| server PSS, smallest / largest of all minutes | {min(pss) / 1024:.1f} MB / {max(pss) / 1024:.1f} MB |")
lines.append(f"| answers by class (access log, streams and background traffic) | {', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))} |")
lines.append(f"| background client's answers | {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))} |")
lines.append(f"| log lines above warn / not explained by the kill | {len(serious)} / {len(unexplained)} |")
lines.append(f"| verdict | {'flat memory, no descriptor growth, no 5xx, no unexplained errors' if ok else 'FAILED: ' + '; '.join(failures)} |")
for l in (unexplained + refused)[:10]:
    lines.append(f"\n    {l}")
lines.append("")
lines.append("![server memory and descriptors per minute](soak.svg)")
open("benches/soak.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
# The plot: PSS (MB) and descriptors (thousands) per minute.
W, H, L, B = 640, 300, 50, 30
def path(values, top):
    pts = []
    for m, v in zip(minute, values):
        x = L + (m - 1) / max(minutes - 1, 1) * (W - L - 20)
        y = H - B - v / top * (H - B - 20)
        pts.append(f"{x:.1f},{y:.1f}")
    return " ".join(pts)
top_mb = max(p / 1024 for p in pss) * 1.25
top_fd = max(fds) / 1000 * 1.25
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<line x1="{L}" y1="{H - B}" x2="{W - 20}" y2="{H - B}" stroke="black"/>',
       f'<line x1="{L}" y1="20" x2="{L}" y2="{H - B}" stroke="black"/>',
       f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle">minute</text>',
       f'<text x="{L - 5}" y="{H - B}" text-anchor="end">0</text>',
       f'<text x="{L - 5}" y="24" text-anchor="end">{top_mb:.0f} MB</text>',
       f'<text x="{W - 20}" y="{H - B + 14}" text-anchor="end">{minutes}</text>',
       f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{path([p / 1024 for p in pss], top_mb)}"/>',
       f'<polyline fill="none" stroke="#d62728" stroke-width="2" points="{path([f / 1000 for f in fds], top_fd)}"/>',
       f'<text x="{L + 10}" y="16" fill="#1f77b4">server PSS (MB, scale 0–{top_mb:.0f})</text>',
       f'<text x="{L + 260}" y="16" fill="#d62728">open descriptors (thousands, scale 0–{top_fd:.0f})</text>',
       '</svg>']
open("benches/soak.svg", "w").write("\n".join(svg) + "\n")
sys.exit(0 if ok else 1)
PY

#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60), seeded with the media fixtures.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#   fuzz/run.sh --list        the targets, one per line
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain the
# sanitizer flags cargo-fuzz passes are enabled with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")"
all=(http_head flv mp4 range_query amf0 mp4_seek schedule routes segments lua_patterns srt)
if [ "${1:-}" = "--list" ]; then printf '%s\n' "${all[@]}"; exit 0; fi
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for target in "${all[@]}"; do mkdir -p "corpus/$target"; done
cp -n ../tests/media/*.flv corpus/flv/ 2>/dev/null || true
cp -n ../tests/media/*.mp4 corpus/mp4/ 2>/dev/null || true
# Fragmented seeds (issue 24): the first second of the committed film as
# ffmpeg's fragmenting muxers write it.
if command -v ffmpeg >/dev/null; then
    for flags in frag_keyframe+empty_moov frag_every_frame+empty_moov dash+global_sidx cmaf frag_keyframe; do
        seed=corpus/mp4/frag-${flags//+/-}.mp4
        # Two runs may seed at once (tests/run fuzzes targets in pairs):
        # each writes its own file and renames it into place.
        [ -e "$seed" ] || { ffmpeg -hide_banner -loglevel error -nostdin -y -i ../tests/media/sample.mp4 -t 1 \
            -c copy -movflags "$flags" -f mp4 "$seed.$$" && mv -f "$seed.$$" "$seed"; } || rm -f "$seed.$$"
    done
fi
# segments: 3 bytes of settings (segment length, clip start, clip length), then a film.
for film in ../tests/media/*.mp4; do
    [ -e "corpus/segments/$(basename "$film")" ] || { printf '\x0b\x00\x00'; cat "$film"; } > "corpus/segments/$(basename "$film")"
done
printf 'GET /a.mp4?start=1.5&end=3 HTTP/1.1\r\nHost: a\r\nRange: bytes=0-9\r\n\r\n' > corpus/http_head/get
printf '\x00\x10\x00\x00\x00\x00\x00\x00bytes=0-99,200-' > corpus/range_query/range
printf '\x00\x10\x00\x00\x00\x00\x00\x00start=1.5&stop=3&units=s&hint=abc' > corpus/range_query/query
printf '\x02\x00\x0aonMetaData\x08\x00\x00\x00\x01\x00\x08duration\x00\x40\x24\x00\x00\x00\x00\x00\x00\x00\x00\x09' > corpus/amf0/metadata
printf '\x40\x42\x0f\x00\x00\x00\x00\x00\x00' > corpus/mp4_seek/one-second
printf '\x40\x42\x0f\x00\x20\xa1\x07\x00\x05' > corpus/mp4_seek/fragmented-exact
printf '\x0c\x04\x80\x40\x40\x10\x20\x00\x10\x00\x00\x08\x00\x00\x00\x00\x08\x40\x08\x40\x08\x10' > corpus/schedule/steps
printf '^/old/(.*)$\x01/new/$1?x=${1}\x01/old/a/b.mp4?start=1' > corpus/routes/rewrite
# The CI run on 545d0a2's finding: a pattern past PCRE2's match limit in `alter`.
printf '^/o|(.*)+/\x01/new/$1?x\x01/olat=\x01\x01%s\n3' "$(printf '\x02%.0s' $(seq 40))" > corpus/routes/backtrack
# lua_patterns: a selector byte, then subject, pattern and replacement split by \x01.
printf '\x03/films/a_720.mp4\x01^/films/(.-)_(%%d+)%%.mp4$\x01%%2/%%1' > corpus/lua_patterns/gsub
printf '\x05key = value, k2=v2\x01(%%w+)%%s*=%%s*(%%w+)\x01' > corpus/lua_patterns/gmatch
printf '\x00THE (quick) fox\x01%%f[%%a]%%a+%%b()\x01' > corpus/lua_patterns/find
printf '1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>Hello</i> & {\\an8}bye\r\n\r\n2\n100:00:03.5 --> 100:00:04,25 X1:1\nlast\n' > corpus/srt/cues
for target in "${targets[@]}"; do
    # Per-input time limit 10 s and memory limit 2 GB: a hang or a runaway
    # allocation is a finding, like a crash.
    RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir . "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done

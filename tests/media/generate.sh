#!/usr/bin/env bash
# Regenerates the committed media fixtures (small, real H.264/AAC) with ffmpeg.
# Larger fixtures are generated at test time into tests/media/generated/.
set -euo pipefail
cd "$(dirname "$0")"
command -v ffmpeg >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; }

common=(-hide_banner -loglevel error -y)
video=(-f lavfi -i "testsrc2=size=160x90:rate=25")
audio=(-f lavfi -i "sine=frequency=440:sample_rate=44100")
h264=(-c:v libx264 -pix_fmt yuv420p -profile:v main -bf 2 -g 25 -keyint_min 25 -sc_threshold 0 -b:v 120k)
aac=(-c:a aac -b:a 48k -ac 1)

# 4 s, keyframe every second, moov at the end (as ffmpeg writes it).
ffmpeg "${common[@]}" "${video[@]}" "${audio[@]}" -t 4 "${h264[@]}" "${aac[@]}" sample.mp4
# The same as FLV (H.264/AAC).
ffmpeg "${common[@]}" -i sample.mp4 -c copy sample.flv

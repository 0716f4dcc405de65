#!/usr/bin/env bash
# Media fixtures for the tests: real H.264/AAC (and Sorenson/MP3) made with ffmpeg.
#
#   tests/media/generate.sh            generate tests/media/generated/ (skipped when up to date)
#   tests/media/generate.sh --commit   also regenerate the small committed fixtures
#
# The committed fixtures (sample.mp4, sample_frag.mp4, sample.flv) are small; everything else
# is generated at test time into tests/media/generated/ (not committed).
set -euo pipefail
cd "$(dirname "$0")"
command -v ffmpeg >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; }

common=(-hide_banner -loglevel error -y -nostdin)
h264=(-c:v libx264 -pix_fmt yuv420p -profile:v main -bf 2 -g 25 -keyint_min 25 -sc_threshold 0)
aac=(-c:a aac -b:a 48k -ac 1)

if [ "${1:-}" = "--commit" ]; then
    # 4 s, keyframe every second, moov at the end (as ffmpeg writes it), and the same as FLV.
    ffmpeg "${common[@]}" -f lavfi -i "testsrc2=size=160x90:rate=25" -f lavfi -i "sine=frequency=440:sample_rate=44100" \
        -t 4 "${h264[@]}" -b:v 120k "${aac[@]}" sample.mp4
    ffmpeg "${common[@]}" -i sample.mp4 -c copy sample.flv
    # The same fragmented (a moof a keyframe): the mp4_seek fuzz target's second film.
    ffmpeg "${common[@]}" -i sample.mp4 -c copy -movflags frag_keyframe+empty_moov sample_frag.mp4
fi

# Several test processes may ask at once: one generates, the others wait.
mkdir -p generated
exec 9>generated/.lock
flock 9
stamp="generated/.stamp-$(sha256sum generate.sh | cut -c1-16)"
[ -e "$stamp" ] && exit 0
rm -f generated/*.mp4 generated/*.m4a generated/*.flv generated/*.vtt generated/*.srt generated/.stamp-*
cd generated

# nginx's test layout: a 10 s video track and a 20 s audio track, a keyframe every second.
ffmpeg "${common[@]}" -f lavfi -i "testsrc2=size=160x90:rate=25:duration=10" \
    -f lavfi -i "sine=frequency=330:sample_rate=44100:duration=20" \
    "${h264[@]}" -b:v 100k "${aac[@]}" v10a20.mp4
# moov first (fast start).
ffmpeg "${common[@]}" -i ../sample.mp4 -c copy -movflags +faststart faststart.mp4
# Audio only.
ffmpeg "${common[@]}" -f lavfi -i "sine=frequency=550:sample_rate=44100:duration=12" "${aac[@]}" audio.m4a
# Variable bitrate: 2 s of noise, 2 s of a still picture, alternating, 16 s.
ffmpeg "${common[@]}" -f lavfi -i "color=c=gray:size=320x180:rate=25:duration=16" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=16" \
    -vf "noise=alls=80:allf=t+u:enable='lt(mod(t\,4)\,2)'" "${h264[@]}" -crf 23 "${aac[@]}" vbr.mp4
# Throttling: 64 s alternating 4 s of noise (about 500 KB/s) and 4 s of a
# still picture (about 18 KB/s), fast start; the same with the moov at the
# end; and as FLV with and without a keyframe index in onMetaData.
ffmpeg "${common[@]}" -f lavfi -i "color=c=gray:size=320x180:rate=25:duration=64" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=64" \
    -vf "noise=alls=60:allf=t+u:enable='lt(mod(t\,8)\,4)'" "${h264[@]}" -crf 23 "${aac[@]}" \
    -movflags +faststart vbr60.mp4
ffmpeg "${common[@]}" -i vbr60.mp4 -c copy vbr60-moov-at-end.mp4
ffmpeg "${common[@]}" -i vbr60.mp4 -c copy -flvflags add_keyframe_index vbr60.flv
ffmpeg "${common[@]}" -i vbr60.mp4 -c copy vbr60-no-index.flv
# A small media file (about 550 KB for 30 s), below throttle_from.
ffmpeg "${common[@]}" -f lavfi -i "testsrc2=size=160x90:rate=25:duration=30" \
    -f lavfi -i "sine=frequency=660:sample_rate=44100:duration=30" \
    "${h264[@]}" -b:v 100k "${aac[@]}" -movflags +faststart small30.mp4
# Two audio tracks (English and French) beside the video, 20 s: packaging's
# extra audio renditions.
ffmpeg "${common[@]}" -f lavfi -i "testsrc2=size=160x90:rate=25:duration=20" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=20" \
    -f lavfi -i "sine=frequency=880:sample_rate=48000:duration=20" \
    -map 0 -map 1 -map 2 "${h264[@]}" -b:v 100k "${aac[@]}" \
    -metadata:s:a:0 language=eng -metadata:s:a:1 language=fra two-audio.mp4
# A rendition ladder (issue 23): the same 12 s at three sizes with the same
# GOP (a keyframe every second), the first with a second, French audio
# track; a rendition whose keyframes fall elsewhere (every 1.4 s); one that
# lasts far longer.
for height in 180 360 720; do
    if [ $height = 180 ]; then
        french=(-f lavfi -i "sine=frequency=880:sample_rate=48000:duration=12")
        maps=(-map 0 -map 1 -map 2)
    else
        french=()
        maps=(-map 0 -map 1)
    fi
    ffmpeg "${common[@]}" -f lavfi -i "testsrc2=size=$((height * 16 / 9))x$height:rate=25:duration=12" \
        -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=12" "${french[@]}" "${maps[@]}" \
        "${h264[@]}" -b:v "$((height * 2))k" "${aac[@]}" \
        -metadata:s:a:0 language=eng -metadata:s:a:1 language=fra "ladder_$height.mp4"
done
ffmpeg "${common[@]}" -f lavfi -i "testsrc2=size=640x360:rate=25:duration=12" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=12" \
    -c:v libx264 -pix_fmt yuv420p -profile:v main -bf 2 -g 35 -keyint_min 35 -sc_threshold 0 \
    -b:v 400k "${aac[@]}" ladder_misaligned.mp4
ffmpeg "${common[@]}" -f lavfi -i "testsrc2=size=640x360:rate=25:duration=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=30" \
    "${h264[@]}" -b:v 400k "${aac[@]}" ladder_long.mp4
# Sidecar subtitles beside the ladder's first file: WebVTT in English, SRT in
# French (with a BOM and CRLF, as SRT files come), and German that is not
# subtitles at all (left out of the presentation).
printf 'WEBVTT\n\n00:00:00.500 --> 00:00:04.000\nHello from the ladder\n\n00:00:06.000 --> 00:00:09.000\nA second cue\n' > ladder_180.en.vtt
printf '\xef\xbb\xbf1\r\n00:00:01,000 --> 00:00:05,000\r\nBonjour <i>tout le monde</i>\r\n\r\n2\r\n00:00:07,000 --> 00:00:10,500\r\nDeuxième réplique\r\n' > ladder_180.fr.srt
printf 'this is not\na subtitle file\n' > ladder_180.de.srt
# The codec matrix (issue 23): 4 s each, a keyframe every second, one of
# each video and audio coding that packaging signals. HE-AAC needs an
# encoder Debian's ffmpeg lacks (libfdk_aac): its esds is unit-tested.
codecs=(-f lavfi -i "testsrc2=size=320x180:rate=25:duration=4" -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=4")
x265=(-c:v libx265 -preset ultrafast -x265-params "keyint=25:min-keyint=25:scenecut=0:log-level=error")
gop=(-g 25 -keyint_min 25)
ffmpeg "${common[@]}" "${codecs[@]}" "${x265[@]}" -tag:v hvc1 -c:a eac3 -b:a 96k codec_hvc1.mp4
ffmpeg "${common[@]}" "${codecs[@]}" "${x265[@]}" -c:a ac3 -b:a 96k codec_hev1.mp4
ffmpeg "${common[@]}" "${codecs[@]}" -c:v libsvtav1 -preset 12 "${gop[@]}" -svtav1-params tune=0 \
    -c:a libopus -b:a 48k codec_av1.mp4 >/dev/null 2>&1
ffmpeg "${common[@]}" "${codecs[@]}" -c:v libvpx-vp9 -deadline realtime -cpu-used 8 "${gop[@]}" -b:v 200k \
    -c:a flac -strict -2 codec_vp9.mp4
ffmpeg "${common[@]}" "${codecs[@]}" -c:v libx264 -pix_fmt yuv420p -profile:v high -bf 2 "${gop[@]}" \
    -sc_threshold 0 -tag:v avc3 -c:a aac -b:a 48k codec_avc3.mp4
# Fragmented files (issue 24), each the same 20 s film (B-frames, a
# keyframe every second) as regular.mp4, fragmented as the tools do it.
ffmpeg "${common[@]}" -f lavfi -i "testsrc2=size=160x90:rate=25:duration=20" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=20" \
    "${h264[@]}" -b:v 100k "${aac[@]}" regular.mp4
fragment() { # NAME INPUT MUXER-OPTIONS...
    local name=$1 input=$2
    shift 2
    ffmpeg "${common[@]}" -i "$input" -map 0 -c copy "$@" "$name"
}
fragment frag_keyframe.mp4 regular.mp4 -movflags frag_keyframe+empty_moov
# The fragmented file made regular again (-c copy, no fragments): what its
# seeks must decode to, audio included.
ffmpeg "${common[@]}" -i frag_keyframe.mp4 -map 0 -c copy unfragmented.mp4
fragment frag_every_frame.mp4 regular.mp4 -movflags frag_every_frame+empty_moov
fragment frag_dash.mp4 regular.mp4 -movflags dash+global_sidx
# 0.7 s fragments: most start between keyframes.
fragment frag_duration.mp4 regular.mp4 -movflags empty_moov -frag_duration 700000
fragment frag_cmaf.mp4 regular.mp4 -movflags cmaf
fragment frag_negative_cts.mp4 regular.mp4 -movflags frag_keyframe+empty_moov+negative_cts_offsets
# The first fragment's samples in the moov's own tables, the rest in moofs.
fragment frag_moov_samples.mp4 regular.mp4 -movflags frag_keyframe
fragment frag_two_audio.mp4 two-audio.mp4 -movflags frag_keyframe+empty_moov
# Keyframes at uneven times (no others), so its fragments last 0.4 s to 4.5 s.
ffmpeg "${common[@]}" -i regular.mp4 -c:v libx264 -pix_fmt yuv420p -profile:v main -bf 2 -g 1000 \
    -sc_threshold 0 -force_key_frames 0,0.4,2.6,3,7.2,7.9,11,15.5,16,19 -b:v 100k -c:a copy uneven.mp4
fragment frag_uneven.mp4 uneven.mp4 -movflags frag_keyframe+empty_moov
# Each track in moofs of its own, data offsets counted from the moof; then in
# every other fragment the second track's moof and mdat are moved before the
# first's, so the tracks' fragments interleave in no fixed order (and the
# mfra, which names the old places, is a map that lies).
fragment frag_separate.mp4 regular.mp4 -movflags frag_keyframe+empty_moov+separate_moof+default_base_moof
python3 - frag_separate.mp4 <<'PY'
import struct, sys

path = sys.argv[1]
data = open(path, "rb").read()
boxes, pos = [], 0
while pos + 8 <= len(data):
    size, kind = struct.unpack(">I4s", data[pos:pos + 8])
    boxes.append((kind, data[pos:pos + size]))
    pos += size
head = [b for k, b in boxes if k not in (b"moof", b"mdat", b"mfra")]
tail = [b for k, b in boxes if k == b"mfra"]
pairs = [boxes[i][1] + boxes[i + 1][1] for i, (k, _) in enumerate(boxes) if k == b"moof"]
assert len(pairs) % 2 == 0 and len(pairs) >= 8, len(pairs)
for i in range(0, len(pairs), 4):
    pairs[i], pairs[i + 1] = pairs[i + 1], pairs[i]
open(path, "wb").write(b"".join(head + pairs + tail))
PY
fragment frag_audio.m4a audio.m4a -movflags empty_moov -frag_duration 1000000
# The throttling film, fragmented: paced on its media time like the original.
fragment frag_vbr60.mp4 vbr60.mp4 -movflags frag_keyframe+empty_moov
# Ten hours (issue 24): 160x90 at 25 fps, a keyframe every 2 s, moov at the
# end. Ten minutes are encoded and copied end to end sixty times (900 000
# video and 775 260 audio frames, a 22 MB moov: what nginx's mp4 module calls
# "too large"), then the same fragmented, one moof a keyframe (18 000).
ffmpeg "${common[@]}" -f lavfi -i "testsrc2=size=160x90:rate=25:duration=600" \
    -f lavfi -i "sine=frequency=440:sample_rate=22050:duration=600" \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0 -b:v 20k \
    -c:a aac -b:a 16k -ac 1 ten_minutes.mp4
for _ in $(seq 60); do echo "file 'ten_minutes.mp4'"; done > ten_hours.txt
ffmpeg "${common[@]}" -f concat -safe 0 -i ten_hours.txt -c copy ten_hours.mp4
fragment ten_hours_frag.mp4 ten_hours.mp4 -movflags frag_keyframe+empty_moov
rm ten_minutes.mp4 ten_hours.txt
# A moov over 64 MB (issue 24): many short samples. A minute at 250 frames a
# second (4 ms frames; B-frames, so ctts keeps an entry a frame) is copied end
# to end 400 times: 6 000 000 video frames in 6 h 40 min and a 71 MB moov at
# the end, past nginx's mp4_max_buffer_size and nginx-vod-module's frame caps.
ffmpeg "${common[@]}" -f lavfi -i "testsrc2=size=160x90:rate=250:duration=60" \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 500 -keyint_min 500 -sc_threshold 0 -b:v 40k \
    one_minute.mp4
for _ in $(seq 400); do echo "file 'one_minute.mp4'"; done > big_moov.txt
ffmpeg "${common[@]}" -f concat -safe 0 -i big_moov.txt -c copy big_moov.mp4
rm one_minute.mp4 big_moov.txt
# Encrypted (CENC): refused, not misread.
fragment frag_encrypted.mp4 regular.mp4 -movflags frag_keyframe+empty_moov \
    -encryption_scheme cenc-aes-ctr -encryption_key 00112233445566778899aabbccddeeff \
    -encryption_kid 00112233445566778899aabbccddeeff
# FLV: H.264/AAC with a keyframe index in onMetaData, and Sorenson Spark/MP3 with one.
ffmpeg "${common[@]}" -i v10a20.mp4 -t 10 -c copy -flvflags add_keyframe_index indexed.flv
ffmpeg "${common[@]}" -f lavfi -i "testsrc2=size=160x90:rate=25:duration=10" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=10" \
    -c:v flv1 -g 25 -b:v 200k -c:a libmp3lame -b:a 64k -ar 44100 -flvflags add_keyframe_index spark.flv

# Damaged files.
python3 - <<'PY'
import struct

def boxes(data, start=0, end=None):
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size < 8:
            break
        yield pos, size, kind
        pos += size

def find(data, path, start=0, end=None):
    for pos, size, kind in boxes(data, start, end):
        if kind == path[0]:
            if len(path) == 1:
                return pos, size
            return find(data, path[1:], pos + 8, pos + size)
    raise SystemExit("box %r not found" % (path,))

faststart = open("faststart.mp4", "rb").read()
# Cut in the middle of mdat: moov is intact, mdat runs past the end of the file.
open("truncated.mp4", "wb").write(faststart[: len(faststart) * 6 // 10])
# A moov-at-end file cut before its moov.
sample = open("../sample.mp4", "rb").read()
moov_at, _ = find(sample, [b"moov"])
open("no-moov.mp4", "wb").write(sample[:moov_at + 100])
# A box of size 0 ("to the end of the file") right after ftyp swallows the rest: no moov.
ftyp_at, ftyp_size = find(faststart, [b"ftyp"])
open("size0.mp4", "wb").write(faststart[:ftyp_size] + struct.pack(">I4s", 0, b"free") + faststart[ftyp_size:])
# moov claims to be larger than the file.
data = bytearray(faststart)
moov_at, moov_size = find(data, [b"moov"])
data[moov_at:moov_at + 4] = struct.pack(">I", len(data) * 2)
open("oversized-box.mp4", "wb").write(data)
# The first stco entry of the first track points past the end of the file.
data = bytearray(faststart)
stco_at, _ = find(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stco"])
data[stco_at + 16:stco_at + 20] = struct.pack(">I", 0xFFFFFF00)
open("bad-stco.mp4", "wb").write(data)
# Fragmented files cut short and damaged. The moofs of frag_keyframe.mp4:
fragmented = open("frag_keyframe.mp4", "rb").read()
moofs = [pos for pos, size, kind in boxes(fragmented) if kind == b"moof"]
# Cut in the middle of the sixth fragment (a recording that crashed).
open("frag_cut.mp4", "wb").write(fragmented[: moofs[5] + 3000])

def traf_boxes(data, moof):
    """(tfhd at, trun at) of the first traf of the moof at `moof`."""
    size = struct.unpack(">I", data[moof:moof + 4])[0]
    traf, traf_size = find(data, [b"traf"], moof + 8, moof + size)
    tfhd, _ = find(data, [b"tfhd"], traf + 8, traf + traf_size)
    trun, _ = find(data, [b"trun"], traf + 8, traf + traf_size)
    return tfhd, trun

def damaged(name, fragment, change):
    data = bytearray(fragmented)
    tfhd, trun = traf_boxes(data, moofs[fragment])
    change(data, tfhd, trun)
    open(name, "wb").write(data)

def claim_more_samples(data, tfhd, trun):
    data[trun + 12:trun + 16] = struct.pack(">I", 100000)

def offset_outside(data, tfhd, trun):
    data[trun + 16:trun + 20] = struct.pack(">i", 0x7FFFFFF0)

def unknown_track(data, tfhd, trun):
    data[tfhd + 12:tfhd + 16] = struct.pack(">I", 77)

# The fourth fragment damaged: the three before it are served.
damaged("frag_bad_count.mp4", 3, claim_more_samples)
damaged("frag_bad_offset.mp4", 3, offset_outside)
damaged("frag_unknown_track.mp4", 3, unknown_track)
# The first fragment damaged: nothing to serve.
damaged("frag_bad_first.mp4", 0, claim_more_samples)
# Not an FLV at all, with an .flv name.
open("not-flv.flv", "wb").write(b"this is not a video\n" * 10)
PY
touch "../$stamp"

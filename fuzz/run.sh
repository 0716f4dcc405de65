#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60), seeded with the media fixtures.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain the
# sanitizer flags cargo-fuzz passes are enabled with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(http_head flv mp4)
mkdir -p corpus/http_head corpus/flv corpus/mp4
cp -n ../tests/media/*.flv corpus/flv/ 2>/dev/null || true
cp -n ../tests/media/*.mp4 corpus/mp4/ 2>/dev/null || true
printf 'GET /a.mp4?start=1.5&end=3 HTTP/1.1\r\nHost: a\r\nRange: bytes=0-9\r\n\r\n' > corpus/http_head/get
for target in "${targets[@]}"; do
    RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir . "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048
done

#!/usr/bin/env bash
# The browser players the packaging tests run: hls.js and Shaka Player, from
# the npm registry, into target/player-libs/ (kept between runs).
#
#   tests/players/fetch.sh     prints the folder holding hls.min.js and shaka-player.compiled.js
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/player-libs
if [ -s "$out/hls.min.js" ] && [ -s "$out/shaka-player.compiled.js" ]; then
    echo "$PWD/$out"
    exit 0
fi
command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent hls.js@1 shaka-player@4 >/dev/null)
mkdir -p "$out"
tar xzf "$work"/hls.js-*.tgz -C "$work" package/dist/hls.min.js
mv "$work/package/dist/hls.min.js" "$out/"
tar xzf "$work"/shaka-player-*.tgz -C "$work" package/dist/shaka-player.compiled.js
mv "$work/package/dist/shaka-player.compiled.js" "$out/"
chmod -R a+rX "$out"
echo "$PWD/$out"

#!/usr/bin/env bash
# Builds tests/geoip/generated/country.mmdb with the `mmdb-writer` package
# from PyPI, installed into a virtual environment beside it (no-op when up
# to date). Several test processes may ask at once: one builds, the others wait.
set -euo pipefail
cd "$(dirname "$0")"
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
mkdir -p generated
exec 9>generated/.lock
flock 9
stamp="generated/.stamp-$(cat generate.sh make_country_mmdb.py | sha256sum | cut -c1-16)"
[ -e "$stamp" ] && [ -e generated/country.mmdb ] && exit 0
rm -rf generated/venv generated/.stamp-*
python3 -m venv generated/venv
generated/venv/bin/pip install --quiet --disable-pip-version-check 'mmdb-writer==0.2.*'
generated/venv/bin/python make_country_mmdb.py generated/country.mmdb
generated/venv/bin/python make_country_mmdb.py generated/country-moved.mmdb --moved
touch "$stamp"

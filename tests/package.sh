#!/usr/bin/env bash
# The Debian package as an administrator meets it: built with debian/build,
# lintian clean, installed with dpkg, run under a runsvdir of its own, reloaded,
# restarted, stopped, reinstalled, upgraded (with an invalid conffile, and
# while disabled), removed, purged and installed again after the purge.
#
# Needs root (dpkg). It refuses to run where it would disturb the machine (the
# package installed, a loomiere account, a runsvdir running); everything it
# starts is stopped by its own pids and the machine is left as found.
# Prints one "test result:" line that tests/run adds to its total.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAILED: $*"; }
# check NAME COMMAND...: one test.
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
# wait_until SECONDS COMMAND...: true once COMMAND succeeds.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.2
    done
}
quietly() { "$@" >/dev/null; }
result() {
    local word=ok
    [ "$failed" -eq 0 ] || word=FAILED
    echo "test result: $word. $passed passed; $failed failed; Debian package (tests/package.sh)"
}

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/package.sh: needs root (dpkg); not run"
    result
    exit 0
fi
refuse() {
    fail "the machine is fit for the package test: $*"
    result
    exit 1
}
dpkg -s loomiere >/dev/null 2>&1 && refuse "the loomiere package is installed here"
getent passwd loomiere >/dev/null && refuse "a loomiere account exists here"
pgrep -x runsvdir >/dev/null && refuse "a runsvdir runs here (it would supervise the service too)"

# runit (runsvdir, sv, svlogd, chpst) and curl.
need=()
command -v runsvdir >/dev/null || need+=(runit)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/loomiere-package.XXXXXX)
chmod 755 "$work"
svdir=$work/service
media=$work/media
mkdir -p "$svdir" "$media"
cp tests/media/sample.mp4 "$media/clip.mp4"
chmod -R a+rX "$media"
runsvdir_pid=
service=/etc/sv/loomiere

cleanup() {
    if [ -n "$runsvdir_pid" ]; then
        # runsvdir's own runsv children (and through them the server).
        for runsv in $(pgrep -P "$runsvdir_pid" -x runsv); do
            sv force-stop "$service" >/dev/null 2>&1
            sv exit "$service" "$service/log" >/dev/null 2>&1
            wait_until 10 bash -c "! kill -0 $runsv 2>/dev/null" || kill -9 "$runsv" 2>/dev/null
        done
        kill "$runsvdir_pid" 2>/dev/null
        wait "$runsvdir_pid" 2>/dev/null
        runsvdir_pid=
    fi
    if dpkg -s loomiere >/dev/null 2>&1 || [ -e /etc/loomiere ]; then
        dpkg -P loomiere >/dev/null 2>&1
    fi
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
admin=$(free_port)
tls_port=$(free_port)
url="http://127.0.0.1:$port/clip.mp4"
status_pid() { sv status "$service" 2>/dev/null | sed -n 's/^run: [^(]*(pid \([0-9]*\)).*/\1/p'; }
serves() { curl -sf -o "$work/got" "$url" && cmp -s "$work/got" "$media/clip.mp4"; }
answers_monitor() { curl -sf "http://127.0.0.1:$admin/monitor" | grep -q '^server = Loomiere'; }
# The shipped options, edited as an administrator would: free ports, a folder.
edit_options() {
    sed -i -e "s/^options.port = .*/options.port = $port/" \
        -e "s/^options.root = .*/options.root = $admin/" \
        -e "s|^options.hosts\[''\] = .*|options.hosts[''] = { folder = '$media' }|" \
        /etc/loomiere/options.lua
}
# A package one version later, identical otherwise (an upgrade without a
# second build).
newer_package() {
    local version=$1 unpacked=$work/unpacked
    rm -rf "$unpacked"
    dpkg-deb -R "$deb" "$unpacked"
    sed -i "s/^Version: .*/Version: $version/" "$unpacked/DEBIAN/control"
    dpkg-deb -b "$unpacked" "$work/loomiere_$version.deb" >/dev/null
    echo "$work/loomiere_$version.deb"
}

# --- Build ------------------------------------------------------------------
# (nocheck: the unit tests already ran in tests/run's cargo test; a
# developer's plain `debian/build` runs them.)
if DEB_BUILD_OPTIONS=nocheck debian/build > "$work/build.log" 2>&1; then
    pass "debian/build builds the packages, lintian finds no error or warning"
else
    tail -30 "$work/build.log"
    fail "debian/build builds the packages, lintian finds no error or warning"
    result
    exit 1
fi
version=$(dpkg-parsechangelog -S Version)
deb=$(ls "$repo"/target/debian/loomiere_"$version"_*.deb)
dbgsym=$(ls "$repo"/target/debian/loomiere-dbgsym_"$version"_*.deb)
if command -v git >/dev/null && git rev-parse --git-dir >/dev/null 2>&1; then
    check "debian/copyright is up to date with the crates" git diff --quiet -- debian/copyright
fi
# The same source elsewhere (another path, fresh file dates) builds the same
# bytes: remapped paths, SOURCE_DATE_EPOCH.
mkdir -p "$work/elsewhere"
git ls-files -z 2>/dev/null | xargs -0 cp --parents -t "$work/elsewhere" 2>/dev/null \
    || tar --exclude=./target -cf - . | tar -xf - -C "$work/elsewhere"
# (nocheck: the unit tests change no byte of it.)
if (cd "$work/elsewhere" && DEB_BUILD_OPTIONS=nocheck debian/build) > "$work/build2.log" 2>&1; then
    check "a second build elsewhere gives the identical .deb" \
        cmp -s "$deb" "$work/elsewhere/target/debian/$(basename "$deb")"
    check "and the identical -dbgsym" \
        cmp -s "$dbgsym" "$work/elsewhere/target/debian/$(basename "$dbgsym")"
else
    tail -20 "$work/build2.log"
    fail "a second build elsewhere"
fi
rm -rf "$work/elsewhere"
mkdir -p "$work/contents"
dpkg-deb -x "$deb" "$work/contents"
check "the binary names no build path ($HOME, $repo)" \
    bash -c "! strings '$work/contents/usr/sbin/loomiere' | grep -q -e '$HOME/' -e '$repo'"
check "-dbgsym holds the debug info" \
    bash -c "dpkg-deb -c '$dbgsym' | awk '/\\.debug\$/ && \$3 > 1000000' | grep -q ."
for doc in README.md.gz copyright examples/options.lua examples/hint.js examples/loomiere_; do
    check "/usr/share/doc/loomiere/$doc is shipped" test -e "$work/contents/usr/share/doc/loomiere/$doc"
done

# Every path with "loomiere" in its name outside the build and temporary
# directories: after the last purge it must be as before the first install.
traces() {
    find /etc /usr /var /run /opt /srv -xdev -name '*loomiere*' 2>/dev/null | sort
}
traces > "$work/traces.before"

# --- First install ----------------------------------------------------------
if dpkg -i "$deb" > "$work/install.log" 2>&1; then pass "dpkg -i"; else cat "$work/install.log"; fail "dpkg -i"; fi
check "the first install prints no warning or failure" \
    bash -c "! grep -qi -e warn -e fail -e error '$work/install.log'"
check "the loomiere account has no login and no home" \
    bash -c "getent passwd loomiere | grep -q ':/nonexistent:/usr/sbin/nologin\$' && [ ! -e /nonexistent ] && getent group loomiere >/dev/null"
check "/var/log/loomiere belongs to loomiere" bash -c "[ \"\$(stat -c %U /var/log/loomiere)\" = loomiere ]"
if [ -d /etc/service ]; then
    check "the first install enables the service" bash -c "[ \"\$(readlink /etc/service/loomiere)\" = $service ]"
fi
check "loomiere -t accepts the shipped options.lua" loomiere -t -o /etc/loomiere/options.lua

# --- Under runit --------------------------------------------------------------
edit_options
check "loomiere -t accepts the edited options.lua" loomiere -t -o /etc/loomiere/options.lua
# HTTPS as an administrator sets it up: a key only root reads, in the
# folder the package made for it.
check "the package makes /etc/loomiere/tls for root alone" \
    bash -c "[ \"\$(stat -c '%U:%G %a' /etc/loomiere/tls)\" = 'root:root 700' ]"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout /etc/loomiere/tls/privkey.pem -out /etc/loomiere/tls/fullchain.pem 2>/dev/null
chmod 600 /etc/loomiere/tls/privkey.pem
echo "options.tls = { port = $tls_port, cert = '/etc/loomiere/tls/fullchain.pem', key = '/etc/loomiere/tls/privkey.pem' }" \
    >> /etc/loomiere/options.lua
check "loomiere -t accepts the HTTPS options" loomiere -t -o /etc/loomiere/options.lua
check "the loomiere account cannot read the key" \
    bash -c "! runuser -u loomiere -- cat /etc/loomiere/tls/privkey.pem >/dev/null 2>&1"
serves_https() {
    curl -sf --cacert /etc/loomiere/tls/fullchain.pem -o "$work/got-https" "https://localhost:$tls_port/clip.mp4" \
        && cmp -s "$work/got-https" "$media/clip.mp4"
}
ln -s "$service" "$svdir/loomiere"
setsid runsvdir -P "$svdir" </dev/null >/dev/null 2>&1 &
runsvdir_pid=$!
check "runsv starts the service and it serves the file" wait_until 20 serves
check "/monitor answers on the admin port" wait_until 10 answers_monitor
check "it serves HTTPS with the key the master read (workers cannot)" wait_until 10 serves_https
master=$(status_pid)
check "the master runs as root" bash -c "[ \"\$(ps -o user= -p '$master' | tr -d ' ')\" = root ]"
children=$(ps -o user= --ppid "$master" | sort | uniq -c | tr -s ' ')
check "the workers and the monitor run as loomiere ($children)" \
    bash -c "[ \"\$(ps -o user= --ppid '$master' | sort -u | tr -d ' ')\" = loomiere ] && [ \"\$(ps -o pid= --ppid '$master' | wc -l)\" -ge 3 ]"
check "the file limit is raised by chpst -o" \
    bash -c "[ \"\$(awk '/Max open files/ {print \$4}' /proc/$master/limits)\" -gt 1024 ]"
check "svlogd (as loomiere) writes the access line to /var/log/loomiere/current" \
    wait_until 10 grep -q 'GET /clip.mp4 HTTP/1.1" 200' /var/log/loomiere/current
check "svlogd runs as loomiere" bash -c "ps -o user= -C svlogd | grep -qx loomiere"
check "runsv keeps its state under /run/runit/supervise" test -p /run/runit/supervise/loomiere/ok
check "nothing but the shipped files in /etc/sv/loomiere" \
    bash -c "[ \"\$(find $service -mindepth 1 | sort | tr '\n' ' ')\" = '$service/log $service/log/run $service/log/supervise $service/run $service/supervise ' ]"

reloaded() {
    curl -sf "http://127.0.0.1:$admin/monitor?terse=true" | grep -qx 'reloads = 1' && [ "$(status_pid)" = "$master" ]
}
sv hup "$service" >/dev/null
check "sv hup reloads (the reload counted, the master kept)" wait_until 10 reloaded
check "sv restart restarts on a new master" quietly sv -w 35 restart "$service"
check "the restarted server serves" wait_until 20 serves
new_master=$(status_pid)
check "the restarted master is a new process" test "$new_master" != "$master"

# --- Reinstall and upgrades -------------------------------------------------
if dpkg -i "$deb" > "$work/reinstall.log" 2>&1; then pass "dpkg -i again (reinstall)"; else cat "$work/reinstall.log"; fail "dpkg -i again (reinstall)"; fi
check "the edited conffile survives the reinstall" grep -q "^options.port = $port\$" /etc/loomiere/options.lua
check "the server serves after the reinstall" wait_until 20 serves

echo "options.prot = 1" >> /etc/loomiere/options.lua
master=$(status_pid)
upgrade=$(newer_package "$version+test1")
dpkg -i "$upgrade" > "$work/upgrade.log" 2>&1
check "an upgrade with an invalid conffile still installs" dpkg -s loomiere >/dev/null
check "it says why it did not restart" grep -q "NOT restarted.*options.lua" "$work/upgrade.log"
check "it names the error's line" grep -q "unknown option 'prot'" "$work/upgrade.log"
check "the invalid edit survives the upgrade" grep -q "^options.prot = 1\$" /etc/loomiere/options.lua
same_master_serves() { [ "$(status_pid)" = "$master" ] && serves; }
check "the old server still serves, same master" same_master_serves
sed -i '/^options.prot = 1$/d' /etc/loomiere/options.lua
check "after the fix, sv restart runs the new version" quietly sv -w 35 restart "$service"
check "the new version serves" wait_until 20 serves

if [ -d /etc/service ]; then
    rm /etc/service/loomiere
    dpkg -i "$(newer_package "$version+test2")" > "$work/upgrade2.log" 2>&1
    check "a disabled service stays disabled across an upgrade" bash -c "[ ! -e /etc/service/loomiere ] && [ ! -L /etc/service/loomiere ]"
    ln -s "$service" /etc/service/loomiere
fi

sv -w 35 stop "$service" > "$work/stop.log" 2>&1
check "sv -w 35 stop stops cleanly" grep -q '^ok: down:' "$work/stop.log"
check "nothing listens after the stop" bash -c "! curl -s -o /dev/null --max-time 2 $url"
check "no loomiere process after the stop" bash -c "! pgrep -f '^/usr/sbin/loomiere' >/dev/null"
sv start "$service" >/dev/null
check "sv start serves again" wait_until 20 serves

# --- Remove, purge, install after purge --------------------------------------
# runsvdir leaves (its runsv stays): dpkg -r must stop the server itself.
kill "$runsvdir_pid"
wait "$runsvdir_pid" 2>/dev/null
runsvdir_pid=
rm "$svdir/loomiere"
if dpkg -r loomiere > "$work/remove.log" 2>&1; then pass "dpkg -r"; else cat "$work/remove.log"; fail "dpkg -r"; fi
check "dpkg -r prints no failure" bash -c "! grep -qi -e fail -e warn '$work/remove.log'"
# Anchored patterns: pgrep -f would also match a shell whose command line
# holds the pattern.
all_stopped() {
    ! pgrep -f '^/usr/sbin/loomiere' >/dev/null && ! pgrep -f '^runsv loomiere$' >/dev/null \
        && ! pgrep -f '^svlogd -tt /var/log/loomiere$' >/dev/null
}
check "dpkg -r stops the server, its log and its runsv" wait_until 10 all_stopped
check "dpkg -r disables the service" bash -c "[ ! -L /etc/service/loomiere ]"
check "dpkg -r removes the binary" test ! -e /usr/sbin/loomiere

if dpkg -P loomiere > "$work/purge.log" 2>&1; then pass "dpkg -P"; else cat "$work/purge.log"; fail "dpkg -P"; fi
for path in /etc/loomiere /etc/sv/loomiere /etc/service/loomiere /var/log/loomiere /var/lib/loomiere \
    /run/runit/supervise/loomiere /run/runit/supervise/loomiere.log /usr/share/doc/loomiere /usr/share/loomiere; do
    check "dpkg -P leaves no $path" bash -c "[ ! -e $path ] && [ ! -L $path ]"
done
check "dpkg -P removes the account and the group" bash -c "! getent passwd loomiere && ! getent group loomiere"
check "dpkg -P leaves the package unknown to dpkg" bash -c "! dpkg -s loomiere >/dev/null 2>&1"

if dpkg -i "$deb" > "$work/again.log" 2>&1; then pass "dpkg -i after the purge"; else cat "$work/again.log"; fail "dpkg -i after the purge"; fi
check "the install after the purge prints no warning or failure" \
    bash -c "! grep -qi -e warn -e fail -e error '$work/again.log'"
check "the install after the purge creates the account again" quietly getent passwd loomiere
dpkg -P loomiere > "$work/purge2.log" 2>&1
check "the second purge leaves no trace" \
    bash -c "[ ! -e /etc/sv/loomiere ] && [ ! -e /var/log/loomiere ] && ! getent passwd loomiere && [ ! -L /etc/service/loomiere ]"

traces > "$work/traces.after"
check "no path named *loomiere* is left that was not there before" \
    diff "$work/traces.before" "$work/traces.after"

result
[ "$failed" -eq 0 ]

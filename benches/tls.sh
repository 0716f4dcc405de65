#!/usr/bin/env bash
# HTTPS, Loomiere against nginx on loopback, same run, same certificate
# (ECDSA P-256, self-signed), TLS 1.3, same worker count, no access log.
# Both servers follow the client's cipher order, and wrk's OpenSSL asks for
# TLS_AES_256_GCM_SHA384 first: both encrypt with AES-256-GCM in user space
# (this kernel has no kernel TLS, so nginx's sendfile is off for HTTPS too).
#
#   a full handshake per connection: two `openssl s_time -new` clients
#   a new connection per request, resumed from a ticket: wrk -H 'Connection: close'
#     (wrk's OpenSSL resumes the session it got first)
#   10 KB keep-alive: wrk -t2 -c100
#   100 MB: wrk -t2 -c4
#   STREAMS throttled streams of a 10-minute film held at once for 30 s
#   (benches/tls_streams.py, asyncio, STREAMS/2500 processes; nginx with
#   limit_rate at 1.1x the film's mean rate): server memory (PSS) per
#   stream and server CPU, % of one core; then STREAMS idle keep-alive TLS
#   connections (one 10 KB response each, then nothing) held the same way
#
# Each alternates the servers for ROUNDS rounds and prints requests/s (or
# MB/s) and the server's CPU per request, with the ratios.
#
#   benches/tls.sh [DURATION_SECONDS] [ROUNDS] [STREAMS]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
duration=${1:-10}
rounds=${2:-2}
streams=${3:-5000}
workers=${WORKERS:-$(nproc)}

for tool in nginx wrk curl openssl; do
    command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk curl openssl >/dev/null; }
done
build_release

work=$(mktemp -d /tmp/loomiere-bench.XXXXXX)
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; [ -n "${lpid:-}" ] && kill -QUIT $lpid 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/www"
head -c 10240 /dev/urandom > "$work/www/small.mp4"
head -c $((100 * 1024 * 1024)) /dev/urandom > "$work/www/big.mp4"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
chmod -R a+rX "$work"

nginx_port=18290
nginx_tls=18291
loomiere_port=18292
loomiere_tls=18293
start_nginx "listen 127.0.0.1:$nginx_tls ssl reuseport;
        ssl_certificate $work/cert.pem;
        ssl_certificate_key $work/key.pem;
        ssl_protocols TLSv1.3;
        ssl_session_cache shared:tls:10m;"
start_loomiere "options.tls = { port = $loomiere_tls, bind = '127.0.0.1', cert = '$work/cert.pem', key = '$work/key.pem' }"

# measure PID PORT PATH CONNECTIONS [WRK ARGS…]: requests/s, MB/s and the
# server's CPU microseconds per request.
measure() {
    local pid=$1 port=$2 path=$3 connections=$4 out before after
    shift 4
    before=$(tree_ticks "$pid")
    out=$(wrk -t2 -c"$connections" -d"${duration}s" "$@" "https://localhost:$port$path")
    after=$(tree_ticks "$pid")
    local rps mbs requests
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    mbs=$(awk '/Transfer\/sec/ {v=$2; u=substr(v, length(v)-1); n=substr(v, 1, length(v)-2);
        if (u=="GB") n*=1024; else if (u=="KB") n/=1024; else if (u!="MB") n/=1048576; print n}' <<<"$out")
    echo "$rps $mbs $(cpu_us_per "$before" "$after" "$requests")"
}

# handshakes PID PORT: full handshakes per second with two `openssl s_time
# -new` clients (one per core; each new connection a full handshake, the
# 10 KB file fetched), and the server's CPU microseconds per handshake.
handshakes() {
    local pid=$1 port=$2 before after count=0 n
    before=$(tree_ticks "$pid")
    local clients=()
    for client in 1 2; do
        openssl s_time -connect 127.0.0.1:$port -new -time "$duration" -www /small.mp4 \
            > "$work/s_time.$client" 2>&1 &
        clients+=($!)
    done
    wait "${clients[@]}"
    after=$(tree_ticks "$pid")
    for client in 1 2; do
        n=$(awk '/connections in [0-9]+ real seconds/ {print $1}' "$work/s_time.$client")
        count=$((count + ${n:-0}))
    done
    echo "$(echo "$count / $duration" | bc -l) 0 $(cpu_us_per "$before" "$after" "$count")"
}

# The negotiated protocol and suite, for the record.
for port in $nginx_tls $loomiere_tls; do
    echo | openssl s_client -connect 127.0.0.1:$port -servername localhost 2>/dev/null | grep -m1 -E '^(New|Reused),' || true
done

nginx_pid=$(cat "$work/nginx.pid")
declare -A total
cases=("handshake" "resumed /small.mp4 32" "small /small.mp4 100" "big /big.mp4 4")
for case in "${cases[@]}"; do
    read -r name _ <<<"$case"
    total[nginx_$name]="0 0 0"
    total[loomiere_$name]="0 0 0"
done
for round in $(seq "$rounds"); do
    for case in "${cases[@]}"; do
        read -r name path connections <<<"$case"
        for server in nginx loomiere; do
            port=$nginx_tls pid=$nginx_pid
            [ $server = loomiere ] && port=$loomiere_tls pid=$lpid
            case $name in
                handshake) read -r rps mbs cpu < <(handshakes "$pid" $port) ;;
                resumed) read -r rps mbs cpu < <(measure "$pid" $port "$path" "$connections" -H "Connection: close") ;;
                *) read -r rps mbs cpu < <(measure "$pid" $port "$path" "$connections") ;;
            esac
            printf 'round %d %-9s %-9s %12.1f req/s %10.1f MB/s %10.1f us CPU/req\n' "$round" $server $name "$rps" "$mbs" "$cpu"
            read -r r m c <<<"${total[${server}_$name]}"
            total[${server}_$name]="$(echo "$r + $rps" | bc -l) $(echo "$m + $mbs" | bc -l) $(echo "$c + $cpu" | bc -l)"
        done
    done
done

avg() { printf "$1" "$(echo "$2/$rounds" | bc -l)"; }
section="HTTPS (TLS 1.3, ECDSA P-256, AES-256-GCM in user space both)"
read -r nr nm nc <<<"${total[nginx_handshake]}"
read -r lr lm lc <<<"${total[loomiere_handshake]}"
result "$section" "full handshakes/s (openssl s_time -new ×2)" "$(avg %.0f "$nr")" "$(avg %.0f "$lr")" "$(ratio "$lr" "$nr")"
result "$section" "server CPU per full handshake" "$(avg '%.0f µs' "$nc")" "$(avg '%.0f µs' "$lc")" "$(ratio "$lc" "$nc")"
read -r nr nm nc <<<"${total[nginx_resumed]}"
read -r lr lm lc <<<"${total[loomiere_resumed]}"
result "$section" "a resumed connection per request, wrk -c32: requests/s" "$(avg %.0f "$nr")" "$(avg %.0f "$lr")" "$(ratio "$lr" "$nr")"
result "$section" "resumed: server CPU per request" "$(avg '%.0f µs' "$nc")" "$(avg '%.0f µs' "$lc")" "$(ratio "$lc" "$nc")"
read -r nr nm nc <<<"${total[nginx_small]}"
read -r lr lm lc <<<"${total[loomiere_small]}"
result "$section" "10 KB, keep-alive, wrk -c100: requests/s" "$(avg %.0f "$nr")" "$(avg %.0f "$lr")" "$(ratio "$lr" "$nr")"
result "$section" "10 KB: server CPU per request" "$(avg '%.1f µs' "$nc")" "$(avg '%.1f µs' "$lc")" "$(ratio "$lc" "$nc")"
read -r nr nm nc <<<"${total[nginx_big]}"
read -r lr lm lc <<<"${total[loomiere_big]}"
result "$section" "100 MB, wrk -c4: MB/s" "$(avg %.0f "$nm")" "$(avg %.0f "$lm")" "$(ratio "$lm" "$nm")"
result "$section" "100 MB: server CPU per request" "$(avg '%.1f ms' "$(echo "$nc/1000" | bc -l)")" "$(avg '%.1f ms' "$(echo "$lc/1000" | bc -l)")" "$(ratio "$lc" "$nc")"

# --- Throttled streams over TLS ----------------------------------------------
make_films
cp "$media/low600.mp4" "$work/www/film.mp4"
size=$(stat -c %s "$work/www/film.mp4")
rate=$((size * 11 / 10 / 600))
stop_servers() { kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; kill -QUIT "$lpid" 2>/dev/null || true; wait "$lpid" 2>/dev/null || true; }
nginx_connections=$((streams + 1000))
nginx_http="limit_rate $rate; keepalive_timeout 120s;"
# Fresh servers for each kind of connection: memory freed by the one
# before would otherwise be reused and hide what these cost.
restart_servers() {
    stop_servers
    sleep 1
    start_nginx "listen 127.0.0.1:$nginx_tls ssl reuseport;
        ssl_certificate $work/cert.pem;
        ssl_certificate_key $work/key.pem;
        ssl_protocols TLSv1.3;"
    start_loomiere "options.tls = { port = $loomiere_tls, bind = '127.0.0.1', cert = '$work/cert.pem', key = '$work/key.pem' }
options.clients = $((streams + 1000))
options.keepalive_timeout = 120"
    nginx_pid=$(cat "$work/nginx.pid")
}
# pss PID: PSS in KiB of a process and its children.
pss() {
    local total=0 pid
    for pid in $1 $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
        total=$((total + $(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
hold=30
processes=$(( (streams + 2499) / 2500 ))
# held MODE PATH [idle]: STREAMS connections to PATH held for $hold s on
# each server: memory per connection, CPU, how many lived to the end.
held() {
    local label=$1 path=$2 mode=${3:-} server port pid before after alive kib core p
    local -A figures
    restart_servers
    for server in nginx loomiere; do
        port=$nginx_tls pid=$nginx_pid
        [ $server = loomiere ] && port=$loomiere_tls pid=$lpid
        before=$(pss "$pid")
        clients=()
        for p in $(seq "$processes"); do
            python3 benches/tls_streams.py "$port" "$path" $((streams / processes)) $hold $mode > "$work/streams.$p" &
            clients+=($!)
        done
        sleep $((hold / 2))
        ticks0=$(tree_ticks "$pid")
        sleep 10
        ticks1=$(tree_ticks "$pid")
        after=$(pss "$pid")
        wait "${clients[@]}"
        alive=$(awk '{s += $2} END {print s}' "$work"/streams.*)
        kib=$(echo "($after - $before) / $streams" | bc -l)
        core=$(echo "($ticks1 - $ticks0) * 100 / $(getconf CLK_TCK) / 10" | bc -l)
        printf '%-9s %d %s: %.2f KiB each, %.1f %% of a core, %s alive to the end\n' $server "$streams" "$label" "$kib" "$core" "$alive"
        figures[$server]="$kib $core $alive"
        rm -f "$work"/streams.*
    done
    read -r nk nc na <<<"${figures[nginx]}"
    read -r lk lc la <<<"${figures[loomiere]}"
    result "$section" "$streams $label: server memory (PSS) per connection" "$(printf '%.2f KB' "$nk")" "$(printf '%.2f KB' "$lk")" "$(ratio "$lk" "$nk")"
    result "$section" "$streams $label: server CPU, % of one core" "$(printf '%.1f %%' "$nc")" "$(printf '%.1f %%' "$lc")" "$(ratio "$lc" "$nc")"
    result "$section" "$streams $label: alive to the end" "$na" "$la" ""
}
held "throttled TLS streams" /film.mp4
held "idle keep-alive TLS connections" /small.mp4 idle

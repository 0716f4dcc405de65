#!/usr/bin/env bash
# What access control costs, Loomiere against nginx doing the same checks in
# the same run: an address allow list, a referer check, an expiring signed
# link, CORS and caching headers, and a per-IP connection limit.
#
#   nginx: allow/deny, valid_referers, secure_link (MD5: nginx has no HMAC),
#          add_header, expires, limit_conn
#   loomiere: allow/deny, referers, secret (HMAC-SHA256), cors, expires,
#          options.limits (per_ip, and rate high enough never to refuse)
#
# wrk fetches a 10 KB file with the Referer and signed arguments, on
# keep-alive connections (the per-request checks) and with Connection: close
# (adding the per-connection limits at accept). Each server also runs without
# the checks, so the cost of the checks shows beside the ratio. wrk shares the
# machine's cores, so the server's CPU per request is printed too.
#
#   benches/access.sh [DURATION_SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
duration=${1:-10}
rounds=${2:-2}
workers=${WORKERS:-$(nproc)}

for tool in nginx wrk curl bc; do
    command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk curl bc >/dev/null; }
done
build_release

work=$(mktemp -d /tmp/loomiere-bench.XXXXXX)
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; [ -n "${lpid:-}" ] && kill -QUIT $lpid 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/www"
head -c 10240 /dev/urandom > "$work/www/small.mp4"
chmod -R a+rX "$work"

secret=bench-secret-of-the-cms-0123456789
expires=$(( $(date +%s) + 86400 ))
# nginx's secure_link_md5: base64url(md5("$expires$uri secret")), no padding.
nginx_token=$(printf '%s' "$expires/checked/small.mp4 $secret" | openssl md5 -binary | openssl base64 | tr '+/' '-_' | tr -d '=')
nginx_checked="/checked/small.mp4?md5=$nginx_token&expires=$expires"
loomiere_token=$(printf '%s' "/small.mp4$expires" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
loomiere_checked="/small.mp4?expires=$expires&token=$loomiere_token"
referer='Referer: https://www.example.com/watch'

nginx_port=18380
loomiere_port=18381
loomiere_plain_port=18382
nginx_http='limit_conn_zone $binary_remote_addr zone=perip:10m;'
start_nginx "
        location /checked/ {
            alias $work/www/;
            allow 127.0.0.0/8; deny all;
            valid_referers server_names *.example.com example.com;
            if (\$invalid_referer) { return 403; }
            secure_link \$arg_md5,\$arg_expires;
            secure_link_md5 \"\$secure_link_expires\$uri $secret\";
            if (\$secure_link = \"\") { return 403; }
            if (\$secure_link = \"0\") { return 410; }
            add_header Access-Control-Allow-Origin * always;
            add_header Access-Control-Expose-Headers 'Content-Range, Content-Length, Accept-Ranges' always;
            expires 1h;
            limit_conn perip 60000;
        }"
nginx_pid=$(cat "$work/nginx.pid")
start_loomiere "options.limits = { per_ip = 60000, rate = 1000000, burst = 1000000 }
options.hosts[''] = { folder = '$work/www', allow = { '127.0.0.0/8' },
  referers = { '(^|\\\\.)example\\\\.com\$' }, secret = '$secret',
  cors = '*', expires = { ['video/*'] = 3600 } }"
checked_pid=$lpid
# The same server without the checks, on its own port.
plain_work="$work/plain"; mkdir -p "$plain_work"
cat > "$plain_work/options.lua" <<CONF
options.workers = $workers
options.access_log = false
options.root = false
options.hosts[''] = { folder = '$work/www' }
CONF
./target/release/loomiere -o "$plain_work/options.lua" -b 127.0.0.1 -p "$loomiere_plain_port" 2>"$plain_work/log" &
plain_pid=$!
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; kill -QUIT $checked_pid $plain_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$loomiere_plain_port/" && break; sleep 0.1; done

# Every checked URL must be served before anything is measured.
for url in "http://127.0.0.1:$nginx_port$nginx_checked" "http://127.0.0.1:$loomiere_port$loomiere_checked"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "$referer" "$url")
    [ "$code" = 200 ] || { echo "$url answered $code" >&2; exit 1; }
done
for url in "http://127.0.0.1:$nginx_port${nginx_checked/$nginx_token/AAAA}" "http://127.0.0.1:$loomiere_port${loomiere_checked/$loomiere_token/00}"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "$referer" "$url")
    [ "$code" = 403 ] || { echo "a forged link to $url answered $code" >&2; exit 1; }
done

# measure PID URL [wrk args...]: requests/s and server CPU microseconds per request.
measure() {
    local pid=$1 url=$2; shift 2
    local before after out rps requests
    before=$(tree_ticks "$pid")
    # wrk's own CPU (bash's time keyword: its user and system seconds).
    out=$( { TIMEFORMAT='wrk-cpu %U %S'; time wrk -t2 -c50 -d"${duration}s" -H "$referer" "$@" "$url"; } 2>&1)
    after=$(tree_ticks "$pid")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    client=$(awk '/^wrk-cpu/ {printf "%.0f\n", ($2 + $3) * 1000000}' <<<"$out")
    [ -n "$client" ] || { echo "wrk's CPU time is missing from: $out" >&2; exit 1; }
    echo "$rps $(echo "($after - $before) * 1000000 / $(getconf CLK_TCK) / $requests" | bc -l) $(echo "$client / $requests" | bc -l)"
}

declare -A sum_rps sum_cpu sum_client
cases=(
    "nginx-plain $nginx_pid http://127.0.0.1:$nginx_port/small.mp4"
    "nginx-checked $nginx_pid http://127.0.0.1:$nginx_port$nginx_checked"
    "loomiere-plain $plain_pid http://127.0.0.1:$loomiere_plain_port/small.mp4"
    "loomiere-checked $checked_pid http://127.0.0.1:$loomiere_port$loomiere_checked"
)
for round in $(seq "$rounds"); do
    for mode in keepalive close; do
        extra=(); [ $mode = close ] && extra=(-H "Connection: close")
        for case in "${cases[@]}"; do
            set -- $case
            read -r rps cpu client < <(measure "$2" "$3" "${extra[@]}")
            printf 'round %d %-9s %-17s %10.1f req/s %7.1f us CPU/req (wrk %5.1f us, cores busy %.2f)\n' "$round" $mode "$1" \
                "$rps" "$cpu" "$client" "$(echo "($cpu + $client) * $rps / 1000000" | bc -l)"
            key="$mode $1"
            sum_rps[$key]=$(echo "${sum_rps[$key]:-0} + $rps" | bc -l)
            sum_cpu[$key]=$(echo "${sum_cpu[$key]:-0} + $cpu" | bc -l)
            sum_client[$key]=$(echo "${sum_client[$key]:-0} + $client" | bc -l)
        done
    done
done

echo
echo "averages over $rounds rounds of ${duration}s, $workers workers, 10 KB file:"
for mode in keepalive close; do
    for name in nginx-plain nginx-checked loomiere-plain loomiere-checked; do
        printf '%-9s %-17s %10.1f req/s %7.1f us CPU/req\n' $mode $name \
            "$(echo "${sum_rps[$mode $name]} / $rounds" | bc -l)" "$(echo "${sum_cpu[$mode $name]} / $rounds" | bc -l)"
    done
    printf '%-9s checked: loomiere/nginx %.2f req/s, %.2f CPU/req; checks cost nginx %+.1f us, loomiere %+.1f us per request\n' $mode \
        "$(echo "${sum_rps[$mode loomiere-checked]} / ${sum_rps[$mode nginx-checked]}" | bc -l)" \
        "$(echo "${sum_cpu[$mode loomiere-checked]} / ${sum_cpu[$mode nginx-checked]}" | bc -l)" \
        "$(echo "(${sum_cpu[$mode nginx-checked]} - ${sum_cpu[$mode nginx-plain]}) / $rounds" | bc -l)" \
        "$(echo "(${sum_cpu[$mode loomiere-checked]} - ${sum_cpu[$mode loomiere-plain]}) / $rounds" | bc -l)"
done
for mode in keepalive close; do
    label="keep-alive"; [ $mode = close ] && label="a connection per request"
    result "access control (10 KB, all checks on)" "$label: requests/s" \
        "$(printf %.0f "$(echo "${sum_rps[$mode nginx-checked]} / $rounds" | bc -l)")" \
        "$(printf %.0f "$(echo "${sum_rps[$mode loomiere-checked]} / $rounds" | bc -l)")" \
        "$(ratio "${sum_rps[$mode loomiere-checked]}" "${sum_rps[$mode nginx-checked]}")"
    result "access control (10 KB, all checks on)" "$label: server CPU per request" \
        "$(printf '%.1f µs' "$(echo "${sum_cpu[$mode nginx-checked]} / $rounds" | bc -l)")" \
        "$(printf '%.1f µs' "$(echo "${sum_cpu[$mode loomiere-checked]} / $rounds" | bc -l)")" \
        "$(ratio "${sum_cpu[$mode loomiere-checked]}" "${sum_cpu[$mode nginx-checked]}")"
    # wrk shares the two cores and both are busy, so requests/s is 2 cores
    # over (server + wrk) CPU per request: the rate ratio follows from the CPU
    # figures, and a server that cost nothing at all would reach only
    # (nginx + wrk) / wrk.
    result "access control (10 KB, all checks on)" "$label: wrk's own CPU per request (it shares the cores)" \
        "$(printf '%.1f µs' "$(echo "${sum_client[$mode nginx-checked]} / $rounds" | bc -l)")" \
        "$(printf '%.1f µs' "$(echo "${sum_client[$mode loomiere-checked]} / $rounds" | bc -l)")" ""
    n_total=$(echo "${sum_cpu[$mode nginx-checked]} + ${sum_client[$mode nginx-checked]}" | bc -l)
    l_total=$(echo "${sum_cpu[$mode loomiere-checked]} + ${sum_client[$mode loomiere-checked]}" | bc -l)
    result "access control (10 KB, all checks on)" "$label: requests/s ratio the CPU figures predict, (nginx + wrk) / (Loomiere + wrk)" \
        "" "" "$(ratio "$n_total" "$l_total")"
    result "access control (10 KB, all checks on)" "$label: the ceiling, a server costing no CPU, (nginx + wrk) / wrk" \
        "" "" "$(ratio "$n_total" "${sum_client[$mode nginx-checked]}")"
done

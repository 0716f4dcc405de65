#!/usr/bin/env bash
# Throughput of plain file serving, Loomiere against nginx on loopback, same run.
#
# Both servers get the same worker count, sendfile, keep-alive and no access
# log. wrk hits a 10 KB file (-t2 -c100) and a 100 MB file (-c4), alternating
# the two servers for ROUNDS rounds, and the script prints requests/s, MB/s and
# the ratio Loomiere/nginx for each, with the servers' CPU per request.
#
#   benches/http.sh [DURATION_SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
duration=${1:-10}
rounds=${2:-2}
workers=${WORKERS:-$(nproc)}

for tool in nginx wrk curl; do
    command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk >/dev/null; }
done
build_release

work=$(mktemp -d /tmp/loomiere-bench.XXXXXX)
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; [ -n "${lpid:-}" ] && kill -QUIT $lpid 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/www"
head -c 10240 /dev/urandom > "$work/www/small.mp4"
head -c $((100 * 1024 * 1024)) /dev/urandom > "$work/www/big.mp4"
chmod -R a+rX "$work"

nginx_port=18280
loomiere_port=18281
start_nginx
start_loomiere

# measure PID PORT PATH CONNECTIONS: requests/s, MB/s and the server's CPU
# microseconds per request (wrk shares the cores, so requests/s alone hides
# what each request costs).
measure() {
    local out before after
    before=$(tree_ticks "$1")
    out=$(wrk -t2 -c"$4" -d"${duration}s" "http://127.0.0.1:$2$3")
    after=$(tree_ticks "$1")
    local rps mbs requests
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    # wrk prints "Transfer/sec: N[KMG]B".
    mbs=$(awk '/Transfer\/sec/ {v=$2; u=substr(v, length(v)-1); n=substr(v, 1, length(v)-2);
        if (u=="GB") n*=1024; else if (u=="KB") n/=1024; else if (u!="MB") n/=1048576; print n}' <<<"$out")
    echo "$rps $mbs $(cpu_us_per "$before" "$after" "$requests")"
}

nginx_pid=$(cat "$work/nginx.pid")
declare -A total
for name in small big; do total[nginx_$name]="0 0 0"; total[loomiere_$name]="0 0 0"; done
for round in $(seq "$rounds"); do
    for case in "small /small.mp4 100" "big /big.mp4 4"; do
        set -- $case
        for server in nginx loomiere; do
            port=$nginx_port pid=$nginx_pid
            [ $server = loomiere ] && port=$loomiere_port pid=$lpid
            read -r rps mbs cpu < <(measure "$pid" $port "$2" "$3")
            printf 'round %d %-9s %-5s %12.1f req/s %10.1f MB/s %10.1f us CPU/req\n' "$round" $server "$1" "$rps" "$mbs" "$cpu"
            read -r r m c <<<"${total[${server}_$1]}"
            total[${server}_$1]="$(echo "$r + $rps" | bc -l) $(echo "$m + $mbs" | bc -l) $(echo "$c + $cpu" | bc -l)"
        done
    done
done

echo
echo "averages over $rounds rounds, ${duration}s each, $workers workers:"
for name in small big; do
    read -r nr nm nc <<<"${total[nginx_$name]}"
    read -r lr lm lc <<<"${total[loomiere_$name]}"
    printf '%-5s nginx %10.1f req/s %8.1f MB/s %8.1f us CPU/req | loomiere %10.1f req/s %8.1f MB/s %8.1f us CPU/req | ratio %.2f\n' \
        $name "$(echo "$nr/$rounds" | bc -l)" "$(echo "$nm/$rounds" | bc -l)" "$(echo "$nc/$rounds" | bc -l)" \
        "$(echo "$lr/$rounds" | bc -l)" "$(echo "$lm/$rounds" | bc -l)" "$(echo "$lc/$rounds" | bc -l)" "$(echo "$lr/$nr" | bc -l)"
done
read -r nr nm nc <<<"${total[nginx_small]}"
read -r lr lm lc <<<"${total[loomiere_small]}"
result "plain files" "10 KB, keep-alive, wrk -c100: requests/s" "$(printf %.0f "$(echo "$nr/$rounds" | bc -l)")" "$(printf %.0f "$(echo "$lr/$rounds" | bc -l)")" "$(ratio "$lr" "$nr")"
result "plain files" "10 KB: server CPU per request" "$(printf '%.1f µs' "$(echo "$nc/$rounds" | bc -l)")" "$(printf '%.1f µs' "$(echo "$lc/$rounds" | bc -l)")" "$(ratio "$lc" "$nc")"
read -r nr nm nc <<<"${total[nginx_big]}"
read -r lr lm lc <<<"${total[loomiere_big]}"
result "plain files" "100 MB, wrk -c4: MB/s" "$(printf %.0f "$(echo "$nm/$rounds" | bc -l)")" "$(printf %.0f "$(echo "$lm/$rounds" | bc -l)")" "$(ratio "$lm" "$nm")"
result "plain files" "100 MB: server CPU per request" "$(printf '%.1f ms' "$(echo "$nc/$rounds/1000" | bc -l)")" "$(printf '%.1f ms' "$(echo "$lc/$rounds/1000" | bc -l)")" "$(ratio "$lc" "$nc")"

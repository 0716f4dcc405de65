#!/usr/bin/env bash
# Throughput of plain file serving, Loomiere against nginx on loopback, same run.
#
# Both servers get the same worker count, sendfile, keep-alive and no access
# log. wrk hits a 10 KB file (-t2 -c100) and a 100 MB file (-c4), alternating
# the two servers for ROUNDS rounds, and the script prints requests/s, MB/s and
# the ratio Loomiere/nginx for each.
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
cargo build --release --quiet

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

# wrk prints "Requests/sec: N" and "Transfer/sec: N[KMG]B".
measure() { # port path connections
    local out
    out=$(wrk -t2 -c"$3" -d"${duration}s" "http://127.0.0.1:$1$2")
    local rps mbs
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    mbs=$(awk '/Transfer\/sec/ {v=$2; u=substr(v, length(v)-1); n=substr(v, 1, length(v)-2);
        if (u=="GB") n*=1024; else if (u=="KB") n/=1024; else if (u!="MB") n/=1048576; print n}' <<<"$out")
    echo "$rps $mbs"
}

declare -A total
for name in small big; do total[nginx_$name]="0 0"; total[loomiere_$name]="0 0"; done
for round in $(seq "$rounds"); do
    for case in "small /small.mp4 100" "big /big.mp4 4"; do
        set -- $case
        for server in nginx loomiere; do
            port=$nginx_port; [ $server = loomiere ] && port=$loomiere_port
            read -r rps mbs < <(measure $port "$2" "$3")
            printf 'round %d %-9s %-5s %12.1f req/s %10.1f MB/s\n' "$round" $server "$1" "$rps" "$mbs"
            read -r r m <<<"${total[${server}_$1]}"
            total[${server}_$1]="$(echo "$r + $rps" | bc -l) $(echo "$m + $mbs" | bc -l)"
        done
    done
done

echo
echo "averages over $rounds rounds, ${duration}s each, $workers workers:"
for name in small big; do
    read -r nr nm <<<"${total[nginx_$name]}"
    read -r lr lm <<<"${total[loomiere_$name]}"
    printf '%-5s nginx %10.1f req/s %8.1f MB/s | loomiere %10.1f req/s %8.1f MB/s | ratio %.2f\n' \
        $name "$(echo "$nr/$rounds" | bc -l)" "$(echo "$nm/$rounds" | bc -l)" \
        "$(echo "$lr/$rounds" | bc -l)" "$(echo "$lm/$rounds" | bc -l)" "$(echo "$lr/$nr" | bc -l)"
done

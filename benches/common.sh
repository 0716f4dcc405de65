# Shared by the benchmark scripts: nginx and Loomiere on loopback over the
# same folder, with the same worker count, sendfile on and access logs off.
# Expects $work (a scratch folder holding www/), $workers, $nginx_port and
# $loomiere_port; sets $lpid.

# start_nginx [EXTRA_SERVER_DIRECTIVES]; $nginx_connections (default 4096)
# sets worker_connections, $nginx_http (default none) adds http-level directives.
start_nginx() {
    cat > "$work/nginx.conf" <<CONF
worker_processes $workers;
worker_rlimit_nofile 20000;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections ${nginx_connections:-4096}; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types { video/mp4 mp4; }
    ${nginx_http:-}
    client_body_temp_path $work;
    proxy_temp_path $work;
    fastcgi_temp_path $work;
    uwsgi_temp_path $work;
    scgi_temp_path $work;
    server {
        listen 127.0.0.1:$nginx_port reuseport;
        root $work/www;
        ${1:-}
    }
}
CONF
    nginx -c "$work/nginx.conf"
}

# start_loomiere [EXTRA_OPTION_LINES]: starts it on $loomiere_port (admin
# port $loomiere_admin, default off) and waits until it answers.
start_loomiere() {
    cat > "$work/options.lua" <<CONF
options.workers = $workers
options.access_log = false
options.root = ${loomiere_admin:-false}
options.hosts[''] = { folder = '$work/www' }
${1:-}
CONF
    ./target/release/loomiere -o "$work/options.lua" -b 127.0.0.1 -p "$loomiere_port" 2>"$work/loomiere.log" &
    lpid=$!
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$loomiere_port/" && return; sleep 0.1; done
    echo "loomiere did not start:" >&2
    cat "$work/loomiere.log" >&2
    exit 1
}

# tree_ticks PID: CPU ticks (user + system) of a process and its children,
# for CPU per request when the load generator shares the server's cores.
tree_ticks() {
    local total=0 pid
    for pid in $1 $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
        [ -r "/proc/$pid/stat" ] || continue
        total=$((total + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat")))
    done
    echo "$total"
}

# Shared by the benchmark scripts (sourced, not run): ports, the upstream, the bench portal
# profile and the session settings every "full pipeline" contestant uses, so all scripts
# measure the same thing. A script sets `work` (its temporary folder) and `pids` (what to stop)
# before sourcing this file.
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# Stop what the script started: TERM first (nginx's master then stops its worker), then KILL
# whatever still runs (a proxy under valgrind, one in its graceful-shutdown period).
stop_all() {
  kill "${pids[@]}" 2>/dev/null || true
  sleep 0.5
  kill -9 "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap stop_all EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

# $1 dir, $2 server block, $3 access_log line (default: a log in $1).
nginx_conf() {
  cat > "$1/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
  ${3:-access_log $1/access.log;}
  sendfile on; tcp_nopush on; keepalive_requests 1000000; keepalive_timeout 65;
  client_body_temp_path $1; proxy_temp_path $1; fastcgi_temp_path $1; uwsgi_temp_path $1; scgi_temp_path $1;
  $2
}
CONF
}

# The upstream every contestant shares: nginx (one worker, no access log) serving 1 KiB and
# 64 KiB files, plus a stand-in login form (a 302 that sets a session cookie) so session
# contestants can log in through Vigie's portal-login interception.
# $1 port, $2 CPU to pin it to (empty: not pinned).
start_upstream() {
  mkdir -p "$work/www" "$work/nginx-up"
  # nginx workers drop to an unprivileged user when started as root: let them read the files.
  chmod 755 "$work" "$work/www"
  head -c 1024 /dev/zero | tr '\0' 'a' > "$work/www/1k.txt"
  head -c 65536 /dev/zero | tr '\0' 'b' > "$work/www/64k.txt"
  nginx_conf "$work/nginx-up" "server { listen 127.0.0.1:$1; root $work/www;
    location = /login { add_header Set-Cookie \"benchsess=upstream-session; Path=/; HttpOnly\"; return 302 /1k.txt; } }" \
    "access_log off;"
  if [ -n "$2" ]; then
    taskset -c "$2" "$NGINX" -p "$work/nginx-up" -c "$work/nginx-up/nginx.conf" & pids+=($!)
  else
    "$NGINX" -p "$work/nginx-up" -c "$work/nginx-up/nginx.conf" & pids+=($!)
  fi
}

# $1: file. The upstream's /login is a 302 that sets `benchsess`; every request names a
# patient (?p=), so the detector reads, pseudonymises and scores it.
write_bench_profile() {
  cat > "$1" <<'PROFILE'
name = "bench"
[login]
path = "/login"
username_field = "username"
password_field = "password"
[login.success]
status = [302]
session_cookies = ["benchsess"]
[[prelogin.allow]]
path = "/login"
[[patient]]
path = "/**"
param = "p"
PROFILE
}

# $1: the factor key file. Prints the settings of the session contestants: the whole stage 4
# (policy, source and identity budgets) and the detector on a password-level session (the
# per-request checks cost the same at any level, and a load generator cannot answer a second
# factor). Budgets are out of reach and the detector never acts (a load generator is exactly
# what it would hold), so every request is measured through to the portal.
session_settings() {
  cat <<TOML
[second_factor]
required = false
key_file = "$1"
webauthn_origins = ["http://localhost:1"]
[budgets.source]
requests = 1000000
per = "second"
[budgets.view]
requests = 1000000
per = "second"
[budgets.login]
requests = 1000
per = "second"
[detection.actions]
alert = 101
step_up = 101
throttle = 101
suspend = 101
TOML
}

# $1: port. Logs in once through a session gateway and prints its `vigie=` cookie.
login_cookie() {
  curl -s -o /dev/null -D - -X POST -d "username=bench&password=x" "http://127.0.0.1:$1/login" \
    | tr -d '\r' | awk -F'[ ;]' 'tolower($1) == "set-cookie:" && $2 ~ /^vigie=/ {print $2}'
}

# Shared by the benchmark scripts (sourced, not run): ports, the bench portal profile and the
# session settings every "full pipeline" contestant uses, so all scripts measure the same thing.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

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

#!/usr/bin/env bash
# Instructions per request, counted by callgrind: bare Pingora, Vigie pass-through and Vigie's
# full pipeline (session, policy, budgets, detector, cookie vault), each on the same upstream.
# Unlike requests/s on a shared 2-core machine, the count repeats to a fraction of a percent,
# so a change of 1% in Vigie's own work can be judged. It counts user-space instructions only:
# the kernel's share (loopback TCP, wakeups) is in benches/load.sh's CPU column.
#
#   benches/instructions.sh                      # release builds of this tree
#   VIGIE=/tmp/old-vigie benches/instructions.sh # another Vigie binary, same setup
#   REQUESTS=5000 benches/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-2000}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
scripts/install-deps nginx valgrind curl
cargo build --release --quiet --bin vigie --example bare_pingora
VIGIE=${VIGIE:-$TARGET_DIR/release/vigie}
BARE=${BARE:-$TARGET_DIR/release/examples/bare_pingora}

work=$(mktemp -d); pids=()
. benches/common.sh
UP=$(free_port); BP=$(free_port); VP=$(free_port); VS=$(free_port)
start_upstream "$UP" ""

write_bench_profile "$work/profile.toml"
echo "bench:$(head -c 32 /dev/urandom | base64)" > "$work/factor.keys"
conf() { # $1 name, $2 port, $3 extra
  cat > "$work/$1.toml" <<CONF
[server]
threads = 1
[[listener]]
address = "127.0.0.1:$2"
[admin]
address = "off"
[log]
format = "json"
level = "info,pingora=warn"
access_buffer_kib = 64
[storage]
database = "$work/$1.sqlite"
$3
[[portal]]
name = "bench"
upstream = "127.0.0.1:$UP"
CONF
}
conf pass "$VP" ""
conf session "$VS" "$(session_settings "$work/factor.keys")"
echo "profile = \"$work/profile.toml\"" >> "$work/session.toml"

GRIND=(valgrind --tool=callgrind)
"${GRIND[@]}" --callgrind-out-file="$work/cg.bare" "$BARE" "127.0.0.1:$BP" "127.0.0.1:$UP" 2> "$work/bare.log" &
pids+=($!); BARE_PID=$!
"${GRIND[@]}" --callgrind-out-file="$work/cg.pass" "$VIGIE" run -c "$work/pass.toml" 2> "$work/pass.log" &
pids+=($!); PASS_PID=$!
"${GRIND[@]}" --callgrind-out-file="$work/cg.session" "$VIGIE" run -c "$work/session.toml" 2> "$work/session.log" &
pids+=($!); SESSION_PID=$!
wait_port "$UP"; wait_port "$BP"; wait_port "$VP"; wait_port "$VS"
COOKIE=$(login_cookie "$VS")
[ -n "$COOKIE" ] || { echo "could not log in through the session gateway" >&2; exit 1; }

# One keep-alive connection, requests one after another; warm-up first, then counters zeroed.
cat > "$work/client.py" <<'PY'
import http.client, sys
port, n, cookie = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(n):
    c.request("GET", "/1k.txt?p=4242", headers={"Cookie": cookie} if cookie else {})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
count() { # $1 name, $2 pid, $3 port, $4 cookie -> instructions per request
  python3 "$work/client.py" "$3" 200 "$4"
  callgrind_control -z "$2" >/dev/null
  python3 "$work/client.py" "$3" "$REQUESTS" "$4"
  callgrind_control -d "$2" >/dev/null
  sleep 1
  local total
  total=$(callgrind_annotate "$(ls -t "$work"/cg."$1".* | head -n 1)" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo $(( total / REQUESTS ))
}
bare=$(count bare "$BARE_PID" "$BP" "")
pass=$(count pass "$PASS_PID" "$VP" "")
session=$(count session "$SESSION_PID" "$VS" "$COOKIE")
python3 - "$bare" "$pass" "$session" "$REQUESTS" <<'PY'
import sys
bare, passthrough, session, n = (int(x) for x in sys.argv[1:5])
print(f"instructions per request (user space, callgrind, {n} keep-alive requests of 1 KiB):")
print(f"  bare Pingora        {bare:8d}")
print(f"  Vigie pass-through  {passthrough:8d}  {passthrough / bare:.2f}x bare")
print(f"  Vigie full pipeline {session:8d}  {session / bare:.2f}x bare")
PY

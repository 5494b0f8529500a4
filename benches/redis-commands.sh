#!/usr/bin/env bash
# Redis commands per authenticated request, for two Vigie binaries on the same setup (the sample
# portal, one signed-in session, a Redis of each binary's own), as counted by Redis itself
# (INFO commandstats, which also counts the commands inside scripts). Counts, not speed: debug
# builds do.
#
#   benches/redis-commands.sh BASELINE_BINARY CANDIDATE_BINARY
#   REQUESTS=3000 SECONDS_PER_RUN=30 benches/redis-commands.sh A B
#
# The detector is off (its own Redis traffic is not the session path's, and one session viewing
# a page this fast would be held). Each side is measured idle first (what the replica does on its own: checks, resyncs), then
# under REQUESTS page views spread over SECONDS_PER_RUN; "per request" is the difference.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1; B=$2
REQUESTS=${REQUESTS:-3000}; SECONDS_PER_RUN=${SECONDS_PER_RUN:-30}
work=$(mktemp -d); pids=()
. benches/common.sh
PORTAL=$(free_port)
"$B" sample-portal --listen "127.0.0.1:$PORTAL" --patients 300 2> "$work/portal.log" & pids+=($!)
wait_port "$PORTAL"
for side in A B; do
  bin=$([ $side = A ] && echo "$A" || echo "$B")
  R=$(free_port); P=$(free_port)
  mkdir -p "$work/$side"
  redis-server --port "$R" --bind 127.0.0.1 --save '' --appendonly yes --dir "$work/$side" > /dev/null & pids+=($!)
  head -c 48 /dev/urandom > "$work/$side/session.key"
  "$bin" keys factor-key > "$work/$side/factor.keys"
  cat > "$work/$side/vigie.toml" <<CONF
[server]
threads = 1
[[listener]]
address = "127.0.0.1:$P"
[admin]
address = "off"
[storage]
backend = "redis"
redis_url = "redis://127.0.0.1:$R/0"
session_key_file = "$work/$side/session.key"
database = "$work/$side/vigie.sqlite"
[second_factor]
required = false
key_file = "$work/$side/factor.keys"
webauthn_origins = ["http://localhost:$P"]
[detection]
enabled = false
[budgets.view]
requests = 1000000
per = "minute"
[budgets.source]
requests = 1000000
per = "minute"
[[portal]]
name = "ehr"
upstream = "127.0.0.1:$PORTAL"
profile = "$PWD/config/profiles/sample-portal.toml"
CONF
  wait_port "$R"
  "$bin" run -c "$work/$side/vigie.toml" 2> "$work/$side/vigie.log" & pids+=($!)
  wait_port "$P"
  echo "$side ($bin):"
  python3 - "$P" "$R" "$REQUESTS" "$SECONDS_PER_RUN" <<'PY'
import http.client, re, subprocess, sys, time
port, rport, n, secs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
def req(method, path, headers={}, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse(); data = r.read(); c.close()
    return r, data
r, page = req("GET", "/index.php")
cookies = "; ".join(v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie")
token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
form = f"login=1&csrf_token={token}&username=dr.martin&password=martin-demo"
r, _ = req("POST", "/index.php", {"Cookie": cookies, "Origin": "http://127.0.0.1",
    "Content-Type": "application/x-www-form-urlencoded"}, form)
vigie = [v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie" and v.startswith("vigie=")]
assert r.status == 302 and vigie, (r.status, r.getheaders())
def stats():
    out = subprocess.run(["redis-cli", "-p", rport, "INFO", "commandstats"], capture_output=True, text=True).stdout
    return {m[0]: int(m[1]) for m in re.findall(r"cmdstat_([^:]+):calls=(\d+)", out)}
def reset():
    subprocess.run(["redis-cli", "-p", rport, "CONFIG", "RESETSTAT"], capture_output=True)
time.sleep(1)
reset(); time.sleep(secs); idle = stats()
reset(); start = time.time(); ok = 0
for i in range(n):
    r, _ = req("GET", "/index.php?m=dPpatients&tab=vw_full_patients&patient_id=5", {"Cookie": vigie[0]})
    ok += r.status == 200
    time.sleep(max(0, start + (i + 1) * secs / n - time.time()))
busy = stats()
total = lambda d: sum(v for k, v in d.items() if not k.startswith("config"))
extra = total(busy) - total(idle)
print(f"  idle {secs:.0f} s: {total(idle)} commands {dict(sorted(idle.items()))}")
print(f"  {n} requests ({ok} served) in {secs:.0f} s: {total(busy)} commands {dict(sorted(busy.items()))}")
print(f"  per request, beyond idle: {extra / n:.4f}")
PY
done

#!/usr/bin/env bash
# A/B of two Vigie binaries on the same pass-through setup, interleaved in one run, so a change
# (allocator, runtime setting, code) is judged as a ratio against its baseline.
#
#   benches/ab.sh BASELINE_BINARY CANDIDATE_BINARY      # e.g. a copy of an older release build
#   RUNS=5 SECONDS_PER_RUN=8 benches/ab.sh A B
#   B_SERVER="work_stealing = false" benches/ab.sh BIN BIN   # same binary, one setting changed
#
# Same layout as load.sh: each Vigie one worker on CPU 0; nginx upstream (static 1 KiB) and wrk on CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1; B=$2
RUNS=${RUNS:-3}; SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}; CONNECTIONS=${CONNECTIONS:-32}
scripts/install-deps nginx wrk taskset
work=$(mktemp -d); pids=()
. benches/common.sh
UP=$(free_port); PA=$(free_port); PB=$(free_port)
start_upstream "$UP" 1
for side in A B; do
  port=$([ $side = A ] && echo "$PA" || echo "$PB")
  extra=$([ $side = B ] && echo "${B_SERVER:-}" || true)
  cat > "$work/$side.toml" <<CONF
[server]
threads = 1
$extra
[[listener]]
address = "127.0.0.1:$port"
[admin]
address = "off"
[log]
format = "json"
level = "info,pingora=warn"
[storage]
database = "$work/$side.sqlite"
[[portal]]
name = "bench"
upstream = "127.0.0.1:$UP"
CONF
  bin=$([ $side = A ] && echo "$A" || echo "$B")
  taskset -c 0 "$bin" run -c "$work/$side.toml" 2> "$work/$side.log" & pids+=($!)
  declare "PID_$side=$!"
done
wait_port "$UP"; wait_port "$PA"; wait_port "$PB"
# Requests/s, and the proxy's CPU time per request (user + system from /proc, all threads),
# which the machine's noise moves much less.
TICK_US=$((1000000 / $(getconf CLK_TCK)))
cpu_us() { awk -v t="$TICK_US" '{print ($14 + $15) * t}' "/proc/$1/stat"; }
measure() { # $1 port, $2 pid -> "req/s cpu-us-per-request"
  local c0 out n
  c0=$(cpu_us "$2")
  out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" "http://127.0.0.1:$1/1k.txt")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(( ($(cpu_us "$2") - c0) * 10 / n ))"
}
a=(); b=(); ca=(); cb=()
for run in $(seq "$RUNS"); do
  read -r r c < <(measure "$PA" "$PID_A"); a+=("$r"); ca+=("$c")
  read -r r c < <(measure "$PB" "$PID_B"); b+=("$r"); cb+=("$c")
  echo "run $run: A ${a[-1]} req/s $(( ca[-1] / 10 )).$(( ca[-1] % 10 )) us/req, B ${b[-1]} req/s $(( cb[-1] / 10 )).$(( cb[-1] % 10 )) us/req" >&2
done
python3 - "${a[*]}" "${b[*]}" "${ca[*]}" "${cb[*]}" <<'PY'
import statistics, sys
a, b, ca, cb = ([float(x) for x in arg.split()] for arg in sys.argv[1:5])
ma, mb = statistics.median(a), statistics.median(b)
mca, mcb = statistics.median(ca) / 10, statistics.median(cb) / 10
print(f"baseline A median {ma:.0f} req/s, candidate B median {mb:.0f} req/s, B/A = {mb / ma:.3f}")
print(f"CPU per request: A {mca:.1f} us, B {mcb:.1f} us, B/A = {mcb / mca:.3f}")
PY

#!/usr/bin/env bash
# Load benchmark: Vigie against nginx and the direct path, in one run, same machine, same
# upstream, same load generator settings, same CPU allotment. Release builds only.
#
#   benches/load.sh                 # full run (about 10 minutes)
#   RUNS=1 SECONDS_PER_RUN=4 benches/load.sh   # quick look
#
# Layout on a 2-core machine: each proxy gets one worker pinned to CPU 0; the upstream
# (nginx serving static files, one worker) and the load generator share CPU 1. The direct
# contestant is the floor: load generator -> upstream, no proxy at all. "pingora" is a bare
# Pingora proxy (examples/bare_pingora.rs: same runtime settings, allocator and build, no
# filters, no log), so the gap to nginx splits into Pingora's own cost and what Vigie adds.
# nginx and Vigie both log every request, both through a 64 KiB access-log buffer flushed
# at least once a second (ACCESS_BUFFER_KIB=0 writes every line at once, in both).
# "vigie-session-pg" is the replicas' deployment: sessions in Redis, durable records in
# PostgreSQL (a throwaway database on the machine's server, $BENCH_POSTGRES, dropped at exit).
# Results: a table on stdout and JSON in bench-results/load-<timestamp>.json.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
CONNECTIONS=${CONNECTIONS:-32}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
ACCESS_BUFFER_KIB=${ACCESS_BUFFER_KIB:-64}
# Optional: an earlier release build of vigie, run on the embedded session configuration as one
# more contestant (`vigie-session-baseline`), so "not slower than before" is a same-run ratio.
BASELINE_VIGIE=${BASELINE_VIGIE:-}

scripts/install-deps nginx wrk taskset curl

echo "building release binaries..." >&2
cargo build --release --quiet --bin vigie --example loadgen --example bare_pingora
VIGIE="$TARGET_DIR/release/vigie"
BARE="$TARGET_DIR/release/examples/bare_pingora"
LOADGEN="$TARGET_DIR/release/examples/loadgen"

work=$(mktemp -d)
pids=()
. benches/common.sh

UP=$(free_port); NGX=$(free_port); BP=$(free_port); VG=$(free_port); VGA=$(free_port)
VS=$(free_port); VSA=$(free_port); VR=$(free_port); VRA=$(free_port); RP=$(free_port)
VP=$(free_port); VPA=$(free_port); RP2=$(free_port); VB=$(free_port); VBA=$(free_port)
BENCH_POSTGRES=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}
PGDB="vigie_bench_$$"
psql "$BENCH_POSTGRES" -qc "CREATE DATABASE $PGDB" >/dev/null
drop_pg() { psql "$BENCH_POSTGRES" -qc "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true; }
trap 'stop_all; drop_pg' EXIT
mkdir -p "$work/nginx-proxy"
start_upstream "$UP" "$LOAD_CPU"
# nginx as a plain reverse proxy, upstream keep-alive as a tuned deployment would have it.
nginx_conf "$work/nginx-proxy" "upstream portal { server 127.0.0.1:$UP; keepalive 64; }
  server { listen 127.0.0.1:$NGX; location / { proxy_pass http://portal; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; } }" \
  "access_log $work/nginx-proxy/access.log combined$([ "$ACCESS_BUFFER_KIB" -gt 0 ] && echo " buffer=${ACCESS_BUFFER_KIB}k flush=1s");"
taskset -c "$PROXY_CPU" "$NGINX" -p "$work/nginx-proxy" -c "$work/nginx-proxy/nginx.conf" & pids+=($!)
NGINX_PROXY_PID=$!
# Vigie configurations: pass-through (no identity on the route), then sessions with the portal's
# login intercepted and its cookie vaulted, in memory and in Redis.
vigie_conf() { # $1 file, $2 port, $3 admin port, $4 extra TOML
  cat > "$1" <<CONF
[server]
threads = 1
[[listener]]
address = "127.0.0.1:$2"
[admin]
address = "127.0.0.1:$3"
[log]
format = "json"
level = "info,pingora=warn"
access_buffer_kib = $ACCESS_BUFFER_KIB
[limits]
keepalive_timeout_seconds = 65
$4
CONF
}
write_bench_profile "$work/bench-profile.toml"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/session.key"
echo "bench:$(head -c 32 /dev/urandom | base64)" > "$work/factor.keys"
session_extra=$(session_settings "$work/factor.keys")
portal="[[portal]]
name = \"bench\"
upstream = \"127.0.0.1:$UP\""
vigie_conf "$work/vigie.toml" "$VG" "$VGA" "[storage]
database = \"$work/pass.sqlite\"
$portal"
vigie_conf "$work/vigie-session.toml" "$VS" "$VSA" "$session_extra
[storage]
database = \"$work/session.sqlite\"
$portal
profile = \"$work/bench-profile.toml\""
vigie_conf "$work/vigie-redis.toml" "$VR" "$VRA" "$session_extra
[storage]
backend = \"redis\"
redis_url = \"redis://127.0.0.1:$RP/0\"
session_key_file = \"$work/session.key\"
database = \"$work/redis.sqlite\"
$portal
profile = \"$work/bench-profile.toml\""
vigie_conf "$work/vigie-pg.toml" "$VP" "$VPA" "$session_extra
[storage]
backend = \"redis\"
redis_url = \"redis://127.0.0.1:$RP2/0\"
session_key_file = \"$work/session.key\"
database = \"$work/pg.sqlite\"
records = \"postgres\"
postgres_url = \"${BENCH_POSTGRES%/*}/$PGDB\"
$portal
profile = \"$work/bench-profile.toml\""
if [ -n "$BASELINE_VIGIE" ]; then
  vigie_conf "$work/vigie-baseline.toml" "$VB" "$VBA" "$session_extra
[storage]
database = \"$work/baseline.sqlite\"
$portal
profile = \"$work/bench-profile.toml\""
  taskset -c "$PROXY_CPU" "$BASELINE_VIGIE" run -c "$work/vigie-baseline.toml" 2> "$work/vigie-baseline.log" & pids+=($!)
  VIGIE_BASELINE_PID=$!
  wait_port "$VB"
fi
taskset -c "$LOAD_CPU" redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly yes --dir "$work" >/dev/null & pids+=($!)
mkdir -p "$work/redis2"
taskset -c "$LOAD_CPU" redis-server --port "$RP2" --bind 127.0.0.1 --save "" --appendonly yes --dir "$work/redis2" >/dev/null & pids+=($!)
taskset -c "$PROXY_CPU" "$BARE" "127.0.0.1:$BP" "127.0.0.1:$UP" 2> "$work/bare.log" & pids+=($!)
BARE_PID=$!
taskset -c "$PROXY_CPU" "$VIGIE" run -c "$work/vigie.toml" 2> "$work/vigie.log" & pids+=($!)
VIGIE_PID=$!
taskset -c "$PROXY_CPU" "$VIGIE" run -c "$work/vigie-session.toml" 2> "$work/vigie-session.log" & pids+=($!)
VIGIE_SESSION_PID=$!
taskset -c "$PROXY_CPU" "$VIGIE" run -c "$work/vigie-redis.toml" 2> "$work/vigie-redis.log" & pids+=($!)
VIGIE_REDIS_PID=$!
wait_port "$RP2"
taskset -c "$PROXY_CPU" "$VIGIE" run -c "$work/vigie-pg.toml" 2> "$work/vigie-pg.log" & pids+=($!)
VIGIE_PG_PID=$!
wait_port "$UP"; wait_port "$NGX"; wait_port "$BP"; wait_port "$VG"; wait_port "$VS"; wait_port "$VR"; wait_port "$RP"; wait_port "$VP"

# Log in once through each session gateway; every measured request then carries the cookie.
SESSION_COOKIE=$(login_cookie "$VS"); REDIS_COOKIE=$(login_cookie "$VR"); PG_COOKIE=$(login_cookie "$VP")
[ -n "$SESSION_COOKIE" ] && [ -n "$REDIS_COOKIE" ] && [ -n "$PG_COOKIE" ] || { echo "could not log in through the session gateways" >&2; exit 1; }

cat > "$work/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
LUA

results="$work/results.jsonl"
: > "$results"
declare -A PORT=([direct]=$UP [nginx]=$NGX [pingora]=$BP [vigie-passthrough]=$VG [vigie-session]=$VS [vigie-session-redis]=$VR [vigie-session-pg]=$VP)
declare -A COOKIE=([direct]="" [nginx]="" [pingora]="" [vigie-passthrough]="" [vigie-session]="$SESSION_COOKIE" [vigie-session-redis]="$REDIS_COOKIE" [vigie-session-pg]="$PG_COOKIE")
CONTESTANTS=(direct nginx pingora vigie-passthrough vigie-session vigie-session-redis vigie-session-pg)
# CPU time a contestant's process spent, in microseconds (user + system, from /proc): divided
# by the requests it served, the cost of a request, which the machine's noise (other tenants,
# CPU steal) moves much less than requests/s. The direct contestant has no proxy: 0.
TICK_US=$((1000000 / $(getconf CLK_TCK)))
NGINX_WORKER=$(pgrep -P "$NGINX_PROXY_PID" | head -n 1 || echo "$NGINX_PROXY_PID")
declare -A PID=([direct]="" [nginx]=$NGINX_WORKER [pingora]=$BARE_PID [vigie-passthrough]=$VIGIE_PID [vigie-session]=$VIGIE_SESSION_PID [vigie-session-redis]=$VIGIE_REDIS_PID [vigie-session-pg]=$VIGIE_PG_PID)
cpu_us() { [ -n "${PID[$1]}" ] || { echo 0; return; }; awk -v t="$TICK_US" '{print ($14 + $15) * t}' "/proc/${PID[$1]}/stat"; }
if [ -n "$BASELINE_VIGIE" ]; then
  CONTESTANTS+=(vigie-session-baseline)
  PORT[vigie-session-baseline]=$VB
  COOKIE[vigie-session-baseline]=$(login_cookie "$VB")
  PID[vigie-session-baseline]=$VIGIE_BASELINE_PID
  [ -n "${COOKIE[vigie-session-baseline]}" ] || { echo "could not log in through the baseline gateway" >&2; exit 1; }
fi
cookie_args() { [ -n "${COOKIE[$1]}" ] && printf '%s\n' -H "Cookie: ${COOKIE[$1]}"; true; }

echo "peak throughput: wrk -t1 -c$CONNECTIONS -d${SECONDS_PER_RUN}s, $RUNS runs each, interleaved" >&2
for size in 1k 64k; do
  for run in $(seq "$RUNS"); do
    for c in "${CONTESTANTS[@]}"; do
      mapfile -t extra < <(cookie_args "$c")
      cpu0=$(cpu_us "$c")
      line=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" "${extra[@]}" -s "$work/report.lua" "http://127.0.0.1:${PORT[$c]}/$size.txt?p=4242" | tail -n 1)
      cpu=$(( $(cpu_us "$c") - cpu0 ))
      echo "{\"mode\":\"max\",\"contestant\":\"$c\",\"size\":\"$size\",\"run\":$run,\"cpu_us\":$cpu,\"wrk\":$line}" >> "$results"
      echo "  $size run $run $c: $line" >&2
    done
  done
done

# Fixed rate at half of nginx's median peak (1 KiB): latency, not throughput.
half=$(python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rps = [r["wrk"]["requests"] / (r["wrk"]["duration_us"] / 1e6) for r in rows if r["contestant"] == "nginx" and r["size"] == "1k"]
print(int(statistics.median(rps) / 2))
PY
)
echo "fixed rate: $half req/s, $CONNECTIONS connections, ${SECONDS_PER_RUN}s, $RUNS runs each" >&2
for run in $(seq "$RUNS"); do
  for c in "${CONTESTANTS[@]}"; do
    hdr=(); [ -n "${COOKIE[$c]}" ] && hdr=(--header "Cookie: ${COOKIE[$c]}")
    line=$(taskset -c "$LOAD_CPU" "$LOADGEN" --addr "127.0.0.1:${PORT[$c]}" --path "/1k.txt?p=4242" --rate "$half" --connections "$CONNECTIONS" --seconds "$SECONDS_PER_RUN" "${hdr[@]}")
    echo "{\"mode\":\"fixed\",\"contestant\":\"$c\",\"size\":\"1k\",\"run\":$run,\"loadgen\":$line}" >> "$results"
    echo "  fixed run $run $c: $line" >&2
  done
done

rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
echo "{\"mode\":\"rss\",\"nginx_kb\":$(rss_kb "$NGINX_WORKER"),\"pingora_kb\":$(rss_kb "$BARE_PID"),\"vigie_kb\":$(rss_kb "$VIGIE_PID"),\"vigie_session_kb\":$(rss_kb "$VIGIE_SESSION_PID"),\"vigie_redis_kb\":$(rss_kb "$VIGIE_REDIS_PID"),\"vigie_pg_kb\":$(rss_kb "$VIGIE_PG_PID")}" >> "$results"
drop_pg

mkdir -p bench-results
out="bench-results/load-$(date -u +%Y%m%dT%H%M%SZ).json"
python3 - "$results" "$out" <<'PY'
import json, statistics, sys, platform, os
rows = [json.loads(l) for l in open(sys.argv[1])]
rss = next(r for r in rows if r["mode"] == "rss")
med = statistics.median
table = {}
for r in rows:
    if r["mode"] == "max":
        w = r["wrk"]
        table.setdefault(("max", r["size"], r["contestant"]), []).append(
            (w["requests"] / (w["duration_us"] / 1e6), w["p50_us"], w["p99_us"], w["p999_us"], w["errors"],
             r["cpu_us"] / max(w["requests"], 1)))
    elif r["mode"] == "fixed":
        g = r["loadgen"]
        table.setdefault(("fixed", "1k", r["contestant"]), []).append(
            (g["achieved_rps"], g["p50_us"], g["p99_us"], g["p999_us"], g["errors"], 0))
summary = []
for (mode, size, c), runs in table.items():
    summary.append({"mode": mode, "size": size, "contestant": c, "runs": len(runs),
                    "rps": med(x[0] for x in runs), "p50_us": med(x[1] for x in runs),
                    "p99_us": med(x[2] for x in runs), "p999_us": med(x[3] for x in runs),
                    "errors": sum(x[4] for x in runs), "cpu_us_per_request": round(med(x[5] for x in runs), 1)})
def get(mode, size, c):
    return next((s for s in summary if (s["mode"], s["size"], s["contestant"]) == (mode, size, c)), None)
for s in summary:
    n, d = get(s["mode"], s["size"], "nginx"), get(s["mode"], s["size"], "direct")
    s["rps_vs_nginx"] = round(s["rps"] / n["rps"], 3) if n else None
    s["rps_vs_direct"] = round(s["rps"] / d["rps"], 3) if d else None
    s["p99_added_us"] = s["p99_us"] - d["p99_us"] if d else None
print(f"{'mode':6} {'size':4} {'contestant':18} {'req/s':>9} {'p50 us':>7} {'p99 us':>7} {'p99.9 us':>8} {'vs nginx':>8} {'vs direct':>9} {'p99 +us':>7} {'errors':>6} {'cpu us/req':>10}")
for s in sorted(summary, key=lambda s: (s["mode"] != "max", s["size"], ["direct", "nginx", "pingora", "vigie-passthrough", "vigie-session", "vigie-session-redis", "vigie-session-pg", "vigie-session-baseline"].index(s["contestant"]))):
    print(f"{s['mode']:6} {s['size']:4} {s['contestant']:18} {s['rps']:9.0f} {s['p50_us']:7.0f} {s['p99_us']:7.0f} {s['p999_us']:8.0f} {s['rps_vs_nginx']:8.2f} {s['rps_vs_direct']:9.2f} {s['p99_added_us']:7.0f} {s['errors']:6d} {s['cpu_us_per_request']:10.1f}")
print(f"peak RSS: nginx worker {rss['nginx_kb']/1024:.1f} MiB, bare pingora {rss['pingora_kb']/1024:.1f} MiB, vigie pass-through {rss['vigie_kb']/1024:.1f} MiB, "
      f"session {rss['vigie_session_kb']/1024:.1f} MiB, session+redis {rss['vigie_redis_kb']/1024:.1f} MiB, session+redis+postgres {rss['vigie_pg_kb']/1024:.1f} MiB")
emb, red = get("max", "1k", "vigie-session"), get("max", "1k", "vigie-session-redis")
if emb and red:
    print(f"Redis backend vs embedded (1k, req/s): {red['rps'] / emb['rps']:.2f}x")
pgr = get("max", "1k", "vigie-session-pg")
if emb and pgr:
    print(f"PostgreSQL + Redis vs embedded (1k): req/s {pgr['rps'] / emb['rps']:.2f}x, CPU per request {pgr['cpu_us_per_request'] / emb['cpu_us_per_request']:.2f}x")
base = get("max", "1k", "vigie-session-baseline")
if emb and base:
    print(f"embedded vs the baseline build (1k): req/s {emb['rps'] / base['rps']:.2f}x, CPU per request {emb['cpu_us_per_request'] / base['cpu_us_per_request']:.2f}x")
bare, vp, ngx = get("max", "1k", "pingora"), get("max", "1k", "vigie-passthrough"), get("max", "1k", "nginx")
if bare and vp and emb:
    print(f"vs bare Pingora (1k, req/s): pass-through {vp['rps'] / bare['rps']:.2f}x, full pipeline {emb['rps'] / bare['rps']:.2f}x")
    print(f"CPU per request (1k): nginx {ngx['cpu_us_per_request']} us, bare Pingora {bare['cpu_us_per_request']} us, "
          f"Vigie pass-through {vp['cpu_us_per_request']} us, full pipeline {emb['cpu_us_per_request']} us")
print("session contestants run session check + policy + budgets (in process, or one Redis script per request) + the detector (patient read from ?p=, pseudonymised, scored on the identity and the source; actions off) + cookie vault")
json.dump({"machine": {"cpus": os.cpu_count(), "kernel": platform.release()}, "summary": summary, "rss_kb": rss, "raw": rows},
          open(sys.argv[2], "w"), indent=1)
print(f"written {sys.argv[2]}")
PY

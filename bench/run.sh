#!/usr/bin/env bash
# Load-tests a release build of `atrium serve` with wrk and prints requests/s and
# p50/p99 latency per route, each also as a ratio to /healthz measured in the same run
# (the machine is shared and noisy, so only same-run ratios compare across runs).
#
#   make bench                 # all routes, 10 s each
#   BENCH_SECONDS=30 make bench
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${BENCH_SECONDS:-10}"
connections="${BENCH_CONNECTIONS:-32}"
swift build -c release --product atrium
bin="$(swift build -c release --show-bin-path)/atrium"

scratch="$(mktemp -d /tmp/atrium-bench.XXXXXX)"
chmod 755 "$scratch"
export ATRIUM_DATA_DIR="$scratch/.atrium"
port="${BENCH_PORT:-18080}"
"$bin" serve --port "$port" --tenants-dir tenants --log-level error &
server=$!
cleanup() {
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT

for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null

# Routes to measure; later issues append theirs here.
routes=(/healthz /readyz)

measure() {
  wrk -t2 -c"$connections" -d"${seconds}s" --latency "http://127.0.0.1:$port$1" 2>&1
}

printf '%-12s %12s %10s %10s %10s\n' route 'req/s' 'p50 ms' 'p99 ms' 'vs healthz'
baseline=""
for route in "${routes[@]}"; do
  out="$(measure "$route")"
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
  p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
  to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us/, "", v); print v/1000 } else if (v ~ /ms$/) { sub(/ms/, "", v); print v } else { sub(/s/, "", v); print v*1000 } }'; }
  [ -n "$baseline" ] || baseline="$rps"
  ratio="$(awk -v a="$rps" -v b="$baseline" 'BEGIN { printf "%.2f", a/b }')"
  printf '%-12s %12s %10s %10s %10s\n' "$route" "$rps" "$(to_ms "$p50")" "$(to_ms "$p99")" "$ratio"
done

#!/usr/bin/env bash
# What recording usage adds to a module's write, over HTTP on the request path modules
# run on (issue 28): the same create of an owned row, once plain and once with
# `transaction.recordUsage` in its transaction (the bench module, installed only with
# ATRIUM_BENCH_MODULE=1), alternated over rounds; the ratio of their throughputs, and
# PostgreSQL's counters per request (transactions, rows written).
#
#   bench/metering.sh        # part of make bench; BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_ROUNDS
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

seconds="${BENCH_SECONDS:-10}"
connections="${BENCH_CONNECTIONS:-32}"
rounds="${BENCH_ROUNDS:-6}"
bin="$(bench_binary)"

scratch="$(mktemp -d /tmp/atrium-bench-metering.XXXXXX)"
chmod 755 "$scratch"
export ATRIUM_DATA_DIR="$scratch/.atrium" ATRIUM_BENCH_MODULE=1
port="${BENCH_PORT:-18098}"
base="http://127.0.0.1:$port"
mkdir -p "$scratch/tenants"
cp tenants/acme.yaml "$scratch/tenants/"
sed -i 's/^modules: \[sales\]/modules: [sales, bench]/' "$scratch/tenants/acme.yaml"
cat >"$scratch/tenants/plans.yaml" <<'YAML'
plans:
  pro: { modules: [sales, bench] }
YAML
"$bin" serve --port "$port" --tenants-dir "$scratch/tenants" --log-level error >/dev/null &
server=$!
cleanup() {
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT
bench_wait_ready "$base" "$server"
rep="$(bench_login "$base" acme rep@acme.test acme-demo-member)"
route() { echo "$base/v1/tenants/acme/bench/$1"; }
for path in records metered-records; do
  curl -fsS -o /dev/null -H "Authorization: Bearer $rep" -H 'Content-Type: application/json' -d '{"body":"warm"}' "$(route "$path")"
done

rps_of() { awk '/^Requests\/sec/ { print $2 }' <<<"$1"; }
stats() {
  "$bin" db shell --role owner --command \
    "SELECT xact_commit || ' ' || tup_inserted FROM pg_stat_database WHERE datname = current_database()" 2>/dev/null |
    awk 'NF == 2 && $1 ~ /^[0-9]+$/ { print; exit }'
}
declare -A total=() requests=() commits=() inserted=()
for variant in records metered-records; do total[$variant]=0; requests[$variant]=0; commits[$variant]=0; inserted[$variant]=0; done
for round in $(seq 1 "$rounds"); do
  for variant in records metered-records; do
    read -r c0 i0 <<<"$(stats)"
    out="$(wrk -t2 -c"$connections" -d"${seconds}s" -s bench/record-create.lua -H "Authorization: Bearer $rep" \
      -H 'Content-Type: application/json' "$(route "$variant")" 2>&1)"
    read -r c1 i1 <<<"$(stats)"
    rps="$(rps_of "$out")"
    count="$(awk '/requests in/ { print $1 }' <<<"$out")"
    if grep -q 'Non-2xx' <<<"$out"; then echo "$variant: $(grep 'Non-2xx' <<<"$out")" >&2; exit 1; fi
    total[$variant]="$(awk -v a="${total[$variant]}" -v b="$rps" 'BEGIN { print a + b }')"
    requests[$variant]=$((requests[$variant] + count))
    commits[$variant]=$((commits[$variant] + c1 - c0))
    inserted[$variant]=$((inserted[$variant] + i1 - i0))
    printf '  round %d %-16s %8.0f req/s\n' "$round" "$variant" "$rps"
  done
done
per() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
plain="$(awk -v a="${total[records]}" -v r="$rounds" 'BEGIN { print a / r }')"
metered="$(awk -v a="${total[metered-records]}" -v r="$rounds" 'BEGIN { print a / r }')"
printf 'module write over HTTP (owned row, %d connections): %.0f req/s plain, %.0f req/s with usage recorded (%s of plain; target 0.9)\n' \
  "$connections" "$plain" "$metered" "$(per "$metered" "$plain")"
printf '  per request: plain %s commits, %s rows inserted; metered %s commits, %s rows inserted (pg_stat_database)\n' \
  "$(per "${commits[records]}" "${requests[records]}")" "$(per "${inserted[records]}" "${requests[records]}")" \
  "$(per "${commits[metered-records]}" "${requests[metered-records]}")" "$(per "${inserted[metered-records]}" "${requests[metered-records]}")"

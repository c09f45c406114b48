#!/usr/bin/env bash
# The request path's cost (issue 10): an owner-scoped list and a create as a sales rep,
# each as a ratio to /healthz in the same run; transactions and statements per read
# from PostgreSQL's own counters (pg_stat_database, pg_stat_statements); and the list's
# p99 while another tenant runs a large import.
#
#   bench/request-path.sh            # part of make bench; BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_ROUNDS
#   ATRIUM_BENCH_BINARY=/path/to/atrium bench/request-path.sh   # another build, for before/after
#   BENCH_ONLY=p99 bench/request-path.sh                        # only the p99 beside an import
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

seconds="${BENCH_SECONDS:-10}"
connections="${BENCH_CONNECTIONS:-32}"
bin="$(bench_binary)"
only="${BENCH_ONLY:-}"

scratch="$(mktemp -d /tmp/atrium-bench-path.XXXXXX)"
chmod 755 "$scratch"
export ATRIUM_DATA_DIR="$scratch/.atrium"
port="${BENCH_PORT:-18090}"
base="http://127.0.0.1:$port"
# The demo tenants, glow with the sales module too, for the import beside acme's reads.
bench_tenants "$scratch/tenants"
"$bin" serve --port "$port" --tenants-dir "$scratch/tenants" --log-level error >/dev/null &
server=$!
cleanup() {
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT
bench_wait_ready "$base" "$server"
login() { bench_login "$base" "$@"; }
rep="$(login acme rep@acme.test acme-demo-member)"
bench_owned_contacts "$base" "$rep"
list="$base/v1/tenants/acme/sales/contacts?limit=20"
[ "$(curl -fsS -H "Authorization: Bearer $rep" "$list" | grep -o '"owner_id"' | wc -l)" = 20 ]

field() { awk -v key="$1" '$1==key {print $2}' <<<"$2"; }
rps_of() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
requests_of() { awk '/requests in/ {print $1}' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a/b }'; }
# The middle value of its arguments (the lower middle of an even count).
checked() { # name, wrk output: fails the bench on any non-2xx answer
  if grep -q 'Non-2xx' <<<"$2"; then echo "$1: some responses were not 2xx:" >&2; echo "$2" >&2; exit 1; fi
}
# The machine's busy CPU time so far (every process: the server, PostgreSQL, wrk), in
# clock ticks, from /proc/stat.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# wrk with the machine's CPU milliseconds per request appended to its output ("cpu-ms X").
measured_wrk() {
  local before after output
  before="$(busy_ticks)"
  output="$(wrk "$@" 2>&1)"
  after="$(busy_ticks)"
  printf '%s\ncpu-ms %s\n' "$output" "$(awk -v a="$before" -v b="$after" -v hz="$(getconf CLK_TCK)" -v n="$(requests_of "$output")" \
    'BEGIN { printf "%.3f", (b - a) / hz * 1000 / n }')"
}
# name, the wrk output of the round whose ratio is the median, the median ratio, every round's ratio
row() {
  printf '%-30s %10s %9s %9s %11s %12s   %s\n' "$1" "$(rps_of "$2")" "$(to_ms "$(field 50% "$2")")" "$(to_ms "$(field 99% "$2")")" "$3" \
    "$(field cpu-ms "$2")" "$4"
}

# A query's rows as the database shell prints them, without header and footer.
sql() { "$bin" db shell --role owner --command "$1" | sed -n '3,$p' | sed '/^(/d;/^$/d'; }

# Rounds of /healthz, the list and the create, one after another: each route's ratio is
# taken against /healthz of its own round, and the table shows the median round. The
# machine's load drifts over a run; a ratio of two measurements seconds apart drifts
# less than one of measurements a minute apart, and one unlucky stretch moves one round.
rounds="${BENCH_ROUNDS:-3}"
if [ "$only" != p99 ]; then
echo "request path: $connections connections, $rounds rounds of ${seconds}s per route, release build"
printf '%-30s %10s %9s %9s %11s %12s   %s\n' route 'req/s' 'p50 ms' 'p99 ms' 'vs healthz' 'CPU ms/req' 'each round'
healthz=(); reads=(); creates=(); read_ratios=(); create_ratios=()
for round in $(seq 1 "$rounds"); do
  healthz[round]="$(measured_wrk -t2 -c"$connections" -d"${seconds}s" --latency "$base/healthz")"
  checked /healthz "${healthz[round]}"
  reads[round]="$(measured_wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "Authorization: Bearer $rep" "$list")"
  checked 'GET sales/contacts' "${reads[round]}"
  creates[round]="$(measured_wrk -t2 -c"$connections" -d"${seconds}s" --latency -s bench/contact-create.lua -H "Authorization: Bearer $rep" \
    -H 'Content-Type: application/json' "$base/v1/tenants/acme/sales/contacts" -- "run$$-$round")"
  checked 'POST sales/contacts' "${creates[round]}"
  read_ratios[round]="$(ratio "$(rps_of "${reads[round]}")" "$(rps_of "${healthz[round]}")")"
  create_ratios[round]="$(ratio "$(rps_of "${creates[round]}")" "$(rps_of "${healthz[round]}")")"
done
# The round of a route whose value is the median.
median_round() { # value, values...
  local want="$1" round=0; shift
  for value in "$@"; do round=$((round + 1)); [ "$value" = "$want" ] && { echo "$round"; return; }; done
}
healthz_rps=(); for round in $(seq 1 "$rounds"); do healthz_rps[round]="$(rps_of "${healthz[round]}")"; done
middle="$(median_round "$(median "${healthz_rps[@]}")" "${healthz_rps[@]}")"
row /healthz "${healthz[middle]}" 1.000 "$(printf '%s ' "${healthz_rps[@]}")req/s"
read_median="$(median "${read_ratios[@]}")"
row 'GET sales/contacts (20 of 50)' "${reads[$(median_round "$read_median" "${read_ratios[@]}")]}" "$read_median" "${read_ratios[*]}"
create_median="$(median "${create_ratios[@]}")"
row 'POST sales/contacts' "${creates[$(median_round "$create_median" "${create_ratios[@]}")]}" "$create_median" "${create_ratios[*]}"

# PostgreSQL's counters over a fixed stretch of reads: commits (pg_stat_database) and
# statements by text (pg_stat_statements), per request.
statements() {
  sql "SELECT queryid || '|' || calls || '|' || regexp_replace(left(query, 90), '\s+', ' ', 'g') FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
}
commits() { sql "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()" | tr -d ' '; }
# The server's own count of its request connections' round trips (each write that waits
# for PostgreSQL's answer) and leases, from /metrics.
metric() { curl -fsS "$base/metrics" | awk -v name="$1" '$1 == name { printf "%d", $2 }'; }
# A backend reports its transactions to pg_stat_database when it goes idle, but at most
# once a second: counts of a busy stretch can land up to ten seconds later
# (PGSTAT_IDLE_INTERVAL). Both readings wait that out, so the creates before are not
# counted here and the reads are all counted.
sleep 11
statements >"$scratch/before"
commits_before="$(commits)"
trips_before="$(metric atrium_db_request_round_trips_total)"
leases_before="$(metric atrium_db_request_connections_total)"
syncs_before="$(metric atrium_db_request_sync_commits_total)"
counted="$(wrk -t2 -c"$connections" -d"${seconds}s" -H "Authorization: Bearer $rep" "$list" 2>&1)"
trips_after="$(metric atrium_db_request_round_trips_total)"
leases_after="$(metric atrium_db_request_connections_total)"
syncs_after="$(metric atrium_db_request_sync_commits_total)"
sleep 11
commits_after="$(commits)"
statements >"$scratch/after"
total="$(requests_of "$counted")"
echo
printf 'per read, over %s reads (the server also flushes API-call counts once a second, and its worker polls):\n' "$total"
transactions="$(awk -v a="$commits_before" -v b="$commits_after" -v n="$total" 'BEGIN { printf "%.3f", (b - a - 2) / n }')"
printf '  transactions per request: %s (%s of them committed by their Sync)\n' "$transactions" \
  "$(awk -v s="$((syncs_after - syncs_before))" -v n="$total" 'BEGIN { printf "%.3f", s / n }')"
# A transaction of one statement runs in the implicit transaction its Sync commits: it has
# no BEGIN and no COMMIT. pg_stat_statements counts a BEGIN or COMMIT sent as a named
# prepared statement only sometimes, so it is left out of its counts, and every
# transaction that its Sync did not commit (from the server's own count) is counted as
# one BEGIN and one COMMIT instead.
awk -F'|' -v n="$total" -v tx="$transactions" -v syncs="$((syncs_after - syncs_before))" '
  NR == FNR { before[$1] = $2; next }
  {
    calls = $2 - before[$1]
    if (calls > 0 && $3 != "BEGIN" && $3 != "COMMIT" && $3 != "ROLLBACK") {
      total += calls
      if (calls / n >= 0.01) printf "    %6.3f  %s\n", calls / n, $3
    }
  }
  END {
    explicit = tx - syncs / n
    if (explicit < 0) explicit = 0
    if (explicit >= 0.005) printf "    %6.3f  BEGIN and COMMIT (transactions not committed by their Sync)\n", 2 * explicit
    printf "  statements per request: %.3f\n", total / n + 2 * explicit
  }
' "$scratch/before" "$scratch/after" | sort -r
# The scope goes in one write with the list's statement, and the Sync behind it commits:
# a read is one round trip.
awk -v a="$trips_before" -v b="$trips_after" -v c="$leases_before" -v d="$leases_after" -v n="$total" \
  'BEGIN { printf "  round trips per request: %.3f (%d round trips over %d request connections for %d reads)\n", (b - a) / n, b - a, d - c, n }'

# How soon a tenant change reaches the server: suspend the tenant in the database (the
# commit's own clock), poll the list until it answers 403, resume; five times, the median.
propagation() {
  local committed served code
  committed="$(sql "UPDATE tenants SET status = 'suspended' WHERE slug = 'acme' RETURNING (extract(epoch FROM clock_timestamp()) * 1000)::bigint" | head -n 1 | tr -d ' ')"
  code=200
  while [ "$code" != 403 ]; do code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $rep" "$list")"; done
  served="$(date +%s%3N)"
  sql "UPDATE tenants SET status = 'active' WHERE slug = 'acme'" >/dev/null
  until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $rep" "$list")" = 200 ]; do :; done
  echo $((served - committed))
}
delays="$(for _ in 1 2 3 4 5; do propagation; done | sort -n | tr '\n' ' ')"
echo
printf 'tenant suspended -> first 403 from the server: median %s ms (of %s ms; includes a polling curl and the database shell)\n' \
  "$(awk '{print $3}' <<<"$delays")" "$(sed 's/ $//' <<<"$delays")"
fi

# The list's p99 while another tenant imports 300,000 contacts, next to it quiet: in
# rounds (quiet, then busy beside a fresh import, then until that import has landed),
# each round's ratio of its own two p99s, and the median round.
glow="$(login glow owner@glow.test glow-demo-owner)"
imports="$base/v1/tenants/glow/sales/imports"
# The creates above left acme tens of thousands of new rows, which autovacuum would
# otherwise take up in the middle of the first round: vacuum them now.
sql "VACUUM (ANALYZE) sales_contacts" >/dev/null
p99_ratios=(); p99_rows=()
for round in $(seq 1 "$rounds"); do
  python3 - "$scratch/import.csv" "$round" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("email,first_name,last_name\n")
    for i in range(300_000):
        f.write(f"person{i}-round{sys.argv[2]}@example.com,First{i},Last{i}\n")
PY
  # The last round's import leaves glow's new rows to autovacuum (at normal priority),
  # which the quiet baseline must not measure: wait (a minute at most) until it is done.
  for _ in $(seq 1 120); do
    [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'" | tr -d ' ')" = 0 ] && break
    sleep 0.5
  done
  quiet="$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "Authorization: Bearer $rep" "$list" 2>&1)"
  checked 'GET sales/contacts (quiet)' "$quiet"
  import="$(curl -fsS -X POST -H "Authorization: Bearer $glow" -H 'Content-Type: text/csv' --data-binary "@$scratch/import.csv" \
    "$imports?entity=contacts" | sed -E 's/.*"id":"([^"]+)".*/\1/')"
  busy="$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "Authorization: Bearer $rep" "$list" 2>&1)"
  checked 'GET sales/contacts (beside an import)' "$busy"
  state=""
  for _ in $(seq 1 600); do
    state="$(curl -fsS -H "Authorization: Bearer $glow" "$imports/$import" | sed -E 's/.*"state":"([a-z_]+)".*/\1/')"
    [ "$state" = running ] || [ "$state" = queued ] || break
    sleep 0.5
  done
  [ "$state" = succeeded ] || { echo "the import of round $round ended $state" >&2; exit 1; }
  quiet_p99="$(to_ms "$(field 99% "$quiet")")"; busy_p99="$(to_ms "$(field 99% "$busy")")"
  p99_ratios[round]="$(ratio "$busy_p99" "$quiet_p99")"
  p99_rows[round]="$(printf '%s ms quiet, %s ms while glow imports (%sx); %s vs %s req/s' \
    "$quiet_p99" "$busy_p99" "${p99_ratios[round]}" "$(rps_of "$quiet")" "$(rps_of "$busy")")"
done
echo
p99_median="$(median "${p99_ratios[@]}")"
printf 'GET sales/contacts p99 beside an import: %sx its quiet p99 (median of %s rounds)\n' "$p99_median" "$rounds"
for round in $(seq 1 "$rounds"); do printf '  round %s: %s\n' "$round" "${p99_rows[round]}"; done

#!/usr/bin/env bash
# Portfolio (issue 29) on a release build: a ledger of 10,000 lots over 500 instruments
# with five years of daily closes (about 650,000), then
#   - the closes' import through `atrium portfolio market import`, against a raw COPY of
#     the same file into a table of the same shape: key, checks, instrument reference
#     (ratio of rows/s);
#   - holdings as of a date (p50 over 20 calls), and the same ledger booked row by row
#     in Swift (moving average) against set-based in SQL (FIFO), for a report and for a
#     back-dated buy;
#   - five-year TWR and XIRR replaying the ledger, and from the nightly valuations;
#   - an analysis (metered), what its metering adds (its write with and without the usage
#     records, `atrium bench analysis-metering`), and /healthz's p99 while performance
#     replays run beside it, against /healthz alone and beside a busy loop of the lowest
#     scheduling class (what any CPU work costs it here);
# with PostgreSQL's counters (pg_stat_statements) for the holdings read.
#
#   bench/portfolio.sh          # also run by make bench
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bin="$(bench_binary)"

scratch="$(mktemp -d /tmp/atrium-portfolio-bench.XXXXXX)"
chmod 755 "$scratch"
export ATRIUM_DATA_DIR="$scratch/.atrium"
port="${BENCH_PORT:-18090}"
base="http://127.0.0.1:$port"
mkdir -p "$scratch/tenants"
cp tenants/consult.yaml "$scratch/tenants/"
cat >"$scratch/tenants/plans.yaml" <<'YAML'
plans:
  consultant: { currency: INR, modules: [portfolio] }
YAML
"$bin" serve --port "$port" --tenants-dir "$scratch/tenants" --log-level error &
server=$!
cleanup() {
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT
bench_wait_ready "$base" "$server"
sql() { "$bin" db shell --role owner --command "$1" | sed -n '3,$p' | sed '/^(/d;/^$/d'; }
token="$(bench_login "$base" consult owner@consult.test consult-demo-owner)"
api="$base/v1/tenants/consult/portfolio"
tenant="$(sql "SELECT id FROM tenants WHERE slug = 'consult'" | tr -d ' ')"
scope="SELECT set_config('app.tenant_id', '$tenant', false), set_config('app.owner_scope', 'any', false);"

# 500 instruments, and a weekday close of each from 2020 to 2024 (a seeded walk).
python3 - "$scratch" <<'PY'
import random, sys, datetime
out = sys.argv[1]
random.seed(29)
with open(f"{out}/instruments.csv", "w") as f:
    f.write("symbol,name,sector,asset_type,currency,market_cap\n")
    for i in range(500):
        f.write(f"S{i:03d},Stock {i},Sector {i % 11},stock,INR,{1000000 + i}\n")
days = [datetime.date(2020, 1, 1) + datetime.timedelta(n) for n in range(1827)]
days = [d for d in days if d.weekday() < 5]
with open(f"{out}/prices.csv", "w") as f:
    f.write("symbol,date,close\n")
    for i in range(500):
        price = 100.0 + i
        for d in days:
            price = max(1.0, price * (1 + random.uniform(-0.02, 0.02)))
            f.write(f"S{i:03d},{d.isoformat()},{price:.2f}\n")
PY
rows=$(($(wc -l <"$scratch/prices.csv") - 1))
"$bin" portfolio market import --tenant consult --entity instruments "$scratch/instruments.csv" >/dev/null
start=$(date +%s.%N)
"$bin" portfolio market import --tenant consult --entity prices "$scratch/prices.csv" >/dev/null
import_seconds=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { print a - b }')
# The baseline: psql's \copy of the same file into a table of the prices' shape (its key,
# checks and instrument reference; row-level security refuses COPY, so not the table itself),
# and, for scale, into a table with no key at all.
copy_into() {
  local start
  start=$(date +%s.%N)
  "$bin" db shell --role owner --command "\\copy $1 (symbol, on_date, close) FROM '$scratch/prices.csv' WITH (FORMAT csv, HEADER)" >/dev/null
  awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { print a - b }'
}
sql "CREATE TABLE bench_raw_prices (LIKE portfolio_prices INCLUDING ALL,
       FOREIGN KEY (tenant_id, symbol) REFERENCES portfolio_instruments (tenant_id, symbol));
     ALTER TABLE bench_raw_prices ALTER tenant_id SET DEFAULT '$tenant';
     CREATE TABLE bench_unkeyed_prices (symbol text, on_date date, close numeric)" >/dev/null
copy_seconds=$(copy_into bench_raw_prices)
unkeyed_seconds=$(copy_into bench_unkeyed_prices)
sql "DROP TABLE bench_raw_prices; DROP TABLE bench_unkeyed_prices" >/dev/null

# One portfolio of 10,000 buys (lots) spread over the 500 instruments and five years,
# written straight into the ledger (the API books each entry against the whole ledger).
portfolio="$(curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"name":"Bench","base_currency":"INR","cost_method":"fifo"}' "$api/portfolios" | sed -E 's/.*"id":"([^"]+)".*/\1/')"
owner="$(sql "$scope SELECT owner_id FROM portfolio_portfolios WHERE id = '$portfolio'" | tail -1 | tr -d ' ')"
sql "$scope INSERT INTO portfolio_transactions (tenant_id, owner_id, portfolio_id, kind, trade_date, symbol, quantity, price, currency)
     SELECT '$tenant', '$owner', '$portfolio', 'buy', DATE '2020-01-02' + (n * 1800 / 10000), 'S' || lpad((n % 500)::text, 3, '0'),
            1 + n % 7, 100 + n % 50, 'INR' FROM generate_series(0, 9999) AS n" >/dev/null

timed() { curl -fsS -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" "$1"; }
sql "SELECT pg_stat_statements_reset()" >/dev/null 2>&1 || true
# The same read again and again (a dashboard): the first books the ledger, the rest take
# the booked ledger kept for them (`portfolio_book_cache`) while the ledger is unchanged.
holdings_ms=$(for _ in $(seq 1 20); do timed "$api/portfolios/$portfolio/holdings?as_of=2024-12-31"; done | median | awk '{ print $1 * 1000 }')
statements=$(sql "SELECT sum(calls)::int8 FROM pg_stat_statements WHERE query ILIKE '%portfolio_%'" 2>/dev/null | tr -d ' ' || echo "?")
# A different date each time: every read books the ledger.
day() { printf '2024-11-%02d' "$1"; }
booked_ms=$(for n in $(seq 1 20); do timed "$api/portfolios/$portfolio/holdings?as_of=$(day "$n")"; done | median | awk '{ print $1 * 1000 }')
# The same ledger in a second portfolio booked by moving average: that ledger is booked
# row by row in Swift (every entry read, decoded and walked), the FIFO one set-based in
# SQL. A back-dated buy books either again.
copy="$(curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"name":"Bench, moving average","base_currency":"INR","cost_method":"average"}' "$api/portfolios" | sed -E 's/.*"id":"([^"]+)".*/\1/')"
sql "$scope INSERT INTO portfolio_transactions (tenant_id, owner_id, portfolio_id, kind, trade_date, symbol, quantity, price, currency)
     SELECT tenant_id, owner_id, '$copy', kind, trade_date, symbol, quantity, price, currency FROM portfolio_transactions
     WHERE portfolio_id = '$portfolio' ORDER BY entry_seq" >/dev/null
# Each read on a date not read before, so both book (none takes a cached book).
rowwise_ms=$(for n in $(seq 21 30); do timed "$api/portfolios/$copy/holdings?as_of=$(day "$n")"; done | median | awk '{ print $1 * 1000 }')
setwise_ms=$(for n in $(seq 21 30); do timed "$api/portfolios/$portfolio/holdings?as_of=$(day "$n")"; done | median | awk '{ print $1 * 1000 }')
# 15 back-dated buys each (the median: the first calls on each pooled connection also
# prepare their statements there), over one kept connection as an API client sends them
# (the target's figure: what booking costs), and over a new connection each (what curl
# run once per request adds: about a millisecond of connecting, the same on both sides).
buy_body() { echo "{\"type\":\"buy\",\"symbol\":\"S00$(($1 % 10))\",\"quantity\":\"1\",\"price\":\"100\",\"currency\":\"INR\",\"trade_date\":\"2021-06-0$(($1 % 9 + 1))\"}"; }
rebook() {
  local args=()
  for n in $(seq 1 15); do
    [ "$n" -eq 1 ] || args+=(--next)
    args+=(-fsS -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$(buy_body "$n")"
      "$api/portfolios/$1/transactions")
  done
  curl "${args[@]}" | median | awk '{ print $1 * 1000 }'
}
rebook_connecting() {
  for n in $(seq 16 30); do
    curl -fsS -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$(buy_body "$n")" \
      "$api/portfolios/$1/transactions"
  done | median | awk '{ print $1 * 1000 }'
}
rebook_rowwise_ms=$(rebook "$copy")
rebook_setwise_ms=$(rebook "$portfolio")
rebook_rowwise_new_ms=$(rebook_connecting "$copy")
rebook_setwise_new_ms=$(rebook_connecting "$portfolio")

ledger_ms=$(for _ in 1 2 3; do timed "$api/portfolios/$portfolio/performance?from=2020-01-01&to=2024-12-31"; done | median | awk '{ print $1 * 1000 }')

# /healthz alone, then beside a stream of ledger replays (a recompute): measured before
# the nightly valuations exist, which would answer the same period from snapshots. Then
# the floor any CPU work sets on this box: /healthz beside one busy loop in Linux's idle
# scheduling class (it runs only on CPU nothing else wants); on the 2-vCPU machines this
# was built on it alone doubles to quadruples the p99, so it is printed beside the
# replays' figure. Five rounds of the three, 5 s each, and the median of each (one 5 s
# window ranged from 1.3x to 5x of idle on this shared machine).
healthz_p99() { wrk -t1 -c4 -d5s --latency "$base/healthz" | awk '$1 == "99%" { print $2 }'; }
idle_rounds=() busy_rounds=() spin_rounds=()
for _ in 1 2 3 4 5; do
  idle_rounds+=("$(to_ms "$(healthz_p99)")")
  ( for _ in $(seq 1 20); do timed "$api/portfolios/$portfolio/performance?from=2020-01-01&to=2024-12-27" >/dev/null; done ) &
  replays=$!
  busy_rounds+=("$(to_ms "$(healthz_p99)")")
  kill "$replays" 2>/dev/null || true
  wait "$replays" 2>/dev/null || true
  sleep 1  # the replay in flight finishes on the server
  chrt --idle 0 timeout 7 sh -c 'while :; do :; done' &
  spin=$!
  spin_rounds+=("$(to_ms "$(healthz_p99)")")
  wait "$spin" 2>/dev/null || true
done
idle=$(printf '%s\n' "${idle_rounds[@]}" | median)
busy=$(printf '%s\n' "${busy_rounds[@]}" | median)
spinning=$(printf '%s\n' "${spin_rounds[@]}" | median)

# The nightly valuations, queued as the schedule queues them, then read back.
sql "SELECT set_config('app.scope', 'platform', false); INSERT INTO jobs (tenant_id, kind, module_id, payload) VALUES ('$tenant', 'portfolio.valuations.snapshot', 'portfolio', '{\"through\": \"2024-12-31\"}')" >/dev/null
for _ in $(seq 1 600); do
  [ "$(sql "SELECT set_config('app.scope', 'platform', false); SELECT count(*) FROM jobs WHERE kind = 'portfolio.valuations.snapshot' AND state IN ('pending', 'running')" | tail -1 | tr -d ' ')" = 0 ] && break
  sleep 0.5
done
source_of=$(curl -fsS -H "Authorization: Bearer $token" "$api/portfolios/$portfolio/performance?from=2020-01-01&to=2024-12-31" | grep -o '"source":"[a-z]*"')
snapshot_ms=$(for _ in $(seq 1 10); do timed "$api/portfolios/$portfolio/performance?from=2020-01-01&to=2024-12-31"; done | median | awk '{ print $1 * 1000 }')
analysis_ms=$(for _ in 1 2 3; do
  curl -fsS -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"portfolio_id\":\"$portfolio\",\"as_of\":\"2024-12-31\"}" "$api/analyses"
done | median | awk '{ print $1 * 1000 }')
# What its metering adds: the analysis's write with and without its two usage records.
metering_line=$("$bin" bench analysis-metering --tenant consult --portfolio "$portfolio" --analysis-ms "$analysis_ms" --log-level error)

echo "portfolio (issue 29): 10,000 lots, 500 instruments, $rows daily closes"
awk -v r="$rows" -v i="$import_seconds" -v c="$copy_seconds" -v u="$unkeyed_seconds" \
  'BEGIN { printf "  price import        %8.0f rows/s   raw COPY into the same shape %8.0f rows/s   ratio %.2f (target >= 0.5); COPY into a table with no key %.0f rows/s\n", r / i, r / c, c / i, r / u }'
printf '  holdings as of      p50 %7.1f ms (target <= 50 ms), the same read repeated (booked once, then kept); portfolio statements over those 20 reads: %s\n' "$holdings_ms" "$statements"
printf '  holdings as of      p50 %7.1f ms, a new date each read (the ledger booked each time)\n' "$booked_ms"
awk -v r="$rowwise_ms" -v s="$setwise_ms" -v rr="$rebook_rowwise_ms" -v rs="$rebook_setwise_ms" \
  -v nr="$rebook_rowwise_new_ms" -v ns="$rebook_setwise_new_ms" 'BEGIN {
  printf "  booking 10,000 lots set-based (SQL, FIFO) vs row by row (Swift, average): holdings p50 %.1f vs %.1f ms (%.1fx); back-dated buy p50 %.1f vs %.1f ms (%.1fx; target >= 20) on a kept connection, %.1f vs %.1f ms (%.1fx) on a new one each\n", s, r, r / s, rs, rr, rr / rs, ns, nr, nr / ns }'
printf '  5-year TWR+XIRR     ledger %7.1f ms (target <= 1000)   snapshots %7.1f ms (target <= 50; %s)\n' "$ledger_ms" "$snapshot_ms" "$source_of"
printf '  analysis (metered)  p50 %7.1f ms; %s\n' "$analysis_ms" "$metering_line"
awk -v i="$idle" -v b="$busy" -v s="$spinning" -v rounds="idle ${idle_rounds[*]}, replays ${busy_rounds[*]}, spin ${spin_rounds[*]}" \
  'BEGIN { printf "  /healthz p99        idle %.2f ms   beside replays %.2f ms   ratio %.2f (target <= 2); beside an idle-class spin loop %.2f ms (ratio %.2f: the floor); medians of five rounds (%s ms)\n", i, b, b / i, s, s / i, rounds }'

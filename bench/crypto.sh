#!/usr/bin/env bash
# Crypto (issue 30) on a release build, against the exchange simulator (its own process,
# as in the tests):
#   - sync: 100,000 trades over 10 markets read from scratch by the module's sync (a
#     set-based insert and the cursor per page of 1,000), against fetching and parsing
#     the same pages without writing (target: at least 0.5 of it) and against writing
#     them one INSERT per trade; the process's resident memory during the sync; and
#     PostgreSQL's counters for it (pg_stat_statements, pg_stat_database);
#   - snapshot: 100 tenants of 10 connections with 20 assets each (1,000 connections),
#     every user's snapshot taken (target: under 5 s on 2 cores);
#   - rotation: a tenant's data key rotated over 10,000 connections (rows/s), and one
#     connection's sync p99 during it against without (target: at most 2x).
#
#   bench/crypto.sh          # also run by make bench
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bin="$(bench_binary)"

venv=.build/test-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check aiohttp==3.12.15

scratch="$(mktemp -d /tmp/atrium-crypto-bench.XXXXXX)"
chmod 755 "$scratch"
export ATRIUM_DATA_DIR="$scratch/.atrium"
port="${BENCH_PORT:-18096}"
sim_port="${BENCH_SIM_PORT:-18097}"
base="http://127.0.0.1:$port"
sim="http://127.0.0.1:$sim_port"
"$venv/bin/python" Tests/ExchangeSimulator/exchange_sim.py --port "$sim_port" >/dev/null 2>&1 &
simulator=$!
server=""
cleanup() {
  [ -z "$server" ] || { kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
  kill "$simulator" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -fsS "$sim/api/v3/time" >/dev/null 2>&1 && break; sleep 0.1; done

# The exchange: no weight limit of its own here (the module's budget still applies), 20
# assets priced in USDT, and two accounts with the same 100,000 trades over 10 markets.
curl -fsS -X PUT "$sim/_sim/weight" -d '{"limit": 100000000}' >/dev/null
"$venv/bin/python" - "$sim" <<'PY'
import json, sys, urllib.request
sim = sys.argv[1]
def call(method, path, body):
    request = urllib.request.Request(sim + path, data=json.dumps(body).encode(), method=method)
    urllib.request.urlopen(request).read()
more = ["ADA", "DOGE", "DOT", "AVAX", "MATIC", "LTC", "TRX", "ATOM", "UNI", "XLM", "ETC", "FIL", "APT"]
call("POST", "/_sim/markets", {f"{a}USDT": {"base": a, "quote": "USDT", "price": str(1 + i)} for i, a in enumerate(more)})
symbols = ["BTCUSDT", "ETHUSDT", "ETHBTC", "BNBUSDT", "BNBBTC", "SOLUSDT", "XRPUSDT", "LINKBTC", "ADAUSDT", "DOGEUSDT"]
for key in ("A" * 64, "B" * 64):
    call("POST", "/_sim/accounts", {"api_key": key, "api_secret": "s" * 64,
                                     "balances": {"BTC": "500", "ETH": "5000", "USDT": "100000000", "BNB": "1000", "SOL": "1000",
                                                  "XRP": "100000", "LINK": "10000", "ADA": "100000", "DOGE": "1000000"}})
    call("POST", f"/_sim/accounts/{key}/trades", {"symbols": symbols, "count": 100000, "seed": 30})
PY

# One tenant for the sync and rotation, 100 for the snapshots; the module without limits.
mkdir -p "$scratch/tenants"
cat >"$scratch/tenants/plans.yaml" <<'YAML'
plans:
  coins: { modules: [crypto] }
YAML
for slug in coin $(seq -f 'snap%03g' 0 99); do
  cat >"$scratch/tenants/$slug.yaml" <<YAML
slug: $slug
name: $slug
plan: coins
modules: [crypto]
users:
  - email: owner@$slug.test
    password: crypto-bench-owner
    roles: [owner]
YAML
done
export ATRIUM_CRYPTO_BINANCE_URL="$sim" ATRIUM_CRYPTO_OUTBOUND_ALLOW=loopback ATRIUM_CRYPTO_BINANCE_WEIGHT_PER_MINUTE=6000
# No workers: the first syncs the connections queue are the bench's to run.
"$bin" serve --port "$port" --tenants-dir "$scratch/tenants" --no-worker --log-level error >/dev/null &
server=$!
bench_wait_ready "$base" "$server"
sql() { "$bin" db shell --role owner --command "$1" | sed -n '3,$p' | sed '/^(/d;/^$/d'; }
token="$(bench_login "$base" coin owner@coin.test crypto-bench-owner)"
connect() {
  curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"exchange\":\"binance\",\"label\":\"$1\",\"api_key\":\"$2\",\"api_secret\":\"$(printf 's%.0s' $(seq 64))\"}" \
    "$base/v1/tenants/coin/crypto/connections" | sed -E 's/.*"id":"([^"]+)".*/\1/'
}
c1="$(connect set-based "$(printf 'A%.0s' $(seq 64))")"
c2="$(connect row-by-row "$(printf 'B%.0s' $(seq 64))")"
field() { sed -E "s/.*\"$1\":([0-9.]+).*/\1/" <<<"$2"; }

echo "crypto sync (100,000 trades, 10 markets, pages of 1,000)"
fetch="$("$bin" crypto bench sync --tenant coin --connection "$c1" --mode fetch)"
sql "SELECT pg_stat_statements_reset()" >/dev/null 2>&1 || true
commits_before="$(sql "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()" | tr -d ' ')"
synced="$("$bin" crypto bench sync --tenant coin --connection "$c1" --mode sync)"
sleep 1
commits_after="$(sql "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()" | tr -d ' ')"
statements="$(sql "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query ILIKE '%crypto_%'" 2>/dev/null | tr -d ' \n' || echo '?')"
inserts="$(sql "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query ILIKE '%INSERT INTO crypto_trades%'" 2>/dev/null | tr -d ' \n' || echo '?')"
rows="$("$bin" crypto bench sync --tenant coin --connection "$c2" --mode rows)"
printf '  fetch and parse only      %8s trades/s\n' "$(field trades_per_second "$fetch")"
printf '  sync (set-based)          %8s trades/s   %.2fx of fetching alone (target >= 0.5)\n' \
  "$(field trades_per_second "$synced")" "$(awk -v a="$(field trades_per_second "$synced")" -v b="$(field trades_per_second "$fetch")" 'BEGIN { print a / b }')"
printf '  one INSERT per trade      %8s trades/s   set-based is %.1fx faster\n' \
  "$(field trades_per_second "$rows")" "$(awk -v a="$(field trades_per_second "$synced")" -v b="$(field trades_per_second "$rows")" 'BEGIN { print a / b }')"
printf '  sync resident memory      %s MB at start, %s MB at most (flat: pages of 1,000 whatever the total)\n' \
  "$(field rss_start_mb "$synced")" "$(field rss_max_mb "$synced")"
printf '  PostgreSQL for the sync   %s commits, %s statements on crypto tables, %s of them trade inserts (one per page)\n' \
  "$((commits_after - commits_before))" "$statements" "$inserts"

echo
echo "crypto snapshot (100 tenants x 10 connections x 20 assets)"
assets="ARRAY['BTC','ETH','USDT','BNB','SOL','XRP','LINK','ADA','DOGE','DOT','AVAX','MATIC','LTC','TRX','ATOM','UNI','XLM','ETC','FIL','APT']"
fill=""
for slug in $(seq -f 'snap%03g' 0 99); do
  fill+="SELECT set_config('app.tenant_id', (SELECT id::text FROM tenants WHERE slug = '$slug'), false), set_config('app.owner_scope', 'any', false);
INSERT INTO crypto_data_keys (tenant_id, version, kek_id, wrapped) VALUES (current_setting('app.tenant_id')::uuid, 1, '0000000000000000', '\\x00');
INSERT INTO crypto_connections (tenant_id, id, owner_id, exchange, label, api_key_sealed, api_secret_sealed, key_version, key_fingerprint, key_last4, next_sync_at)
  SELECT current_setting('app.tenant_id')::uuid, gen_random_uuid(), (SELECT id FROM users LIMIT 1), 'binance', 'bench ' || n, '\\x00', '\\x00', 1,
    encode(sha256(('$slug' || n)::bytea), 'hex'), '0000', now() + interval '1 year' FROM generate_series(1, 10) AS n;
INSERT INTO crypto_balances (tenant_id, connection_id, owner_id, asset, free, locked)
  SELECT c.tenant_id, c.id, c.owner_id, a, round((random() * 100)::numeric, 8), 0 FROM crypto_connections c, unnest($assets) AS a;
"
done
sql "$fill" >/dev/null
snapshot="$("$bin" crypto bench snapshot --tenant snap000 --prefix snap --parallel 4)"
printf '  %s snapshots of 1,000 connections in %s s (target < 5 s)\n' "$(field snapshots "$snapshot")" "$(field seconds "$snapshot")"

echo
echo "crypto data-key rotation (10,000 connections)"
rotation="$("$bin" crypto bench rotation --tenant coin --connection "$c1" --connections 10000)"
printf '  %s connections re-sealed in %s s: %s rows/s\n' "$(field connections "$rotation")" "$(field rotation_seconds "$rotation")" "$(field rows_per_second "$rotation")"
printf '  sync p99 %s ms without (%s syncs), %s ms during (the %s syncs that started while it ran): %sx (target <= 2)\n' \
  "$(field sync_p99_ms "$rotation")" "$(field syncs "$rotation")" "$(field sync_p99_during_ms "$rotation")" "$(field syncs_during "$rotation")" \
  "$(field ratio "$rotation")"

#!/usr/bin/env bash
# The request path over TLS (issue 28): the same owner-scoped list and create as
# bench/request-path.sh, served by three servers on one database, one at a time: over the
# embedded cluster's Unix socket (the baseline), over TCP without TLS, and over TCP with
# TLS as production reaches an external PostgreSQL (DATABASE_URL with
# sslmode=verify-full&sslrootcert=…, the README's two roles). Each route's ratio to the
# socket server is taken within its own round; the table shows the median round.
#
#   bench/tls-path.sh      # part of make bench; BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_ROUNDS
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

command -v wrk >/dev/null || { echo "bench/tls-path.sh needs wrk (make bench installs it)" >&2; exit 1; }
seconds="${BENCH_SECONDS:-10}"
connections="${BENCH_CONNECTIONS:-32}"
rounds="${BENCH_ROUNDS:-3}"
bin="$(bench_binary)"

scratch="$(mktemp -d /tmp/atrium-bench-tls.XXXXXX)"
chmod 755 "$scratch"
data="$scratch/.atrium"
export ATRIUM_DATA_DIR="$data"
bench_tenants "$scratch/tenants"
servers=()
cleanup() {
  # Last started first: the first server runs the embedded cluster, which the others
  # still need to flush their API-call counts as they stop.
  for ((i = ${#servers[@]} - 1; i >= 0; i--)); do
    kill -TERM "${servers[$i]}" 2>/dev/null || true
    wait "${servers[$i]}" 2>/dev/null || true
  done
  rm -rf "$scratch"
}
trap cleanup EXIT

socket_port="${BENCH_PORT:-18091}"; tcp_port=$((socket_port + 1)); tls_port=$((socket_port + 2))
"$bin" serve --port "$socket_port" --tenants-dir "$scratch/tenants" --log-level error >/dev/null &
servers+=($!)
bench_wait_ready "http://127.0.0.1:$socket_port" "${servers[-1]}"
root="$(scripts/cluster-tls.sh "$data")"
db_port="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$data/database.json")"
secret() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$data/database.json" "$1"; }
app_password="$(secret app_password)"; owner_password="$(secret owner_password)"
# An external server's setup: the two roles' URLs and the master key (the embedded one's).
external() { # port, query: runs a server on the same database as those URLs give it
  DATABASE_URL="postgres://atrium_app:$app_password@localhost:$db_port/atrium?$2" \
  DATABASE_OWNER_URL="postgres://atrium_owner:$owner_password@localhost:$db_port/atrium?$2" \
  ATRIUM_MASTER_KEY="$(cat "$data/master.key")" \
    "$bin" serve --port "$1" --tenants-dir "$scratch/tenants" --log-level error >/dev/null &
  servers+=($!)
  bench_wait_ready "http://127.0.0.1:$1" "${servers[-1]}"
}
external "$tcp_port" "sslmode=disable"
external "$tls_port" "sslmode=verify-full&sslrootcert=$root"
# Each server's request connections really are what they say (pg_stat_ssl, by client port kind).
ssl_backends="$("$bin" db shell --role owner --command \
  "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl AND a.usename = 'atrium_app'" | sed -n 3p | tr -d ' ')"
[ "${ssl_backends:-0}" -gt 0 ] || { echo "no application backend uses TLS" >&2; exit 1; }

base="http://127.0.0.1:$socket_port"
rep="$(bench_login "$base" acme rep@acme.test acme-demo-member)"
bench_owned_contacts "$base" "$rep"
rps_of() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a/b }'; }
load() { # port, route (list|create), round: wrk's output, failing on any non-2xx answer
  local output
  if [ "$2" = list ]; then
    output="$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "Authorization: Bearer $rep" \
      "http://127.0.0.1:$1/v1/tenants/acme/sales/contacts?limit=20" 2>&1)"
  else
    output="$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -s bench/contact-create.lua -H "Authorization: Bearer $rep" \
      -H 'Content-Type: application/json' "http://127.0.0.1:$1/v1/tenants/acme/sales/contacts" -- "tls$$-$1-$3" 2>&1)"
  fi
  if grep -q 'Non-2xx' <<<"$output"; then echo "port $1 $2: some responses were not 2xx:" >&2; echo "$output" >&2; exit 1; fi
  echo "$output"
}

echo "request path over TLS: $connections connections, $rounds rounds of ${seconds}s per server and route, release build"
declare -A rps ratios
for round in $(seq 1 "$rounds"); do
  for route in list create; do
    for port in "$socket_port" "$tcp_port" "$tls_port"; do
      output="$(load "$port" "$route" "$round")"
      rps[$route,$port,$round]="$(rps_of "$output")"
      [ -n "${rps[$route,$port,$round]}" ] || { echo "no req/s from wrk for $route on port $port:" >&2; echo "$output" >&2; exit 1; }
    done
    for port in "$tcp_port" "$tls_port"; do
      ratios[$route,$port]+="$(ratio "${rps[$route,$port,$round]}" "${rps[$route,$socket_port,$round]}") "
    done
  done
done
printf '%-34s %-8s %-40s %s\n' server route 'req/s by round' 'vs socket (median; each round)'
for route in list create; do
  for port in "$socket_port" "$tcp_port" "$tls_port"; do
    case "$port" in
      "$socket_port") name="embedded cluster, Unix socket" ;;
      "$tcp_port") name="TCP, sslmode=disable" ;;
      *) name="TCP+TLS, sslmode=verify-full" ;;
    esac
    each=""; for round in $(seq 1 "$rounds"); do each+="${rps[$route,$port,$round]} "; done
    if [ "$port" = "$socket_port" ]; then
      printf '%-34s %-8s %-40s %s\n' "$name" "$route" "$each" 1.000
    else
      # shellcheck disable=SC2086
      printf '%-34s %-8s %-40s %s (%s)\n' "$name" "$route" "$each" "$(median ${ratios[$route,$port]})" "${ratios[$route,$port]% }"
    fi
  done
done

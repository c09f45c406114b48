#!/usr/bin/env bash
# What running imports behind the request path buys: the list's p99 while another tenant
# imports 300,000 contacts, as a multiple of its quiet p99, with the import's thread and
# PostgreSQL backends at nice 0, 10 (what atrium does) and 19. One build: while the
# import runs, every task of the server and of the embedded cluster at nice 10 (only the
# import's) is reniced to the value under test. A fresh server per measurement, the nice
# values interleaved round by round (the machine is shared and noisy). Nice 0 needs root
# (lowering a nice value needs CAP_SYS_NICE); without it that column is skipped.
#
#   bench/import-priority.sh          # 3 rounds; BENCH_ROUNDS, BENCH_SECONDS
#   ATRIUM_BENCH_BINARY=/path/to/atrium bench/import-priority.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

rounds="${BENCH_ROUNDS:-3}"
seconds="${BENCH_SECONDS:-10}"
bin="$(bench_binary)"
nices="0 10 19"
[ "$(id -u)" = 0 ] || { nices="10 19"; echo "not root: nice 0 cannot be restored, measuring 10 and 19 only"; }

scratch="$(mktemp -d /tmp/atrium-bench-priority.XXXXXX)"
chmod 755 "$scratch"
server=""
renicer=""
stop_server() {
  [ -z "$renicer" ] || { kill "$renicer" 2>/dev/null || true; wait "$renicer" 2>/dev/null || true; renicer=""; }
  [ -z "$server" ] || { kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; server=""; }
}
trap 'stop_server; rm -rf "$scratch"' EXIT

python3 - "$scratch/import.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("email,first_name,last_name\n")
    for i in range(300_000):
        f.write(f"person{i}@example.com,First{i},Last{i}\n")
PY

p99_of() { to_ms "$(awk '$1 == "99%" {print $2}' <<<"$1")"; }
rps_of() { awk '/Requests\/sec/ {printf "%d", $2}' <<<"$1"; }

# Renices the import's tasks (the server's threads and the cluster's processes now at
# nice 10) to $1 until killed: the import takes new backends as it goes.
renice_import() {
  local postmaster
  postmaster="$(head -n 1 "$ATRIUM_DATA_DIR/postgres/postmaster.pid")"
  while :; do
    for task in /proc/"$server"/task/* $(ps -o pid= --ppid "$postmaster" | sed 's|^ *|/proc/|'); do
      # The nice value is the 19th field of stat, the 17th after "pid (command) ".
      [ "$(awk '{ sub(/.*\) /, ""); print $17 }' "$task/stat" 2>/dev/null)" = 10 ] || continue
      renice -n "$1" -p "${task##*/}" >/dev/null 2>&1 || true
    done
    sleep 0.1
  done
}

measure() { # nice value; prints one row
  local nice="$1" port base rep glow list quiet busy id started took
  rm -rf "$scratch/.atrium" "$scratch/tenants"
  export ATRIUM_DATA_DIR="$scratch/.atrium"
  bench_tenants "$scratch/tenants"
  port="${BENCH_PORT:-18095}"
  base="http://127.0.0.1:$port"
  "$bin" serve --port "$port" --tenants-dir "$scratch/tenants" --log-level error >/dev/null 2>&1 &
  server=$!
  bench_wait_ready "$base" "$server"
  rep="$(bench_login "$base" acme rep@acme.test acme-demo-member)"
  bench_owned_contacts "$base" "$rep"
  glow="$(bench_login "$base" glow owner@glow.test glow-demo-owner)"
  list="$base/v1/tenants/acme/sales/contacts?limit=20"
  quiet="$(wrk -t2 -c32 -d"${seconds}s" --latency -H "Authorization: Bearer $rep" "$list" 2>&1)"
  if [ "$nice" != 10 ]; then renice_import "$nice" & renicer=$!; fi
  started="$(date +%s%3N)"
  id="$(curl -fsS -X POST -H "Authorization: Bearer $glow" -H 'Content-Type: text/csv' --data-binary "@$scratch/import.csv" \
    "$base/v1/tenants/glow/sales/imports?entity=contacts" | sed -E 's/.*"id":"([^"]+)".*/\1/')"
  busy="$(wrk -t2 -c32 -d"${seconds}s" --latency -H "Authorization: Bearer $rep" "$list" 2>&1)"
  local state=""
  until [ "$state" = succeeded ]; do
    sleep 0.2
    state="$(curl -fsS -H "Authorization: Bearer $glow" "$base/v1/tenants/glow/sales/imports/$id" | sed -E 's/.*"state":"([a-z_]+)".*/\1/')"
    [ "$state" != failed ] || { echo "the import failed" >&2; exit 1; }
  done
  took=$(( $(date +%s%3N) - started ))
  stop_server
  printf '%4s %12s %12s %8s %10s %10s %10s\n' "$nice" "$(p99_of "$quiet")" "$(p99_of "$busy")" \
    "$(awk -v a="$(p99_of "$busy")" -v b="$(p99_of "$quiet")" 'BEGIN { printf "%.2fx", a/b }')" \
    "$(rps_of "$quiet")" "$(rps_of "$busy")" "$(awk -v t="$took" 'BEGIN { printf "%.1f", t/1000 }')"
}

echo "GET sales/contacts p99 beside glow's 300,000-row import, by the import's nice value ($rounds rounds, ${seconds}s each)"
printf '%4s %12s %12s %8s %10s %10s %10s\n' nice 'quiet p99 ms' 'busy p99 ms' ratio 'quiet r/s' 'busy r/s' 'import s'
for _ in $(seq 1 "$rounds"); do
  for nice in $nices; do measure "$nice"; done
done

#!/usr/bin/env bash
# Bulk import throughput: generated contact files through the Sales import route (COPY
# staging and one set-based upsert, run by the server's job worker), against a plain
# COPY of the same file into a bare table (the physical limit) and into a table shaped
# like sales_contacts with its indexes, and a per-row SELECT + INSERT loop. Only the
# ratios compare across runs (the machine is shared and noisy).
#
#   bench/import.sh                           # the release build of this checkout
#   ATRIUM_BENCH_BINARY=/path/to/atrium bench/import.sh   # another build, for before/after
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

bin="$(bench_binary)"
scratch="$(mktemp -d /tmp/atrium-bench-import.XXXXXX)"
chmod 755 "$scratch"
export ATRIUM_DATA_DIR="$scratch/.atrium"
port="${BENCH_IMPORT_PORT:-18090}"
mkdir -p "$scratch/tenants"
for file in tenants/*.yaml; do
  [ "$(basename "$file")" = plans.yaml ] || cp "$file" "$scratch/tenants/"
done
bench_unlimited_plans "$scratch/tenants"
"$bin" serve --port "$port" --tenants-dir "$scratch/tenants" --log-level error >/dev/null &
server=$!
cleanup() {
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  "$bin" db stop >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap cleanup EXIT
bench_wait_ready "http://127.0.0.1:$port" "$server"

# The same generated files through the import route (COPY staging and one
# set-based upsert, run by the server's job worker), through a plain COPY of the file
# into a bare table (the physical limit), and through a per-row SELECT + INSERT loop
# (the importer the sales roadmap replaced). Peak RSS of the server is read from /proc.
python3 - "$scratch" <<'PY'
import sys
for count in (100_000, 1_000_000):
    with open(f"{sys.argv[1]}/contacts-{count}.csv", "w") as f:
        f.write("email,first_name,last_name,phone,tags\n")
        for i in range(count):
            f.write(f"person{i}@example.com,First{i},Last{i},+1555{i:07d},lead;bench\n")
PY
rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$server/status"; }
rss_before="$(rss_kb)"
import_file() {
  local file="$1" started finished id state
  started="$(date +%s.%N)"
  id="$(curl -fsS -X POST -H "Authorization: Bearer $token" -H 'Content-Type: text/csv' --data-binary "@$file" \
    "http://127.0.0.1:$port/v1/tenants/acme/sales/imports?entity=contacts" | sed -E 's/.*"id":"([^"]+)".*/\1/')"
  state=queued
  while [ "$state" = queued ] || [ "$state" = running ] || [ "$state" = uploading ]; do
    sleep 0.2
    state="$(curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/tenants/acme/sales/imports/$id" | sed -E 's/.*"state":"([^"]+)".*/\1/')"
  done
  finished="$(date +%s.%N)"
  [ "$state" = succeeded ] || { echo "import of $file ended $state" >&2; exit 1; }
  awk -v a="$started" -v b="$finished" 'BEGIN { printf "%.3f", b - a }'
}
# A fresh login: the earlier token may be near its expiry after the runs above.
token="$(curl -fsS -H 'Content-Type: application/json' -d '{"email":"owner@acme.test","password":"acme-demo-owner"}' \
  "http://127.0.0.1:$port/v1/tenants/acme/auth/login" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')"
tenant_id="$("$bin" tenants list --json | python3 -c 'import json,sys; print([t["id"] for t in json.load(sys.stdin) if t["slug"]=="acme"][0])')"
owner_id="$("$bin" users list --tenant acme --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')"
# COPY of the file into a bare table (no indexes: the physical limit) or, with "indexed",
# into a table shaped like sales_contacts with its indexes and constraints (what landing
# into the real table cannot beat).
copy_seconds() {
  if [ "${2:-}" = indexed ]; then
    "$bin" db shell --role owner --command "CREATE TABLE bench_copy (LIKE sales_contacts INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES); ALTER TABLE bench_copy ADD COLUMN tags_raw text, ALTER COLUMN tenant_id SET DEFAULT '$tenant_id', ALTER COLUMN owner_id SET DEFAULT '$owner_id'" >/dev/null
    columns="(email, first_name, last_name, phone, tags_raw)"
  else
    "$bin" db shell --role owner --command "CREATE TABLE bench_copy (email text, first_name text, last_name text, phone text, tags text)" >/dev/null
    columns=""
  fi
  local started finished
  started="$(date +%s.%N)"
  "$bin" db shell --role owner --command "\\copy bench_copy $columns FROM '$1' WITH (FORMAT csv, HEADER true)" >/dev/null
  finished="$(date +%s.%N)"
  "$bin" db shell --role owner --command "DROP TABLE bench_copy" >/dev/null
  awk -v a="$started" -v b="$finished" 'BEGIN { printf "%.3f", b - a }'
}
loop_rps="$("$bin" sales bench-row-inserts --tenant acme --rows 5000 "$scratch/contacts-100000.csv" --log-level error)"
printf '%-22s %11s %11s %12s %13s %15s %12s\n' file 'import r/s' 'COPY r/s' 'import/COPY' 'COPY idx r/s' 'import/COPY idx' 'vs row loop'
for count in 100000 1000000; do
  file="$scratch/contacts-$count.csv"
  import_s="$(import_file "$file")"
  copy_s="$(copy_seconds "$file")"
  indexed_s="$(copy_seconds "$file" indexed)"
  import_rps="$(awk -v n="$count" -v s="$import_s" 'BEGIN { printf "%.0f", n / s }')"
  copy_rps="$(awk -v n="$count" -v s="$copy_s" 'BEGIN { printf "%.0f", n / s }')"
  indexed_rps="$(awk -v n="$count" -v s="$indexed_s" 'BEGIN { printf "%.0f", n / s }')"
  printf '%-22s %11s %11s %12s %13s %15s %12s\n' "contacts-$count.csv" "$import_rps" "$copy_rps" \
    "$(awk -v a="$import_rps" -v b="$copy_rps" 'BEGIN { printf "%.2f", a/b }')" "$indexed_rps" \
    "$(awk -v a="$import_rps" -v b="$indexed_rps" 'BEGIN { printf "%.2f", a/b }')" "$(awk -v a="$import_rps" -v b="$loop_rps" 'BEGIN { printf "%.0fx", a/b }')"
done
printf 'per-row SELECT + INSERT loop: %s rows/s\n' "$loop_rps"
printf 'server peak RSS: %s MiB before the imports, %s MiB after the 1,000,000-row import\n' \
  "$(awk -v k="$rss_before" 'BEGIN { printf "%.0f", k/1024 }')" "$(awk -v k="$(rss_kb)" 'BEGIN { printf "%.0f", k/1024 }')"

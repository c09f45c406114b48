# Shared by the bench scripts (source it): a server's demo tenants, logins and the
# sales rep's owned contacts, and wrk's latency figures in milliseconds.

# Copies the demo tenants into $1 with a plan catalog of their plans without rate limits
# or quotas (a folder with no catalog gets the shipped one, whose limits would cap the
# load), with the sales module enabled for glow too.
bench_tenants() {
  mkdir -p "$1"
  for file in tenants/*.yaml; do
    [ "$(basename "$file")" = plans.yaml ] || cp "$file" "$1/"
  done
  sed -i 's/^modules: \[\]/modules: [sales]/' "$1/glow.yaml"
  bench_unlimited_plans "$1"
}

# Writes $1/plans.yaml: the demo tenants' plans (every plan a file in tenants/ names),
# with the sales module and no limits.
bench_unlimited_plans() {
  cat >"$1/plans.yaml" <<'YAML'
plans:
  free: { modules: [sales] }
  pro: { modules: [sales] }
  consultant: { modules: [sales, portfolio] }
YAML
}

# Waits until the server at $1 is ready (30 s at most).
bench_wait_ready() {
  # BASE [PID]: with the server's PID, a server that exited (its port taken by another
  # process, say) fails here instead of the bench measuring whatever answers on the port.
  for _ in $(seq 1 300); do
    if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
      echo "the server meant for $1 exited before it was ready" >&2
      return 1
    fi
    curl -fsS "$1/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "$1/readyz" >/dev/null
  if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
    echo "the server meant for $1 exited; another process answers there" >&2
    return 1
  fi
}

# An access token: bench_login BASE TENANT EMAIL PASSWORD.
bench_login() {
  curl -fsS -H 'Content-Type: application/json' -d "{\"email\":\"$3\",\"password\":\"$4\"}" "$1/v1/tenants/$2/auth/login" |
    sed -E 's/.*"access_token":"([^"]+)".*/\1/'
}

# Fifty contacts owned by the sales rep whose token is $2, in acme on the server at $1.
bench_owned_contacts() {
  for i in $(seq 1 50); do
    curl -fsS -o /dev/null -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
      -d "{\"first_name\":\"Owned $i\",\"email\":\"owned-$i@example.com\"}" "$1/v1/tenants/acme/sales/contacts"
  done
}

# wrk's "1.23ms", "456.00us" or "1.02s" in milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us/, "", v); print v/1000 } else if (v ~ /ms$/) { sub(/ms/, "", v); print v } else { sub(/s/, "", v); print v*1000 } }'; }

# The atrium binary to measure: $ATRIUM_BENCH_BINARY (another build, for before/after)
# or this checkout's release build, built now.
bench_binary() {
  if [ -n "${ATRIUM_BENCH_BINARY:-}" ]; then
    echo "$ATRIUM_BENCH_BINARY"
  else
    swift build -c release --product atrium >&2
    echo "$(swift build -c release --show-bin-path)/atrium"
  fi
}

# The median of numbers given as arguments, or on stdin one per line or space-separated.
median() {
  if [ "$#" -gt 0 ]; then printf '%s\n' "$@"; else tr ' ' '\n'; fi | sort -g | awk 'NF { v[++n] = $1 } END { print v[int((n + 1) / 2)] }'
}

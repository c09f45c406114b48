#!/usr/bin/env bash
# Watches a running `swift test` through its log. When nothing has been written to the log
# for STALL seconds, it reports what the run was doing (threads of the test process, the
# database's sessions, the tests that started and never finished, last) and ends the run.
# A hang then names itself in the last lines CI shows, instead of timing out in silence.
#
#   scripts/test-watchdog.sh LOG PID [STALL_SECONDS]
#
# The watchdog runs while PID (the test script) does. It ends a stuck run by ending the test
# process, so `swift test` fails; the report goes to standard error and to LOG.stalled,
# which the test script prints again at its end, where CI's tail shows it.
set -uo pipefail
log="$1"
target="$2"
stall="${3:-300}"

report() {
  echo "=== no test output for ${stall} s: the run is stuck ===" >&2
  local tests
  tests="$(pgrep -f 'PackageTests.xctest' | head -1)"
  if [ -n "$tests" ] && command -v gdb >/dev/null 2>&1; then
    echo "--- threads of the test process $tests (innermost frames) ---" >&2
    timeout 60s gdb -p "$tests" -batch -ex 'thread apply all bt 8' 2>/dev/null \
      | grep -E '^(Thread|#[0-9])' | cut -c1-160 | tail -n 120 >&2
  fi
  local cluster="${ATRIUM_TEST_DATA_DIR:-}"
  if [ -n "$cluster" ] && [ -f "$cluster/database.json" ]; then
    echo "--- database sessions that are not idle ---" >&2
    PGPASSWORD="$(sed -E 's/.*"superuser_password":"([^"]*)".*/\1/' "$cluster/database.json")" \
      timeout 20s psql -X -A -F ' | ' -h "$cluster/postgres" -U atrium_superuser -d postgres \
      -p "$(sed -E 's/.*"port":([0-9]+).*/\1/' "$cluster/database.json")" -c \
      "select datname, usename, state, wait_event_type, wait_event, now() - xact_start as in_xact,
              left(regexp_replace(query, '\s+', ' ', 'g'), 120) as query
         from pg_stat_activity where backend_type = 'client backend' and state <> 'idle' and pid <> pg_backend_pid()
        order by xact_start nulls last limit 40" >&2 || true
  fi
  echo "--- child processes of the run ---" >&2
  ps -eo pid,etimes,args --forest | grep -E 'atrium|python|PackageTests' | grep -v grep | cut -c1-160 | tail -n 30 >&2
  # Swift Testing prints "◇ Test name() started." and "✔/✘ Test name() passed/failed after".
  echo "--- tests that started and did not finish ---" >&2
  awk '
    /^◇ Test (case |run )/ { next }
    /^◇ Test .* started\.$/ { name = $0; sub(/^◇ Test /, "", name); sub(/ started\.$/, "", name); open[name]++ }
    /^(✔|✘) Test .* (passed|failed) after/ { name = $0; sub(/^(✔|✘) Test /, "", name); sub(/ (passed|failed) after.*/, "", name); sub(/ with [0-9]+ test cases?$/, "", name); open[name]-- }
    END { for (n in open) if (open[n] > 0) print "  " n }
  ' "$log" >&2
}

while kill -0 "$target" 2>/dev/null; do
  sleep 10
  [ -f "$log" ] || continue
  age=$(( $(date +%s) - $(stat -c %Y "$log") ))
  if [ "$age" -ge "$stall" ]; then
    report 2>&1 | tee "$log.stalled" >&2
    pkill -TERM -f 'PackageTests.xctest' 2>/dev/null
    sleep 20
    pkill -KILL -f 'PackageTests.xctest' 2>/dev/null
    exit 0
  fi
done

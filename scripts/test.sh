#!/usr/bin/env bash
# make test: throwaway PostgreSQL clusters, the test suite against them, then cleanup.
#
# Two passes with the same arguments:
#   single  a single-node cluster: every test (the citus_only ones are deselected there);
#   citus   a Citus coordinator with two workers: the `citus` tier again, with the same
#           expectations, and the `citus_only` tests (shards, distributed plans).
# With both, the passes run side by side: each keeps about one core busy (a test's run is
# in-process), and CI's machine has two. The citus pass's output follows the single one's.
# ARCADIA_TEST_BACKENDS picks passes (default "single citus"); ARCADIA_TEST_MARK is a marker
# expression both passes keep (make test-fast: the slow tiers left out). Each pass ends with
# its slowest tests (--durations): where `make test`'s hour would go.
set -euo pipefail
cd "$(dirname "$0")/.."

backends=${ARCADIA_TEST_BACKENDS:-single citus}
mark=${ARCADIA_TEST_MARK:-}

# The browser test drives Debian's Chromium (never a downloaded browser).
if ! command -v chromium >/dev/null 2>&1 && [ -z "${ARCADIA_SKIP_BROWSER_INSTALL:-}" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

single=".local/pg-test-$$"
citus=".local/pg-citus-test-$$"
citus_tmp=""  # the Citus pass's log and temporary directory when it runs in the background
clean_up() {
  for c in "$single" "$citus"; do scripts/pg-cluster.sh destroy "$c" >/dev/null 2>&1 || true; done
  [ -z "$citus_tmp" ] || rm -rf "$citus_tmp"
}
trap clean_up EXIT
# The Citus cluster first: building the extension may upgrade the system's PostgreSQL minor,
# which a server started before it would then run beside. fsync off: the clusters are
# deleted after the run. The tests make their databases as the superuser
# (ARCADIA_ADMIN_DATABASE_URL).
if [[ " $backends " == *" citus "* ]]; then
  # Four shards per table (two per worker): the tier truncates and refills its tables for
  # every test, which costs per shard.
  citus_env=$(ARCADIA_PG_CITUS=1 ARCADIA_PG_FSYNC=off ARCADIA_CITUS_SHARD_COUNT=4 \
    scripts/pg-cluster.sh start "$citus")
fi

status=0
citus_pass() {
  echo "== the citus tier on a coordinator and two workers =="
  (
    eval "$citus_env"
    export ARCADIA_TEST_PG_CLUSTER="$citus"
    .venv/bin/python -m pytest -p no:cacheprovider --durations=10 \
      -m "(citus or citus_only)${mark:+ and ($mark)}" "$@" || {
      code=$?  # 5: the arguments selected none of the tier (a folder without it)
      [ "$code" -eq 5 ] && echo "no test of the citus tier among these arguments" || exit "$code"
    }
  )
}
citus_pid=""
if [[ " $backends " == *" citus "* && " $backends " == *" single "* ]]; then
  # Its own log and temporary directory: the single pass prints to the console meanwhile.
  citus_tmp=$(mktemp -d)
  citus_log="$citus_tmp/citus-pass.log"
  citus_pass --basetemp="$citus_tmp/pytest" "$@" >"$citus_log" 2>&1 &
  citus_pid=$!
fi
if [[ " $backends " == *" single "* ]]; then
  (
    eval "$(ARCADIA_PG_FSYNC=off scripts/pg-cluster.sh start "$single")"
    # The fault-injection tests stop and restart this cluster (a database outage).
    export ARCADIA_TEST_PG_CLUSTER="$single"
    .venv/bin/python -m pytest --durations=25 ${mark:+-m "$mark"} "$@"
  ) || status=$?
fi
if [[ -n "$citus_pid" ]]; then
  wait "$citus_pid" || status=$?
  cat "$citus_log"
elif [[ " $backends " == *" citus "* ]]; then
  citus_pass "$@" || status=$?
fi
exit "$status"

#!/usr/bin/env bash
# make test: throwaway PostgreSQL clusters, the test suite against them, then cleanup.
#
# Three passes with the same arguments, each on a cluster of its own:
#   single  a single-node cluster: every test but the slow tiers (the citus_only ones are
#           deselected there);
#   slow    another single-node cluster: the slow tiers (e2e, faults). They wait on the
#           daemon's intervals and on the processes they start more than they compute, and
#           the outage tests stop and restart their cluster, which no other pass may share;
#   citus   a Citus coordinator with two workers: the `citus` tier again, with the same
#           expectations, and the `citus_only` tests (shards, distributed plans).
# They run side by side, and the single pass in two pytest-xdist workers (a file's tests in
# one): a test's run is in-process, so a pytest keeps at most about one core busy, and CI's
# machine has two, which the single pass alone then keeps busy to its end. The single pass
# prints to the console; the others' output follows it. ARCADIA_TEST_BACKENDS picks
# backends (default "single citus"; single is both single-node passes); ARCADIA_TEST_MARK
# is a marker expression every pass keeps (make test-fast: the slow tiers left out). Each
# pass ends with its slowest tests (--durations): where `make test`'s hour would go.
set -euo pipefail
cd "$(dirname "$0")/.."

backends=${ARCADIA_TEST_BACKENDS:-single citus}
mark=${ARCADIA_TEST_MARK:-}
slow_tiers="e2e or faults"

# The browser test drives Debian's Chromium (never a downloaded browser).
if ! command -v chromium >/dev/null 2>&1 && [ -z "${ARCADIA_SKIP_BROWSER_INSTALL:-}" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

# The project's own modules as bytecode too (uv compiles the packages): where
# PYTHONDONTWRITEBYTECODE is set, every process the tests start would compile them again.
.venv/bin/python -m compileall -q arcadia_pipeline arcadia_pipeline_tests >/dev/null

single=".local/pg-test-$$"
slow=".local/pg-slow-test-$$"
citus=".local/pg-citus-test-$$"
logs=$(mktemp -d)  # the background passes' output and pytest's temporary directories
clean_up() {
  for c in "$single" "$slow" "$citus"; do
    scripts/pg-cluster.sh destroy "$c" >/dev/null 2>&1 || true
  done
  rm -rf "$logs"
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

# run_pass TITLE CLUSTER_ENV CLUSTER MARK DURATIONS [pytest args]: one pytest run on a cluster;
# exit status 5 (the arguments selected none of the pass's tests) is not a failure. Each
# pytest process (each xdist worker too) makes its own database on the cluster.
run_pass() {
  local title=$1 cluster_env=$2 cluster=$3 marks=$4 durations=$5
  shift 5
  echo "== $title =="
  (
    eval "$cluster_env"
    # The fault-injection tests stop and restart this cluster (a database outage).
    export ARCADIA_TEST_PG_CLUSTER="$cluster"
    .venv/bin/python -m pytest -p no:cacheprovider --durations="$durations" -m "$marks" \
      "$@" || {
      code=$?
      [ "$code" -eq 5 ] && echo "no test of this pass among these arguments" || exit "$code"
    }
  )
}
with_mark() {  # a pass's marker expression, and ARCADIA_TEST_MARK's
  echo "($1)${mark:+ and ($mark)}"
}

pids=()
outputs=()
if [[ " $backends " == *" citus "* ]]; then
  citus_pass=(run_pass "the citus tier on a coordinator and two workers" "$citus_env" "$citus"
    "$(with_mark "citus or citus_only")" 10)
fi
if [[ " $backends " == *" single "* ]]; then
  slow_env=$(ARCADIA_PG_FSYNC=off scripts/pg-cluster.sh start "$slow")
  run_pass "the slow tiers ($slow_tiers) on a single node" "$slow_env" "$slow" \
    "$(with_mark "$slow_tiers")" 25 --basetemp="$logs/slow-pytest" "$@" \
    >"$logs/slow.log" 2>&1 &
  pids+=($!)
  outputs+=("$logs/slow.log")
  if [[ -n "${citus_pass+x}" ]]; then
    "${citus_pass[@]}" --basetemp="$logs/citus-pytest" "$@" >"$logs/citus.log" 2>&1 &
    pids+=($!)
    outputs+=("$logs/citus.log")
  fi
fi

status=0
if [[ " $backends " == *" single "* ]]; then
  single_env=$(ARCADIA_PG_FSYNC=off scripts/pg-cluster.sh start "$single")
  run_pass "every test but the slow tiers on a single node" "$single_env" "$single" \
    "$(with_mark "not ($slow_tiers)")" 25 -n 2 --dist loadfile "$@" || status=$?
elif [[ -n "${citus_pass+x}" ]]; then
  "${citus_pass[@]}" "$@" || status=$?
fi
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || status=$?
  cat "${outputs[$i]}"
done
exit "$status"

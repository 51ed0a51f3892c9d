#!/usr/bin/env bash
# The Dagster UI as `make demo` runs it, in the foreground: `dg dev` (webserver and daemon) on
# workspace.yaml, started from DAGSTER_HOME, with its whole output in LOG rather than on the
# console: the services' own log lines and every run's event log (DEBUG included, from the
# run workers the daemon starts), which today would scroll past the quotes.
#
#   scripts/dagster-dev.sh LOG [dg dev options, e.g. -h 127.0.0.1 -p 3000]
#
# Needs DAGSTER_HOME (holding the instance's dagster.yaml) and the project's virtualenv active
# (`dg` checks it). `dg dev` runs from DAGSTER_HOME: Dagster warns about a dagster.yaml in the
# current folder unless that folder is DAGSTER_HOME, and a bare `dg dev` always runs from the
# project root, where the repo's dagster.yaml is. LOG is replaced on every start.
#
# Ctrl-C stops it as it stops a `dg dev` run in the foreground: the terminal's SIGINT reaches
# dg dev and its services (one process group) and this waits for their shutdown. SIGTERM and
# SIGHUP sent to this script are passed on to dg dev. If dg dev exits on its own with an
# error, the console gets the log's last 40 lines and its exit status.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shown=${1:?usage: dagster-dev.sh LOG [dg dev options]}
shift
: "${DAGSTER_HOME:?dagster-dev.sh: DAGSTER_HOME is not set}"
mkdir -p "$(dirname "$shown")"
log=$(cd "$(dirname "$shown")" && pwd)/$(basename "$shown")

cd "$DAGSTER_HOME"
# A background command of a script has SIGINT and SIGQUIT ignored unless reset: dg dev must
# get the terminal's Ctrl-C. Its logs go to LOG uncoloured (the services' default format is
# `colored`, escape codes in a file).
(
  trap - INT QUIT
  exec dg dev -w "$root/workspace.yaml" --log-format json "$@"
) >"$log" 2>&1 </dev/null &
dev=$!
echo "dg dev's log (webserver, daemon, every run's events): $shown"

signalled=""
trap 'signalled=INT' INT
trap 'signalled=TERM; kill -TERM "$dev" 2>/dev/null' TERM HUP
# `wait` returns early when a trapped signal arrives: wait again until dg dev is gone.
while :; do
  status=0
  wait "$dev" || status=$?
  kill -0 "$dev" 2>/dev/null || break
done

if [ -z "$signalled" ] && [ "$status" -ne 0 ]; then
  {
    echo "dg dev exited with status $status"
    echo "--- last 40 lines of $shown ---"
    tail -n 40 "$log"
  } >&2
fi
[ -z "$signalled" ] || echo "Dagster stopped (log: $shown)"
exit "$status"

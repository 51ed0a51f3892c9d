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
# SIGHUP sent to this script are passed on to dg dev. The console gets "Dagster UI up: URL"
# once the webserver answers. If dg dev exits on its own with an error, or its webserver
# cannot bind its port (dg dev would go on with the daemon alone), the console gets the
# log's last 40 lines and this exits non-zero.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shown=${1:?usage: dagster-dev.sh LOG [dg dev options]}
shift
: "${DAGSTER_HOME:?dagster-dev.sh: DAGSTER_HOME is not set}"
mkdir -p "$(dirname "$shown")"
log=$(cd "$(dirname "$shown")" && pwd)/$(basename "$shown")

cd "$DAGSTER_HOME"
# A background command of a script starts with SIGINT ignored, and so does everything under
# a `make demo` that was itself started in the background (nohup, CI): bash cannot undo an
# ignore it inherited, and Dagster maps SIGTERM to SIGINT's handler, so dg dev would ignore
# both. Python resets SIGINT to its default before exec'ing dg dev: Ctrl-C and SIGTERM stop
# it however it was started. Its logs go to LOG uncoloured (the services' default format is
# `colored`, escape codes in a file).
python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' \
  dg dev -w "$root/workspace.yaml" --log-format json "$@" >"$log" 2>&1 </dev/null &
dev=$!
echo "dg dev's log (webserver, daemon, every run's events): $shown"

bind_error='error while attempting to bind'
# In the background (SIGINT ignored there): the webserver's URL once it answers, or, if it
# cannot bind its port, dg dev stopped (the main loop below reports it).
watch_startup() {
  local url
  while kill -0 "$dev" 2>/dev/null; do
    if grep -q "$bind_error" "$log"; then
      kill -TERM "$dev" 2>/dev/null
      return
    fi
    url=$(grep -o -m 1 'Serving dagster-webserver on http://[^ "]*' "$log" | sed 's/.* on //')
    if [ -n "$url" ] && python3 -c '
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/server_info", timeout=5)' "$url" 2>/dev/null \
      && ! grep -q "$bind_error" "$log"; then
      echo "Dagster UI up: $url"
      return
    fi
    sleep 1
  done
}
watch_startup &
watcher=$!

signalled=""
trap 'signalled=INT' INT
trap 'signalled=TERM; kill -TERM "$dev" 2>/dev/null' TERM HUP
# `wait` returns early when a trapped signal arrives: wait again until dg dev is gone.
while :; do
  status=0
  wait "$dev" || status=$?
  kill -0 "$dev" 2>/dev/null || break
done
kill "$watcher" 2>/dev/null
wait "$watcher" 2>/dev/null
# Stopped by the watcher (dg dev may exit 0 on SIGTERM): a failure all the same.
if grep -q "$bind_error" "$log" && [ "$status" -eq 0 ]; then status=1; fi

if [ -z "$signalled" ] && [ "$status" -ne 0 ]; then
  {
    echo "dg dev exited with status $status"
    echo "--- last 40 lines of $shown ---"
    tail -n 40 "$log"
    if grep -q "$bind_error" "$log"; then
      echo "the webserver did not start: $(grep -m 1 "$bind_error" "$log")"
    fi
  } >&2
fi
[ -z "$signalled" ] || echo "Dagster stopped (log: $shown)"
exit "$status"

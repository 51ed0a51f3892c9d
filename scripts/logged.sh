#!/usr/bin/env bash
# Run a command with its output (stdout and stderr) in a log file, not on the console:
#
#   scripts/logged.sh LOG COMMAND [ARGS...]
#
# LOG is replaced on every run (its folder is made). On failure the console gets the command,
# its exit status and the log's last 40 lines (on stderr), and this exits with that status.
# `make venv` (uv sync) and `make demo` (migrations, seed, the metering run) go through it.
set -uo pipefail
log=${1:?usage: logged.sh LOG COMMAND [ARGS...]}
shift
[ $# -gt 0 ] || { echo "usage: logged.sh LOG COMMAND [ARGS...]" >&2; exit 2; }
mkdir -p "$(dirname "$log")"
"$@" >"$log" 2>&1 </dev/null
status=$?
if [ "$status" -ne 0 ]; then
  {
    echo "failed (exit $status): $*"
    echo "--- last 40 lines of $log ---"
    tail -n 40 "$log"
  } >&2
fi
exit "$status"

#!/usr/bin/env bash
# make demo: private PostgreSQL, migrations, demo inventory, last complete month + this month
# to date metered in one partition-range run, the quotes printed, then the Dagster UI.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

eval "$(scripts/pg-cluster.sh start .local/pg)"

# The instance: DAGSTER_HOME holds a copy of the repo's dagster.yaml (the one source, copied
# afresh on every start; an old symlink is replaced).
export DAGSTER_HOME="$root/.local/dagster_home"
mkdir -p "$DAGSTER_HOME"
rm -f "$DAGSTER_HOME/dagster.yaml"
cp "$root/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"

# The project's virtualenv, activated: `dg` checks that the active one is the project's.
export VIRTUAL_ENV="$root/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"

arcadia-pipeline db upgrade
arcadia-pipeline demo seed

# Last complete month through yesterday (UTC), as one single-run backfill.
read -r first last < <(python -c '
from datetime import datetime, timedelta, UTC
yesterday = datetime.now(UTC).date() - timedelta(days=1)
first = (yesterday.replace(day=1) - timedelta(days=1)).replace(day=1)
print(first, yesterday)')
echo "metering $first...$last in one run"
start=$(date +%s)
dg launch --job daily_metering_job --partition-range "$first...$last" \
  >"$root/.local/demo-materialize.log" 2>&1 \
  || { tail -40 "$root/.local/demo-materialize.log"; exit 1; }
echo "metered $first...$last in $(( $(date +%s) - start ))s (log: .local/demo-materialize.log)"
echo
arcadia-pipeline quotes --as-of "$last"
echo

port=${ARCADIA_UI_PORT:-3000}
echo "Dagster UI (webserver + daemon): open http://127.0.0.1:$port  (Ctrl-C stops it)"
echo "Warehouse: postgresql://warehouse@127.0.0.1:$ARCADIA_PG_PORT/arcadia (password in .local/pg/warehouse.password)"
# `dg dev` on workspace.yaml (code location `arcadia_pipeline`), started from DAGSTER_HOME:
# Dagster warns about a dagster.yaml in the current folder unless that folder is
# DAGSTER_HOME, and a bare `dg dev` always runs from the project root, where the repo's
# dagster.yaml is.
cd "$DAGSTER_HOME"
exec dg dev -w "$root/workspace.yaml" -h 127.0.0.1 -p "$port"

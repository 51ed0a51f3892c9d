#!/usr/bin/env bash
# A private PostgreSQL cluster for this checkout: system binaries, loopback only, a free port.
#
#   scripts/pg-cluster.sh start DIR   create (once) and start the cluster in DIR, create the
#                                     'arcadia' and 'dagster' databases, print export lines
#   scripts/pg-cluster.sh env DIR     print the export lines of a running cluster
#   scripts/pg-cluster.sh stop DIR    stop it (the data stays)
#   scripts/pg-cluster.sh destroy DIR stop it and delete DIR
#
# PostgreSQL refuses to run as root, so as root initdb/pg_ctl run as the 'postgres' system
# user; otherwise as the invoking user. Only the cluster in DIR is ever started or stopped.
set -euo pipefail

cmd=${1:?usage: pg-cluster.sh start|env|stop|destroy DIR}
dir=${2:?usage: pg-cluster.sh start|env|stop|destroy DIR}
superuser=arcadia

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

install_postgres() {
  echo "pg-cluster: PostgreSQL server binaries not found; installing with apt" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
}

bindir=$(find_bindir || { install_postgres; find_bindir; }) || {
  echo "pg-cluster: no PostgreSQL server binaries after apt install" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The data directory must be reachable by the postgres user; a checkout under a private
# home (e.g. /root) is not, so the cluster then lives under /tmp with a link in DIR.
data_dir() {
  mkdir -p "$dir"
  if [ -L "$dir/data" ] || [ -d "$dir/data" ]; then readlink -f "$dir/data"; return; fi
  local target="$dir/data"
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$(readlink -f "$dir")"; then
    target=$(mktemp -d /tmp/arcadia-pg.XXXXXX)/data
    ln -s "$target" "$dir/data"
  fi
  mkdir -p "$target"
  [ "$(id -u)" -eq 0 ] && chown -R postgres: "$(dirname "$target")" "$target"
  chmod 700 "$target"
  readlink -f "$dir/data"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_is_free() {
  # SO_REUSEADDR as PostgreSQL binds: a port left in TIME_WAIT by the old server is free.
  python3 -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

print_env() {
  local port
  port=$(cat "$dir/port")
  echo "export ARCADIA_PG_PORT=$port"
  echo "export ARCADIA_DATABASE_URL=postgresql+psycopg2://$superuser@127.0.0.1:$port/arcadia"
  echo "export DAGSTER_POSTGRES_URL=postgresql://$superuser@127.0.0.1:$port/dagster"
}

is_running() {
  local data=$1
  [ -f "$data/postmaster.pid" ] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

start() {
  local data port
  data=$(data_dir)
  if [ ! -f "$data/PG_VERSION" ]; then
    as_owner "$bindir/initdb" -D "$data" -U "$superuser" --auth=trust -E UTF8 \
      --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  if ! is_running "$data"; then
    # A restart keeps its port while it is free, so clients' URLs stay valid across an
    # outage (the fault-injection tests stop and start the cluster).
    port=$(cat "$dir/port" 2>/dev/null || true)
    if [ -z "$port" ] || ! port_is_free "$port"; then port=$(free_port); fi
    echo "$port" >"$dir/port"
    # Socket in the data dir: private to this cluster, never /var/run/postgresql.
    as_owner "$bindir/pg_ctl" -D "$data" -w -t 60 -l "$data/server.log" \
      -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$data \
          -c max_connections=200 -c shared_buffers=256MB -c fsync=${ARCADIA_PG_FSYNC:-on} \
          -c timezone=UTC" start >/dev/null \
      || { tail -20 "$data/server.log" >&2; exit 1; }
  fi
  port=$(cat "$dir/port")
  local db
  for db in arcadia dagster; do
    if ! "$bindir/psql" -h 127.0.0.1 -p "$port" -U "$superuser" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
      "$bindir/createdb" -h 127.0.0.1 -p "$port" -U "$superuser" "$db"
    fi
  done
  print_env
}

stop() {
  [ -e "$dir/data" ] || return 0
  local data
  data=$(readlink -f "$dir/data")
  if is_running "$data"; then
    as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  fi
}

case "$cmd" in
  start) start ;;
  env) print_env ;;
  stop) stop ;;
  destroy)
    stop
    if [ -L "$dir/data" ]; then rm -rf "$(dirname "$(readlink -f "$dir/data")")"; fi
    rm -rf "$dir" ;;
  *) echo "pg-cluster: unknown command $cmd" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A private PostgreSQL cluster for this checkout: system binaries, loopback only, a free port,
# password (SCRAM) authentication, and databases owned by roles that are not superusers.
#
#   scripts/pg-cluster.sh start DIR   create (once) and start the cluster in DIR, create its
#                                     roles and the 'arcadia' and 'dagster' databases, print
#                                     export lines
#   scripts/pg-cluster.sh env DIR     print the export lines of a running cluster
#   scripts/pg-cluster.sh stop DIR    stop it (the data stays)
#   scripts/pg-cluster.sh destroy DIR stop it and delete DIR
#
# Roles (each password random, generated once, kept in DIR/<role>.password, mode 600):
#   postgres  the superuser: ARCADIA_ADMIN_DATABASE_URL, to create roles and databases
#   warehouse LOGIN, not a superuser, owner of the 'arcadia' database: ARCADIA_DATABASE_URL
#             (`db upgrade`, `demo seed` and the pipeline need nothing more). Not named
#             'metering': search_path's "$user" would then put schema metering on it.
#   dagster   LOGIN, not a superuser, owner of the 'dagster' database: DAGSTER_POSTGRES_URL
# Throwaway databases (the test suite's, the benchmark's) are made by the superuser and
# owned by 'warehouse', which cannot create databases itself.
# ARCADIA_PG_FSYNC=off and ARCADIA_PG_MAX_WAL_SIZE (default 1GB) tune a throwaway cluster.
#
# A cluster made before passwords (initdb --auth=trust: no DIR/postgres.password) is
# recreated empty on its next start: it only ever held the demo's reproducible data.
#
# PostgreSQL refuses to run as root, so as root initdb/pg_ctl run as the 'postgres' system
# user; otherwise as the invoking user. Only the cluster in DIR is ever started or stopped.
set -euo pipefail

cmd=${1:?usage: pg-cluster.sh start|env|stop|destroy DIR}
dir=${2:?usage: pg-cluster.sh start|env|stop|destroy DIR}
superuser=postgres
owner=warehouse
dagster_owner=dagster

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

password_file() {
  echo "$dir/$1.password"
}

# A random password for the role, generated once and kept (mode 600) across restarts.
ensure_password() {
  local file
  file=$(password_file "$1")
  if [ ! -s "$file" ]; then
    (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$file.tmp")
    mv "$file.tmp" "$file"
  fi
  chmod 600 "$file"
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
  [ -f "$dir/port" ] && [ -f "$(password_file "$superuser")" ] || {
    echo "pg-cluster: no cluster in $dir (run: scripts/pg-cluster.sh start $dir)" >&2; exit 1; }
  # Passwords are URL-encoded into the URLs, the values shell-quoted for eval.
  python3 - "$dir" "$(cat "$dir/port")" "$superuser" "$owner" "$dagster_owner" <<'PY'
import shlex, sys
from pathlib import Path
from urllib.parse import quote

directory, port, superuser, owner, dagster_owner = sys.argv[1:]

def url(driver, role, database):
    password = (Path(directory) / f"{role}.password").read_text().strip()
    return f"{driver}://{quote(role, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}/{database}"

print(f"export ARCADIA_PG_PORT={port}")
print("export ARCADIA_DATABASE_URL=" + shlex.quote(url("postgresql+psycopg2", owner, "arcadia")))
print("export DAGSTER_POSTGRES_URL=" + shlex.quote(url("postgresql", dagster_owner, "dagster")))
print("export ARCADIA_ADMIN_DATABASE_URL="
      + shlex.quote(url("postgresql+psycopg2", superuser, "arcadia")))
PY
}

is_running() {
  local data=$1
  [ -f "$data/postmaster.pid" ] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

initdb_cluster() {
  local data=$1 pwfile
  pwfile=$(password_file "$superuser")
  if [ "$(id -u)" -eq 0 ]; then
    # initdb runs as 'postgres', who cannot read root's files: a private copy it owns.
    pwfile=$(mktemp)
    cat "$(password_file "$superuser")" >"$pwfile"
    chown postgres: "$pwfile"
  fi
  as_owner "$bindir/initdb" -D "$data" -U "$superuser" --pwfile="$pwfile" \
    --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  [ "$pwfile" = "$(password_file "$superuser")" ] || rm -f "$pwfile"
}

# The login roles and the two databases, as the superuser: created when missing, passwords
# and owners (re)set on every start so they always match DIR/<role>.password.
ensure_roles_and_databases() {
  local port=$1
  # psql reads the passwords with backquotes (never on a command line) and quotes them.
  PGPASSWORD=$(cat "$(password_file "$superuser")") "$bindir/psql" -X -q -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$port" -U "$superuser" -d postgres >/dev/null <<SQL
\\set owner_password \`cat '$(password_file "$owner")'\`
\\set dagster_password \`cat '$(password_file "$dagster_owner")'\`
SELECT 'CREATE ROLE $owner LOGIN NOCREATEDB'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$owner') \\gexec
ALTER ROLE $owner WITH LOGIN NOSUPERUSER PASSWORD :'owner_password';
SELECT 'CREATE ROLE $dagster_owner LOGIN NOCREATEDB'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$dagster_owner') \\gexec
ALTER ROLE $dagster_owner WITH LOGIN NOSUPERUSER PASSWORD :'dagster_password';
SELECT 'CREATE DATABASE arcadia OWNER $owner'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'arcadia') \\gexec
ALTER DATABASE arcadia OWNER TO $owner;
SELECT 'CREATE DATABASE dagster OWNER $dagster_owner'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'dagster') \\gexec
ALTER DATABASE dagster OWNER TO $dagster_owner;
SQL
}

start() {
  local data port role
  data=$(data_dir)
  if [ -f "$data/PG_VERSION" ] && [ ! -s "$(password_file "$superuser")" ]; then
    # Made with --auth=trust by an older version of this script: recreate it with passwords.
    echo "pg-cluster: $dir was created without passwords (trust); recreating it empty" >&2
    if is_running "$data"; then as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null; fi
    as_owner find "$data" -mindepth 1 -delete
  fi
  for role in "$superuser" "$owner" "$dagster_owner"; do ensure_password "$role"; done
  [ -f "$data/PG_VERSION" ] || initdb_cluster "$data"
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
          -c max_wal_size=${ARCADIA_PG_MAX_WAL_SIZE:-1GB} -c timezone=UTC" start >/dev/null \
      || { tail -20 "$data/server.log" >&2; exit 1; }
  fi
  ensure_roles_and_databases "$(cat "$dir/port")"
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

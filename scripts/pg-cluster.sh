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
# Citus (ARCADIA_PG_CITUS=1 on the first start; DIR remembers it): a coordinator in DIR/data
# and two workers in DIR/worker1 and DIR/worker2, each on its own free port with
# shared_preload_libraries=citus and the same roles and passwords; the 'arcadia' database is
# attached to the workers (arcadia_pipeline/db/citus.py, run with .venv's Python: `make
# venv` first). The export lines add ARCADIA_CITUS_WORKERS (HOST:PORT,HOST:PORT). Nodes reach
# each other with a password file of the cluster's own (PGPASSFILE of each server). Without
# the extension, the script runs ../shared/citus/install-citus.sh (or
# $ARCADIA_CITUS_INSTALLER) when it is there, and otherwise stops saying how to get Citus.
# ARCADIA_CITUS_SHARD_COUNT (default 8: four per worker on a small machine) is each
# distributed table's shard count.
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
root=$(cd "$(dirname "$0")/.." && pwd)
workers=(worker1 worker2)

# A cluster is Citus when made so (ARCADIA_PG_CITUS=1 at its first start): DIR/citus says so.
citus=0
if [ -f "$dir/citus" ] || { [ "$cmd" = start ] && [ "${ARCADIA_PG_CITUS:-0}" = 1 ]; }; then
  citus=1
fi
nodes=(data)
[ "$citus" = 1 ] && nodes+=("${workers[@]}")

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

# ARCADIA_PG_BINDIR: another PostgreSQL's bin directory (default: the newest installed).
bindir=${ARCADIA_PG_BINDIR:-$(find_bindir || { install_postgres; find_bindir; })} || {
  echo "pg-cluster: no PostgreSQL server binaries after apt install" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The data directory must be reachable by the postgres user; a checkout under a private
# home (e.g. /root) is not, so the cluster then lives under /tmp with a link in DIR.
# NODE: 'data' (the coordinator, or the only server) or a worker's name.
data_dir() {
  local node=${1:-data}
  mkdir -p "$dir"
  if [ -L "$dir/$node" ] || [ -d "$dir/$node" ]; then readlink -f "$dir/$node"; return; fi
  local target="$dir/$node"
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$(readlink -f "$dir")"; then
    target=$(mktemp -d /tmp/arcadia-pg.XXXXXX)/$node
    ln -s "$target" "$dir/$node"
  fi
  mkdir -p "$target"
  [ "$(id -u)" -eq 0 ] && chown -R postgres: "$(dirname "$target")" "$target"
  chmod 700 "$target"
  readlink -f "$dir/$node"
}

port_file() {
  if [ "${1:-data}" = data ]; then echo "$dir/port"; else echo "$dir/$1.port"; fi
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
workers = [p.read_text().strip() for p in sorted(Path(directory).glob("worker*.port"))]
if (Path(directory) / "citus").exists():
    print("export ARCADIA_CITUS_WORKERS=" + ",".join(f"127.0.0.1:{w}" for w in workers))
else:
    print("unset ARCADIA_CITUS_WORKERS")
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

# Citus's library in the server's lib directory, installed when missing and the installer is
# at hand; otherwise one line saying how to get it.
ensure_citus() {
  local libdir installer
  libdir=$(dirname "$bindir")/lib
  [ -f "$libdir/citus.so" ] && return 0
  installer=${ARCADIA_CITUS_INSTALLER:-$root/../shared/citus/install-citus.sh}
  if [ ! -f "$installer" ]; then
    echo "pg-cluster: Citus is not installed for $("$bindir/postgres" --version): install" \
      "Citus 13.2 (packages: https://docs.citusdata.com/en/stable/installation/single_node_debian.html)," \
      "point ARCADIA_CITUS_INSTALLER at ../shared/citus/install-citus.sh, or use a managed Citus" >&2
    exit 1
  fi
  echo "pg-cluster: Citus is not installed; building it with $installer" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo bash "$installer" "$bindir/pg_config" >&2
  [ -f "$libdir/citus.so" ] || { echo "pg-cluster: $installer left no $libdir/citus.so" >&2; exit 1; }
}

# The password file every node's server reads when it connects to another node (libpq's
# PGPASSFILE): the two roles that run distributed statements. Beside the coordinator's data,
# where the server's user may read it.
node_passfile() {
  local file role
  file=$(dirname "$(readlink -f "$dir/data")")/citus.pgpass
  (umask 077
   for role in "$superuser" "$owner"; do
     echo "127.0.0.1:*:*:$role:$(cat "$(password_file "$role")")"
   done >"$file")
  [ "$(id -u)" -eq 0 ] && chown postgres: "$file"
  echo "$file"
}

start_node() {
  local node=$1 data port extra=() environment=()
  data=$(data_dir "$node")
  [ -f "$data/PG_VERSION" ] || initdb_cluster "$data"
  is_running "$data" && return 0
  # A restart keeps its port while it is free, so clients' URLs stay valid across an
  # outage (the fault-injection tests stop and start the cluster), and so do the workers'
  # addresses the coordinator keeps.
  port=$(cat "$(port_file "$node")" 2>/dev/null || true)
  if [ -z "$port" ] || ! port_is_free "$port"; then port=$(free_port); fi
  echo "$port" >"$(port_file "$node")"
  if [ "$citus" = 1 ]; then
    # sslmode=prefer: the extension turns SSL on only where it is created.
    extra=(-c shared_preload_libraries=citus -c "citus.node_conninfo=sslmode=prefer"
           -c "citus.shard_count=${ARCADIA_CITUS_SHARD_COUNT:-8}")
    environment=(PGPASSFILE="$(node_passfile)")
  fi
  # Socket in the data dir: private to this cluster, never /var/run/postgresql.
  as_owner env "${environment[@]}" "$bindir/pg_ctl" -D "$data" -w -t 60 -l "$data/server.log" \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$data \
        -c max_connections=200 -c shared_buffers=256MB -c fsync=${ARCADIA_PG_FSYNC:-on} \
        -c max_wal_size=${ARCADIA_PG_MAX_WAL_SIZE:-1GB} -c timezone=UTC ${extra[*]}" start \
    >/dev/null || { tail -20 "$data/server.log" >&2; exit 1; }
}

# The 'arcadia' database on the workers, as the coordinator's superuser.
attach_workers() {
  local python=$root/.venv/bin/python node addresses=()
  [ -x "$python" ] || { echo "pg-cluster: Citus needs the project's virtualenv: make venv" >&2; exit 1; }
  for node in "${workers[@]}"; do addresses+=("127.0.0.1:$(cat "$(port_file "$node")")"); done
  eval "$(print_env)"
  (cd "$root" && "$python" -m arcadia_pipeline.db.citus attach arcadia "$owner" "${addresses[@]}") >&2
}

start() {
  local data role node
  if [ "$citus" = 1 ]; then  # before anything is made
    if [ -f "$dir/data/PG_VERSION" ] && [ ! -f "$dir/citus" ]; then
      echo "pg-cluster: $dir holds a single-node cluster; destroy it first for Citus" >&2; exit 1
    fi
    ensure_citus
  fi
  data=$(data_dir)
  if [ -f "$data/PG_VERSION" ] && [ ! -s "$(password_file "$superuser")" ]; then
    # Made with --auth=trust by an older version of this script: recreate it with passwords.
    echo "pg-cluster: $dir was created without passwords (trust); recreating it empty" >&2
    if is_running "$data"; then as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null; fi
    as_owner find "$data" -mindepth 1 -delete
  fi
  [ "$citus" = 1 ] && touch "$dir/citus"
  for role in "$superuser" "$owner" "$dagster_owner"; do ensure_password "$role"; done
  for node in "${nodes[@]}"; do
    start_node "$node"
    ensure_roles_and_databases "$(cat "$(port_file "$node")")"
  done
  [ "$citus" = 1 ] && attach_workers
  print_env
}

stop() {
  local node data
  for node in "${nodes[@]}"; do
    [ -e "$dir/$node" ] || continue
    data=$(readlink -f "$dir/$node")
    if is_running "$data"; then
      as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    fi
  done
}

case "$cmd" in
  start) start ;;
  env) print_env ;;
  stop) stop ;;
  destroy)
    stop
    for node in "${nodes[@]}"; do
      if [ -L "$dir/$node" ]; then rm -rf "$(dirname "$(readlink -f "$dir/$node")")"; fi
    done
    rm -rf "$dir" ;;
  *) echo "pg-cluster: unknown command $cmd" >&2; exit 2 ;;
esac

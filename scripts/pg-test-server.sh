#!/usr/bin/env bash
# A throwaway PostgreSQL server for the store's tests and benchmarks (stack.md §4.2).
#
#   eval "$(scripts/pg-test-server.sh start)"   # prints: export MSB_TEST_PG_URL=...
#   scripts/pg-test-server.sh status
#   scripts/pg-test-server.sh stop               # stops it and deletes its data
#
# Environment: MSB_PG_PORT (default 55432), MSB_PG_DIR (default ${TMPDIR:-/tmp}/msb-pg-test-PORT),
# PGBIN (default: the newest /usr/lib/postgresql/*/bin, else the folder of pg_ctl on PATH).
# Only the export line goes to stdout; progress and errors go to stderr.
set -euo pipefail

PORT="${MSB_PG_PORT:-55432}"
DIR="${MSB_PG_DIR:-${TMPDIR:-/tmp}/msb-pg-test-$PORT}"
DB=bridge_test
URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"

say() { echo "pg-test-server: $*" >&2; }
die() { say "$*"; exit 1; }

find_pgbin() {
    if [[ -n "${PGBIN:-}" ]]; then
        [[ -x "$PGBIN/initdb" ]] || die "PGBIN=$PGBIN has no initdb"
        return
    fi
    local candidate
    # Debian keeps initdb off PATH, under /usr/lib/postgresql/<major>/bin; take the newest.
    candidate=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$candidate" && -x "$candidate/initdb" ]]; then
        PGBIN=$candidate
        return
    fi
    if command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
        PGBIN=$(dirname "$(command -v pg_ctl)")
        return
    fi
    return 1
}

ensure_pgbin() {
    if find_pgbin; then return; fi
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        say "installing postgresql with apt-get"
        DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2 ||
            { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2; }
        find_pgbin && return
    fi
    die "no PostgreSQL server binaries (initdb, pg_ctl): install postgresql or set PGBIN"
}

# PostgreSQL refuses to run as root: as root, run its programs as the postgres user.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        su postgres -s /bin/sh -c "$1"
    else
        sh -c "$1"
    fi
}

running() {
    [[ -f "$DIR/data/postmaster.pid" ]] && as_owner "'$PGBIN/pg_ctl' -D '$DIR/data' status" >/dev/null 2>&1
}

start() {
    ensure_pgbin
    if running; then
        say "already running on port $PORT ($DIR)"
        echo "export MSB_TEST_PG_URL=$URL"
        return
    fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no postgres user"
        chown postgres: "$DIR"
        as_owner "test -w '$DIR'" ||
            die "the postgres user cannot write to $DIR: set MSB_PG_DIR to a folder under /tmp"
    fi
    as_owner "'$PGBIN/initdb' -D '$DIR/data' -A trust -U postgres >'$DIR/initdb.log' 2>&1" ||
        { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    # Unix socket in our folder (not /var/run/postgresql, which may not exist or be writable);
    # TCP on loopback only.
    if ! as_owner "'$PGBIN/pg_ctl' -D '$DIR/data' -l '$DIR/log' -w -t 30 \
            -o '-p $PORT -k $DIR -c listen_addresses=127.0.0.1' start >/dev/null"; then
        tail -n 20 "$DIR/log" >&2 || true
        die "the server did not start (is port $PORT taken? set MSB_PG_PORT)"
    fi
    local psql="$PGBIN/psql"
    [[ -x "$psql" ]] || psql=psql
    "$psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres \
        -c "CREATE DATABASE $DB" >&2 || die "cannot create database $DB"
    say "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT, data in $DIR"
    echo "export MSB_TEST_PG_URL=$URL"
}

stop() {
    if [[ ! -d "$DIR" ]]; then
        say "not running (no $DIR)"
        return
    fi
    ensure_pgbin
    if running; then
        as_owner "'$PGBIN/pg_ctl' -D '$DIR/data' -m fast -w stop" >/dev/null
        say "stopped"
    fi
    rm -rf "$DIR"
}

status() {
    ensure_pgbin
    if running; then
        say "running on port $PORT ($DIR)"
        echo "export MSB_TEST_PG_URL=$URL"
    else
        say "not running"
        return 3
    fi
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) die "usage: $0 [start|stop|status]" ;;
esac

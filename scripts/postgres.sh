#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests (the Debian `postgresql` package).
#
#   scripts/postgres.sh install      install PostgreSQL when initdb is missing (as root, with apt-get);
#                                    otherwise only says what is missing. Never fails the caller.
#   scripts/postgres.sh start DIR    initdb + pg_ctl start in DIR (as the `postgres` user when run as
#                                    root), listening on 127.0.0.1 on a free port, with a database
#                                    `runhistory`; prints its URI (postgresql://...) on stdout and
#                                    writes it to DIR/uri.
#   scripts/postgres.sh pause DIR    shuts that server down (fast: clients are disconnected), keeping DIR;
#   scripts/postgres.sh resume DIR   starts it again on the same port (the database outage tests).
#   scripts/postgres.sh stop DIR     stops that server (fast) and removes DIR.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"  # runuser, useradd

find_bin() {
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

as_owner() {  # run a command as the postgres user when we are root (PostgreSQL refuses to run as root)
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start_server() {  # BIN DIR: pg_ctl start with the options saved in DIR/options
    as_owner "$1/pg_ctl" -D "$2/data" -l "$2/server.log" -w -t 60 start -o "$(cat "$2/options")" >/dev/null ||
        { cat "$2/server.log" >&2; exit 1; }
}

cmd=${1:-}
case "$cmd" in
install)
    if find_bin >/dev/null; then
        exit 0
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "postgres.sh: initdb not found; installing the Debian postgresql package" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2 || echo "postgres.sh: installing PostgreSQL failed" >&2
    else
        echo "postgres.sh: no PostgreSQL (initdb) here; install the postgresql package to run the PostgreSQL tests" >&2
    fi
    exit 0
    ;;
start)
    dir=${2:?usage: postgres.sh start DIR}
    bin=$(find_bin) || { echo "postgres.sh: initdb not found (scripts/postgres.sh install)" >&2; exit 3; }
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres: "$dir"
        chmod 700 "$dir"
    fi
    password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    printf '%s\n' "$password" >"$dir/pwfile"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir/pwfile"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$dir/pwfile"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off -c shared_buffers=64MB" >"$dir/options"
    start_server "$bin" "$dir"
    as_owner "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE runhistory" >/dev/null
    uri="postgresql://postgres:$password@127.0.0.1:$port/runhistory"
    echo "$uri" >"$dir/uri"
    echo "$uri"
    ;;
pause)
    dir=${2:?usage: postgres.sh pause DIR}
    as_owner "$(find_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
resume)
    dir=${2:?usage: postgres.sh resume DIR}
    start_server "$(find_bin)" "$dir"
    ;;
stop)
    dir=${2:?usage: postgres.sh stop DIR}
    if [ -d "$dir/data" ]; then
        bin=$(find_bin) || true
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: scripts/postgres.sh install | start DIR | pause DIR | resume DIR | stop DIR" >&2
    exit 2
    ;;
esac

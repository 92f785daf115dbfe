#!/usr/bin/env bash
# A private 3-node RabbitMQ cluster on this host, for rehearsing failover and for
# tests/test_cluster_failover.py. Nothing of the host's own RabbitMQ is used or touched:
# own node names, ports, Erlang cookie, config, enabled-plugins file and data dirs, all in DIR.
#
#   deploy/rabbitmq-cluster.sh start DIR        make DIR, start the nodes, join them into one cluster
#   deploy/rabbitmq-cluster.sh urls DIR         the MSGD_BROKER_URL value (every node, ';'-separated)
#   deploy/rabbitmq-cluster.sh ctl DIR N ARGS   rabbitmqctl against node N (list_queues name leader ...)
#   deploy/rabbitmq-cluster.sh queues|diagnostics DIR N ARGS   rabbitmq-queues, rabbitmq-diagnostics
#   deploy/rabbitmq-cluster.sh kill DIR N       SIGKILL node N, as a crash would
#   deploy/rabbitmq-cluster.sh start-node DIR N start node N again; it rejoins from its data dir
#   deploy/rabbitmq-cluster.sh stop DIR         stop every node gracefully (data kept)
#   deploy/rabbitmq-cluster.sh destroy DIR      SIGKILL every node and delete DIR
#
# Settings for `start` (kept in DIR/cluster.env for the other commands):
#   CLUSTER_NAME=msgdc        nodes are ${CLUSTER_NAME}1@localhost, ${CLUSTER_NAME}2@localhost, ...
#   CLUSTER_SIZE=3
#   CLUSTER_AMQP_PORT=5681    node N listens on 127.0.0.1:(CLUSTER_AMQP_PORT + N - 1), user guest/guest
#   CLUSTER_DIST_PORT=25681   Erlang distribution port of node N: CLUSTER_DIST_PORT + N - 1
#   RABBITMQ_SBIN             where rabbitmq-server and rabbitmqctl are (found automatically)
# Nodes register with the host's epmd (port 4369), as every Erlang node does.
set -euo pipefail

die() { echo "rabbitmq-cluster: $*" >&2; exit 1; }

sbin() {
    if [ -n "${RABBITMQ_SBIN:-}" ]; then echo "$RABBITMQ_SBIN"; return; fi
    # Debian's /usr/sbin wrappers re-run everything as the rabbitmq user with its own HOME,
    # which would lose this cluster's cookie and environment: call the real scripts.
    if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then echo /usr/lib/rabbitmq/bin; return; fi
    local found
    found=$(command -v rabbitmq-server) || die "rabbitmq-server is not installed"
    dirname "$(readlink -f "$found")"
}

load() {
    DIR=$(readlink -f "$1")
    [ -f "$DIR/cluster.env" ] || die "$DIR has no cluster (run: $0 start $1)"
    # shellcheck disable=SC1091
    . "$DIR/cluster.env"
    SBIN=$(sbin)
}

node_name() { echo "${CLUSTER_NAME}$1@localhost"; }

# rabbitmqctl / rabbitmq-queues find the Erlang cookie in $HOME: this cluster's HOME is DIR.
cli() { local tool=$1 n=$2; shift 2; HOME="$DIR" "$SBIN/$tool" -n "$(node_name "$n")" "$@"; }

start_node() {
    local n=$1 d="$DIR/n$1"
    rm -f "$d/pid"
    (
        export HOME="$DIR" \
            RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf" \
            RABBITMQ_NODENAME="$(node_name "$n")" \
            RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
            RABBITMQ_NODE_PORT=$((CLUSTER_AMQP_PORT + n - 1)) \
            RABBITMQ_DIST_PORT=$((CLUSTER_DIST_PORT + n - 1)) \
            RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
            RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config" \
            RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins" \
            RABBITMQ_MNESIA_BASE="$d/mnesia" \
            RABBITMQ_LOG_BASE="$d/log" \
            RABBITMQ_PID_FILE="$d/pid" \
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
            ERL_EPMD_ADDRESS=127.0.0.1
        # Its own session: a Ctrl-C or SIGTERM meant for the caller does not reach the node.
        setsid "$SBIN/rabbitmq-server" >>"$d/stdout" 2>&1 </dev/null &
    )
}

wait_node() {
    local n=$1
    cli rabbitmqctl "$n" wait --timeout 120 "$DIR/n$n/pid" >/dev/null \
        || die "node $(node_name "$n") did not start; see $DIR/n$n/stdout and $DIR/n$n/log"
}

node_pid() { cat "$DIR/n$1/pid" 2>/dev/null || true; }

kill_node() {
    local n=$1 pid
    pid=$(node_pid "$n")
    [ -n "$pid" ] || return 0
    kill -9 "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done  # gone, so its ports are free again
}

cmd_start() {
    [ $# -eq 1 ] || die "usage: $0 start DIR"
    [ ! -e "$1/cluster.env" ] || die "$1 already holds a cluster"
    mkdir -p "$1"
    DIR=$(readlink -f "$1")
    SBIN=$(sbin)
    CLUSTER_NAME=${CLUSTER_NAME:-msgdc}
    CLUSTER_SIZE=${CLUSTER_SIZE:-3}
    CLUSTER_AMQP_PORT=${CLUSTER_AMQP_PORT:-5681}
    CLUSTER_DIST_PORT=${CLUSTER_DIST_PORT:-25681}
    cat >"$DIR/cluster.env" <<EOF
CLUSTER_NAME=$CLUSTER_NAME
CLUSTER_SIZE=$CLUSTER_SIZE
CLUSTER_AMQP_PORT=$CLUSTER_AMQP_PORT
CLUSTER_DIST_PORT=$CLUSTER_DIST_PORT
EOF
    # Every node of a cluster shares one Erlang cookie; this one is private to DIR.
    (umask 077 && head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$DIR/.erlang.cookie")
    chmod 400 "$DIR/.erlang.cookie"
    echo '[].' >"$DIR/enabled_plugins"  # no management plugin: no HTTP ports to collide
    : >"$DIR/rabbitmq-env.conf"         # not the host's /etc/rabbitmq/rabbitmq-env.conf
    local n
    for n in $(seq 1 "$CLUSTER_SIZE"); do
        mkdir -p "$DIR/n$n"
        cat >"$DIR/n$n/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$((CLUSTER_AMQP_PORT + n - 1))
# A node cut off from the majority stops serving instead of diverging.
cluster_partition_handling = pause_minority
EOF
        start_node "$n"
    done
    for n in $(seq 1 "$CLUSTER_SIZE"); do wait_node "$n"; done
    for n in $(seq 2 "$CLUSTER_SIZE"); do
        cli rabbitmqctl "$n" stop_app >/dev/null
        cli rabbitmqctl "$n" join_cluster "$(node_name 1)" >/dev/null
        cli rabbitmqctl "$n" start_app >/dev/null
    done
    cli rabbitmqctl 1 await_online_nodes "$CLUSTER_SIZE" --timeout 120 >/dev/null
    echo "cluster of $CLUSTER_SIZE nodes running in $DIR"
    cmd_urls "$DIR"
}

cmd_urls() {
    load "$1"
    local n urls=""
    for n in $(seq 1 "$CLUSTER_SIZE"); do
        urls="$urls${urls:+;}amqp://guest:guest@127.0.0.1:$((CLUSTER_AMQP_PORT + n - 1))//"
    done
    echo "$urls"
}

cmd_stop() {
    load "$1"
    local n
    for n in $(seq 1 "$CLUSTER_SIZE"); do
        if [ -n "$(node_pid "$n")" ] && kill -0 "$(node_pid "$n")" 2>/dev/null; then
            cli rabbitmqctl "$n" stop --timeout 60 "$DIR/n$n/pid" >/dev/null || kill_node "$n"
        fi
    done
}

cmd_destroy() {
    [ -f "$1/cluster.env" ] || { rm -rf "$1"; return; }
    load "$1"
    local n
    for n in $(seq 1 "$CLUSTER_SIZE"); do kill_node "$n"; done
    rm -rf "$DIR"
}

main() {
    [ $# -ge 2 ] || { sed -n '2,22p' "$0"; exit 2; }
    local cmd=$1
    shift
    case "$cmd" in
        start) cmd_start "$@" ;;
        urls) cmd_urls "$1" ;;
        stop) cmd_stop "$1" ;;
        destroy) cmd_destroy "$1" ;;
        kill) load "$1"; kill_node "$2" ;;
        start-node) load "$1"; start_node "$2"; wait_node "$2" ;;
        ctl) load "$1"; n=$2; shift 2; cli rabbitmqctl "$n" "$@" ;;
        queues) load "$1"; n=$2; shift 2; cli rabbitmq-queues "$n" "$@" ;;
        diagnostics) load "$1"; n=$2; shift 2; cli rabbitmq-diagnostics "$n" "$@" ;;
        *) die "unknown command $cmd" ;;
    esac
}

main "$@"

#!/usr/bin/env bash
# SMTP intake benchmark: Postfix's smtp-source against `waybill serve` and, in the same run,
# against a private Postfix that discards what it accepts (it still fsyncs each message before
# its 250, as always). Prints messages per second for each workload and the ratio.
#
# Builds nothing. The waybill binary: $WAYBILL, else $(swift build -c release --show-bin-path)/waybill.
# Needs: smtp-source and postfix (Debian package postfix), python3 (to find free ports). Run as root
# (the private Postfix runs as the postfix user from its own config, queue and data directories
# under a temporary folder; a system Postfix is not touched). Everything is removed on exit.
#
#   Benchmarks/bench-smtp.sh                     # the three workloads of the issue
#   BENCH_WORKLOADS="-s 1 -m 200 -l 1000" Benchmarks/bench-smtp.sh   # one quick workload
#   BENCH_DIR=/var/tmp Benchmarks/bench-smtp.sh  # where the spools go (keep both on one disk)
#   BENCH_REPEAT=3 Benchmarks/bench-smtp.sh      # each workload 3 times, alternating (shared disks are noisy)
#
# BENCH_LISTENER=path/to/WaybillPackageTests.xctest adds a column for the SMTP listener alone (the
# SMTPBenchmarkHarness test: same server and spool, each message removed at once as Postfix's
# discard does, no routing behind it), to tell the listener's cost from the worker's. Build it with
#   swift build -c release --build-tests -Xswiftc -enable-testing
set -euo pipefail

cd "$(dirname "$0")/.."
WAYBILL=${WAYBILL:-$(swift build -c release --show-bin-path)/waybill}
if [[ ! -x $WAYBILL ]]; then
    echo "bench-smtp: no waybill binary at $WAYBILL (swift build -c release, or set WAYBILL)" >&2
    exit 1
fi
for tool in smtp-source postfix postconf python3; do
    command -v "$tool" >/dev/null || { echo "bench-smtp: $tool is missing (apt-get install postfix python3)" >&2; exit 1; }
done
SMTP_SOURCE=$(command -v smtp-source)

WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/bench-smtp.XXXXXX")
chmod 755 "$WORK"  # the postfix user must reach its queue inside
PF_CONF=$WORK/postfix-conf
WAYBILL_PID=
LISTENER_PID=

cleanup() {
    set +e
    [[ -n $WAYBILL_PID ]] && kill "$WAYBILL_PID" 2>/dev/null && wait "$WAYBILL_PID" 2>/dev/null
    [[ -n $LISTENER_PID ]] && touch "$WORK/listener/stop" && wait "$LISTENER_PID" 2>/dev/null
    [[ -f $PF_CONF/main.cf ]] && postfix -c "$PF_CONF" stop >/dev/null 2>&1
    # postfix stop returns before master has exited; wait for it so the queue can be removed.
    local pidfile=$WORK/postfix-queue/pid/master.pid
    for _ in $(seq 50); do
        [[ -f $pidfile ]] && kill -0 "$(tr -d ' ' <"$pidfile")" 2>/dev/null || break
        sleep 0.1
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_banner() {  # port: until something answers 220
    for _ in $(seq 100); do
        if python3 - "$1" <<'EOF' 2>/dev/null; then return 0; fi
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
assert s.recv(512).startswith(b"220")
s.sendall(b"QUIT\r\n")
EOF
        sleep 0.1
    done
    echo "bench-smtp: nothing answers on port $1" >&2
    return 1
}

# --- a private Postfix that accepts scan@localhost and discards it after the queue ---
PF_PORT=$(free_port)
mkdir -p "$PF_CONF"
cp /etc/postfix/master.cf "$PF_CONF/master.cf"
cat >"$PF_CONF/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $WORK/postfix-queue
data_directory = $WORK/postfix-data
command_directory = $(postconf -dh command_directory)
daemon_directory = $(postconf -dh daemon_directory)
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-bench
maillog_file = $WORK/postfix.log
maillog_file_prefixes = $WORK
myhostname = localhost
mydomain = localdomain
mydestination = localhost
local_recipient_maps =
alias_maps =
alias_database =
local_transport = discard
default_transport = discard
relay_transport = discard
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
biff = no
EOF
# Only our loopback port, and no chroot (the temporary queue holds no copy of /etc).
sed -i "s/^smtp \{1,\}inet /127.0.0.1:$PF_PORT inet /" "$PF_CONF/master.cf"
postconf -c "$PF_CONF" -F '*/*/chroot = n'
mkdir -p "$WORK/postfix-queue" "$WORK/postfix-data"
chown postfix "$WORK/postfix-data"
# postfix reports its errors to the log file (it writes to stderr only on a terminal).
if ! postfix -c "$PF_CONF" check || ! postfix -c "$PF_CONF" start >/dev/null; then
    echo "bench-smtp: the private Postfix did not start:" >&2
    tail -5 "$WORK/postfix.log" >&2
    exit 1
fi
wait_for_banner "$PF_PORT"

# --- waybill serve, with the default routing rules (they accept scan@localhost) ---
WB_PORT=$(free_port)
# No greeting pause: smtp-source opens a connection per message, and Postfix pauses for nobody
# either (postscreen is off by default). Everything else, durability included, is as shipped.
WAYBILL_GREETING_DELAY=0 "$WAYBILL" serve --data-dir "$WORK/waybill-data" --smtp-host 127.0.0.1 --smtp-port "$WB_PORT" \
    >"$WORK/waybill.log" 2>&1 &
WAYBILL_PID=$!
for _ in $(seq 200); do
    grep -q "listening on" "$WORK/waybill.log" && break
    kill -0 "$WAYBILL_PID" 2>/dev/null || { cat "$WORK/waybill.log" >&2; exit 1; }
    sleep 0.1
done
wait_for_banner "$WB_PORT"

if [[ -n ${BENCH_LISTENER:-} ]]; then
    LISTENER_PORT=$(free_port)
    mkdir -p "$WORK/listener"
    WAYBILL_SMTP_HARNESS=$WORK/listener:$LISTENER_PORT "$BENCH_LISTENER" --testing-library swift-testing \
        --filter SMTPBenchmarkHarness >"$WORK/listener.log" 2>&1 &
    LISTENER_PID=$!
    wait_for_banner "$LISTENER_PORT"
fi

# messages per second of one smtp-source run: workload options, port
rate() {
    local options=$1 port=$2 messages start end
    messages=$(sed -n 's/.*-m \([0-9]*\).*/\1/p' <<<"$options")
    # The previous run's dirty pages (either server's) are written back now, not during this one.
    sync
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$SMTP_SOURCE" $options -f scanner@example.com -t scan@localhost "127.0.0.1:$port" >&2
    end=$(date +%s.%N)
    python3 -c "print(f'{$messages / ($end - $start):.0f}')"
}

# waybill serve routes what it accepted after the 250s (as Postfix delivers after its own): let
# that backlog finish before the next run, so it does not slow the next server measured.
drain_waybill() {
    local accepted routed
    for _ in $(seq 1200); do
        accepted=$(grep -c "accepted message" "$WORK/waybill.log" || true)
        routed=$(grep -c "message routed\|could not be routed" "$WORK/waybill.log" || true)
        [[ $routed -ge $accepted ]] && return 0
        sleep 0.1
    done
    echo "bench-smtp: waybill still routing after 120 s ($routed of $accepted)" >&2
}

# The same for Postfix: its discard deliveries and queue-file removals after the 250s must not
# overlap the next server's run either (its queue directories empty).
drain_postfix() {
    for _ in $(seq 1200); do
        [[ -z $(find "$WORK/postfix-queue/maildrop" "$WORK/postfix-queue/incoming" "$WORK/postfix-queue/active" \
            "$WORK/postfix-queue/deferred" -type f -print -quit 2>/dev/null) ]] && return 0
        sleep 0.1
    done
    echo "bench-smtp: postfix still delivering after 120 s" >&2
}

# An untimed warm-up for both, as for any benchmark: Postfix starts its smtpd, cleanup and
# trivial-rewrite processes on the first connections, waybill makes its first spool files.
"$SMTP_SOURCE" -s 1 -m 200 -l 1000 -f scanner@example.com -t scan@localhost "127.0.0.1:$PF_PORT" >&2
"$SMTP_SOURCE" -s 1 -m 200 -l 1000 -f scanner@example.com -t scan@localhost "127.0.0.1:$WB_PORT" >&2
drain_postfix
drain_waybill

IFS=';' read -r -a WORKLOADS <<<"${BENCH_WORKLOADS:--s 1 -m 1000 -l 1000;-s 10 -m 2000 -l 1000;-s 10 -m 300 -l 500000}"
header=$(printf '%-26s %10s %10s %7s' "workload" "postfix/s" "waybill/s" "ratio")
[[ -n ${BENCH_LISTENER:-} ]] && header+=$(printf ' %11s %7s' "listener/s" "ratio")
echo "$header"
for workload in "${WORKLOADS[@]}"; do
    for _ in $(seq "${BENCH_REPEAT:-1}"); do
        postfix_rate=$(rate "$workload" "$PF_PORT")
        drain_postfix
        [[ -n ${BENCH_LISTENER:-} ]] && listener_rate=$(rate "$workload" "$LISTENER_PORT")
        waybill_rate=$(rate "$workload" "$WB_PORT")
        drain_waybill
        line=$(printf '%-26s %10s %10s %7s' "$workload" "$postfix_rate" "$waybill_rate" \
            "$(python3 -c "print(f'{$waybill_rate / $postfix_rate:.2f}')")")
        if [[ -n ${BENCH_LISTENER:-} ]]; then
            line+=$(printf ' %11s %7s' "$listener_rate" "$(python3 -c "print(f'{$listener_rate / $postfix_rate:.2f}')")")
        fi
        echo "$line"
    done
done
if grep -q "could not spool" "$WORK/waybill.log"; then
    echo "bench-smtp: waybill reported spool errors:" >&2
    grep "could not spool" "$WORK/waybill.log" | head -5 >&2
    exit 1
fi

#!/usr/bin/env bash
# SMTP acceptance benchmark: Postfix's smtp-source against Postern's smtpd
# and against Postfix 3.7 (the bench kit's anchor) on this machine, in the
# same run, alternating. Each figure is the median of RUNS; each ratio is
# Postern / Postfix (above 1 = Postern accepts more messages per second).
#
# Both sides are durable: a 250 means the queue file is fsynced (Postfix's
# stock settings; Postern's cleanup fsyncs file and directory), and both
# deliver what they accept to a Maildir with the same agent and limits:
# local(8) with local_destination_concurrency_limit = 2 (Postfix's
# default, on both sides). Postern runs its own instance under
# var/accept/ (port ACCEPT_PORT, an alias to a Maildir, as smtp-drain);
# with ACCEPT_AGENT=virtual it measures `make run` instead, which
# delivers through virtual(8) at up to 20 deliveries at once (the
# anchor has no virtual domain, so that is not the same work: those
# deliveries share the CPU with the timed intake). A run is timed until smtp-source
# has its last 250; the next run starts once every message of this one is
# in the Maildir, so one server's deliveries never share the machine with
# the other's timed run. The Maildirs are emptied at the end only (see
# watch_start in bench/lib.sh). Needs root: the kit installs and runs
# Postfix.
#
#   bench/smtp-accept.sh            sizes 1024 65536, sessions 1 10 50
#   ACCEPT_MSGS=2000 RUNS=3 SIZES="1024" SESSIONS="10" bench/smtp-accept.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
kit=${BENCH_KIT:-$here/../shared/bench}
. "$kit/env.sh"
. "$here/bench/lib.sh"
: "${ACCEPT_MSGS:=2000}" "${RUNS:=3}" "${SIZES:=1024 65536}" "${SESSIONS:=1 10 50}"
target_port=${TARGET_SMTP_PORT}
anchor_port=${ANCHOR_SMTP_PORT}

[ "$(id -u)" = 0 ] || { echo "smtp-accept: needs root (the bench kit runs Postfix)" >&2; exit 77; }
: "${ACCEPT_AGENT:=local}" "${ACCEPT_PORT:=2725}"
start_anchor
cd "$here"
make -s build PROFILE=release
if [ "$ACCEPT_AGENT" = virtual ]; then
    (exec setsid make -s run PROFILE=release) > /tmp/postern-bench-run.log 2>&1 &
    target_pid=$!
    target_rcpt=$TARGET_USER@$TARGET_DOMAIN
    for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$target_port") 2>/dev/null && break; sleep 0.2; done
else
    work=$here/var/accept
    set_aside "$here/var/.bench-trash" "$work"
    mkdir -p "$work/Maildir/new" "$work/Maildir/cur" "$work/Maildir/tmp"
    echo "accept: $work/Maildir/" > "$work/aliases"
    target_port=$ACCEPT_PORT
    target_rcpt=accept@localhost
    TARGET_MAILDIR=$work/Maildir
    start_postern "$work" "$here/target/release" "$target_port" "alias_maps = \"texthash:$work/aliases\""
fi
cleanup() {
    stop_postern
    [ -n "$started_anchor" ] && "$kit/anchors.sh" stop postfix
    clear_aside
}
trap cleanup EXIT

# One timed run: prints messages per second.
run() {
    local port=$1 size=$2 sessions=$3 rcpt=$4
    local t0 t1
    t0=$(date +%s.%N)
    smtp-source -d -s "$sessions" -m "$ACCEPT_MSGS" -l "$size" -f "bench@client.example" \
        -t "$rcpt" "127.0.0.1:$port" >/dev/null
    t1=$(date +%s.%N)
    python3 -c "print(round($ACCEPT_MSGS / ($t1 - $t0), 1))"
}
median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

set_aside "$here/var/.bench-trash" "$TARGET_MAILDIR/new"
set_aside "$BENCH_ROOT/.bench-trash" "$ANCHOR_MAILDIR/new"
wait_aged
echo "# smtp-accept: $ACCEPT_MSGS messages per run, median of $RUNS, 1 discarded warm-up, Postern delivering with $ACCEPT_AGENT(8)"
for size in $SIZES; do
    for sessions in $SESSIONS; do
        a=() t=()
        for r in $(seq 0 "$RUNS"); do
            watch_start "$ANCHOR_MAILDIR" "$ACCEPT_MSGS"
            x=$(run "$anchor_port" "$size" "$sessions" "$ANCHOR_USER@$ANCHOR_DOMAIN")
            watch_end
            watch_start "$TARGET_MAILDIR" "$ACCEPT_MSGS"
            y=$(run "$target_port" "$size" "$sessions" "$target_rcpt")
            watch_end
            echo "  run $r size=$size sessions=$sessions postfix=$x postern=$y" >&2
            [ "$r" -gt 0 ] && a+=("$x") && t+=("$y")
        done
        ma=$(echo "${a[*]}" | median)
        mt=$(echo "${t[*]}" | median)
        ratio=$(python3 -c "print(round($mt / $ma, 2))")
        echo "bench smtp-accept size=$size sessions=$sessions postfix_per_s=$ma postern_per_s=$mt ratio=$ratio"
    done
done
set_aside "$here/var/.bench-trash" "$TARGET_MAILDIR/new"
set_aside "$BENCH_ROOT/.bench-trash" "$ANCHOR_MAILDIR/new"

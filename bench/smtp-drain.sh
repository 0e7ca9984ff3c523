#!/usr/bin/env bash
# End-to-end drain benchmark: SMTP in, local(8) delivery into a Maildir.
# smtp-source sends DRAIN_MSGS messages to Postern (smtpd -> cleanup ->
# qmgr -> local, an alias to a Maildir) and to Postfix 3.7 (the bench
# kit's anchor: local(8) with home_mailbox = Maildir/), alternating in one
# run; each run is timed from the first connection until the last message
# is in Maildir/new/. Prints the median messages/s and drain seconds of
# each side and their ratio (Postern / Postfix: above 1 = Postern drains
# more messages per second).
#
# Both sides are durable (fsync before 250, fsync of each Maildir file).
# The Maildirs are emptied at the end only (see watch_start in
# bench/lib.sh).
# Postern runs its release build (DRAIN_PROFILE) from its own configuration under
# var/drain/ (port DRAIN_PORT), so it does not disturb a `make run`.
# Needs root: the kit installs and runs Postfix. Check it quickly (debug
# build, a few messages) with
#
#   DRAIN_MSGS=200 RUNS=1 DRAIN_PROFILE=debug bench/smtp-drain.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
kit=${BENCH_KIT:-$here/../shared/bench}
. "$kit/env.sh"
. "$here/bench/lib.sh"
: "${DRAIN_MSGS:=10000}" "${RUNS:=3}" "${DRAIN_SESSIONS:=20}"
: "${DRAIN_PORT:=2625}" "${DRAIN_TIMEOUT:=900}" "${DRAIN_PROFILE:=release}"

[ "$(id -u)" = 0 ] || { echo "smtp-drain: needs root (the bench kit runs Postfix)" >&2; exit 77; }
command -v smtp-source >/dev/null || { echo "smtp-drain: smtp-source (Debian postfix) not found" >&2; exit 69; }
start_anchor
cd "$here"
make -s build PROFILE="$DRAIN_PROFILE"

# Postern's own configuration: the development one, with drain@localhost
# aliased to a Maildir (delivered by local(8)).
work=$here/var/drain
bin=$here/target/$DRAIN_PROFILE
set_aside "$here/var/.bench-trash" "$work"
set_aside "$BENCH_ROOT/.bench-trash" "$ANCHOR_MAILDIR/new"
wait_aged
mkdir -p "$work/Maildir"
echo "drain: $work/Maildir/" > "$work/aliases"
cleanup() {
    stop_postern
    if [ -n "$started_anchor" ]; then "$kit/anchors.sh" stop postfix; fi
    clear_aside
}
trap cleanup EXIT
start_postern "$work" "$bin" "$DRAIN_PORT" "alias_maps = \"texthash:$work/aliases\""

# One timed run against PORT delivering into MAILDIR: prints
# "messages_per_s drain_s".
run() {
    local port=$1 rcpt=$2 maildir=$3
    local t0 t1
    watch_start "$maildir" "$DRAIN_MSGS" "$DRAIN_TIMEOUT" || exit 1
    t0=$(date +%s.%N)
    # -d: each session sends its share over one connection.
    smtp-source -d -s "$DRAIN_SESSIONS" -m "$DRAIN_MSGS" \
        -l "$MSG_SIZE" -f "bench@client.example" -t "$rcpt" "127.0.0.1:$port" >/dev/null
    watch_end || exit 1
    t1=$watch_time
    python3 -c "d = $t1 - $t0; print(round($DRAIN_MSGS / d, 1), round(d, 2))"
}
median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "# smtp-drain: $DRAIN_MSGS messages of $MSG_SIZE bytes, $DRAIN_SESSIONS sessions, median of $RUNS, 1 discarded warm-up"
ar=() as=() tr_=() ts=()
for r in $(seq 0 "$RUNS"); do
    read -r ax ay < <(run "$ANCHOR_SMTP_PORT" "$ANCHOR_USER@$ANCHOR_DOMAIN" "$ANCHOR_MAILDIR")
    read -r tx ty < <(run "$DRAIN_PORT" "drain@localhost" "$work/Maildir")
    echo "  run $r postfix: ${ax}/s ${ay}s  postern: ${tx}/s ${ty}s" >&2
    if [ "$r" -gt 0 ]; then ar+=("$ax"); as+=("$ay"); tr_+=("$tx"); ts+=("$ty"); fi
done
ma=$(echo "${ar[*]}" | median); mas=$(echo "${as[*]}" | median)
mt=$(echo "${tr_[*]}" | median); mts=$(echo "${ts[*]}" | median)
ratio=$(python3 -c "print(round($mt / $ma, 2))")
echo "bench smtp-drain msgs=$DRAIN_MSGS postfix_per_s=$ma postfix_drain_s=$mas postern_per_s=$mt postern_drain_s=$mts ratio=$ratio"
set_aside "$BENCH_ROOT/.bench-trash" "$ANCHOR_MAILDIR/new"

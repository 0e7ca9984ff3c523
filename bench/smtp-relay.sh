#!/usr/bin/env bash
# Outbound relay benchmark: SMTP in, the smtp(8) client out to a sink.
# smtp-source sends RELAY_MSGS messages for RELAY_DOMAIN to Postern and to
# Postfix 3.7 (the bench kit's anchor), alternating in one run; both
# route that domain with transport_maps to Postfix's smtp-sink on
# RELAY_SINK_HOST:RELAY_SINK_PORT (127.0.0.2:2726; a fresh sink per run, counting messages
# with -c). Each run is timed from the first connection until the sink
# has every message. Prints the median messages/s and seconds of each
# side and their ratio (Postern / Postfix: above 1 = Postern relays more
# messages per second). No TLS on either side (Postfix's default; the
# sink offers none).
#
# The anchor's configuration: the kit's setup-anchors.sh writes its
# main.cf afresh; this script then adds one transport_maps entry for
# RELAY_DOMAIN with `postconf -e`, reloads, and removes the entry again
# on exit (setup-anchors.sh would also drop it on its next run). Nothing
# else of the anchor changes, so the other suites see the stock anchor.
#
# Postern runs its release build (RELAY_PROFILE) from its own
# configuration under var/relay/ (port RELAY_PORT), so it does not
# disturb a `make run`. Needs root (the kit runs Postfix). Check it
# quickly with
#
#   RELAY_MSGS=200 RUNS=1 RELAY_PROFILE=debug bench/smtp-relay.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
kit=${BENCH_KIT:-$here/../shared/bench}
. "$kit/env.sh"
. "$here/bench/lib.sh"
: "${RELAY_MSGS:=10000}" "${RUNS:=3}" "${RELAY_SESSIONS:=20}"
: "${RELAY_PORT:=2725}" "${RELAY_SINK_PORT:=2726}" "${RELAY_TIMEOUT:=900}"
# The sink is not on 127.0.0.1: Postern's smtp(8) treats a next hop at one
# of its own inet_interfaces addresses as a mail loop on any port (Postfix
# only on port 25).
: "${RELAY_SINK_HOST:=127.0.0.2}"
: "${RELAY_PROFILE:=release}" "${RELAY_DOMAIN:=relay.bench.test}"

[ "$(id -u)" = 0 ] || { echo "smtp-relay: needs root (the bench kit runs Postfix)" >&2; exit 77; }
for p in smtp-source smtp-sink; do
    command -v "$p" >/dev/null || { echo "smtp-relay: $p (Debian postfix) not found" >&2; exit 69; }
done
start_anchor
route="inline:{ $RELAY_DOMAIN=smtp:[$RELAY_SINK_HOST]:$RELAY_SINK_PORT }"
postconf -c "$PF_CONF" -e "transport_maps = $route"
postfix -c "$PF_CONF" reload >/dev/null 2>&1
cd "$here"
make -s build PROFILE="$RELAY_PROFILE"

# Postern's own configuration: the development one, relaying
# RELAY_DOMAIN to the sink.
work=$here/var/relay
bin=$here/target/$RELAY_PROFILE
set_aside "$here/var/.bench-trash" "$work"
wait_aged
sink_pid=
cleanup() {
    [ -z "$sink_pid" ] || kill "$sink_pid" 2>/dev/null || true
    stop_postern
    postconf -c "$PF_CONF" -X transport_maps || true
    if [ -n "$started_anchor" ]; then
        "$kit/anchors.sh" stop postfix
    else
        postfix -c "$PF_CONF" reload >/dev/null 2>&1 || true
    fi
    clear_aside
}
trap cleanup EXIT
start_postern "$work" "$bin" "$RELAY_PORT" "transport_maps = \"$route\""

# Messages the sink has taken so far (its -c counter: "sess=N quit=N mesg=N").
received() {
    tr '\r' '\n' < "$work/sink.out" | awk -F'mesg=' 'NF > 1 { n = $2 + 0 } END { print n + 0 }'
}

# One timed run against PORT: prints "messages_per_s seconds".
run() {
    local port=$1
    smtp-sink -u nobody -c "$RELAY_SINK_HOST:$RELAY_SINK_PORT" 256 > "$work/sink.out" 2>&1 &
    sink_pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/$RELAY_SINK_HOST/$RELAY_SINK_PORT") 2>/dev/null && break; sleep 0.05; done
    # That probe counted a session, not a message.
    local t0 t1 n
    t0=$(date +%s.%N)
    smtp-source -d -s "$RELAY_SESSIONS" -m "$RELAY_MSGS" \
        -l "$MSG_SIZE" -f "bench@client.example" -t "bench@$RELAY_DOMAIN" "127.0.0.1:$port" >/dev/null
    local deadline=$((SECONDS + RELAY_TIMEOUT))
    while n=$(received); [ "$n" -lt "$RELAY_MSGS" ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "smtp-relay: the sink has only $n of $RELAY_MSGS messages after ${RELAY_TIMEOUT}s" >&2
            kill "$sink_pid" 2>/dev/null || true
            exit 1
        fi
        sleep 0.05
    done
    t1=$(date +%s.%N)
    kill "$sink_pid" 2>/dev/null || true
    wait "$sink_pid" 2>/dev/null || true
    sink_pid=
    python3 -c "d = $t1 - $t0; print(round($RELAY_MSGS / d, 1), round(d, 2))"
}
median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "# smtp-relay: $RELAY_MSGS messages of $MSG_SIZE bytes, $RELAY_SESSIONS sessions in, to smtp-sink, median of $RUNS, 1 discarded warm-up"
ar=() as=() tr_=() ts=()
for r in $(seq 0 "$RUNS"); do
    read -r ax ay < <(run "$ANCHOR_SMTP_PORT")
    read -r tx ty < <(run "$RELAY_PORT")
    echo "  run $r postfix: ${ax}/s ${ay}s  postern: ${tx}/s ${ty}s" >&2
    if [ "$r" -gt 0 ]; then ar+=("$ax"); as+=("$ay"); tr_+=("$tx"); ts+=("$ty"); fi
done
ma=$(echo "${ar[*]}" | median); mas=$(echo "${as[*]}" | median)
mt=$(echo "${tr_[*]}" | median); mts=$(echo "${ts[*]}" | median)
ratio=$(python3 -c "print(round($mt / $ma, 2))")
echo "bench smtp-relay msgs=$RELAY_MSGS postfix_per_s=$ma postfix_relay_s=$mas postern_per_s=$mt postern_relay_s=$mts ratio=$ratio"

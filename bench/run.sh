#!/usr/bin/env bash
# Benchmarks: Postern side by side with Postfix, Dovecot and INN on this
# machine, in one run, through the shared bench kit (../shared/bench, or
# BENCH_KIT). Needs root (the kit installs and starts the anchors).
#
#   bench/run.sh SUITE...     SUITE: smtp-accept (bench/smtp-accept.sh),
#                             smtp-drain (bench/smtp-drain.sh: SMTP to a
#                             Maildir through local(8), 10,000 messages),
#                             smtp-relay (bench/smtp-relay.sh: SMTP in, the
#                             smtp client out to smtp-sink, 10,000 messages), or
#                             smtp pop3 imap nntp (the kit's compare.sh)
#
# Postern is started by the kit with `make run PROFILE=release` and stopped
# afterwards. Each suite prints the medians of both sides and their ratio.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
kit=${BENCH_KIT:-$here/../shared/bench}
if [ $# -eq 0 ]; then
    set -- smtp-accept
fi
# Our own suites run one by one; the rest go to the kit's compare.sh.
# What they set aside is deleted once, after the last (bench/lib.sh).
rest=()
ours=
for suite in "$@"; do
    case $suite in
    smtp-accept | smtp-drain | smtp-relay)
        BENCH_DEFER_CLEAR=1 BENCH_KIT=$kit "$(dirname "$0")/$suite.sh"
        ours=1
        ;;
    *) rest+=("$suite") ;;
    esac
done
if [ -n "$ours" ]; then
    (. "$kit/env.sh" && rm -rf "$here/var/.bench-trash" "$BENCH_ROOT/.bench-trash" && touch "$BENCH_ROOT/.bench-deleted")
fi
[ ${#rest[@]} -gt 0 ] || exit 0
set -- "${rest[@]}"
if [ ! -x "$kit/compare.sh" ]; then
    echo "bench: bench kit not found at $kit (set BENCH_KIT)" >&2
    exit 69
fi
if [ "$(id -u)" != 0 ]; then
    echo "bench: the bench kit needs root (it installs and runs Postfix, Dovecot, INN)" >&2
    exit 77
fi
cd "$here"
make build PROFILE=release
export POSTERN_DIR="$here"
export TARGET_START="${TARGET_START:-make run PROFILE=release}"
exec "$kit/compare.sh" "$@"

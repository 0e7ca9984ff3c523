#!/usr/bin/env bash
# Benchmarks: Postern side by side with Postfix, Dovecot and INN on this
# machine, in one run, through the shared bench kit (../shared/bench, or
# BENCH_KIT). Needs root (the kit installs and starts the anchors).
#
#   bench/run.sh SUITE...     SUITE: smtp pop3 imap nntp (see the kit's README)
#
# Postern is started by the kit with `make run PROFILE=release` and stopped
# afterwards. Each suite prints the medians of both sides and their ratio.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
kit=${BENCH_KIT:-$here/../shared/bench}
if [ $# -eq 0 ]; then
    echo "bench: no suites given; available once their services exist: smtp pop3 imap nntp" >&2
    echo "usage: make bench BENCH_SUITES='smtp imap'" >&2
    exit 64
fi
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

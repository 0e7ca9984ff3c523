# Shared by the bench scripts (sourced): the Postfix anchor and a Postern
# instance of their own under var/NAME.

# Starts the kit's Postfix anchor unless it runs; sets started_anchor.
start_anchor() {
    "$kit/setup-anchors.sh" >/dev/null
    started_anchor=
    if "$kit/anchors.sh" status postfix | grep -q stopped; then
        "$kit/anchors.sh" start postfix
        started_anchor=1
    fi
}

# start_postern WORK BIN PORT EXTRA: writes WORK/etc from the development
# configuration (smtpd on 127.0.0.1:PORT, spool and log under WORK, the
# main.toml lines EXTRA added), starts master from BIN in its own process
# group (target_pid) and waits until smtpd answers.
start_postern() {
    local work=$1 bin=$2 port=$3 extra=$4
    mkdir -p "$work/etc"
    chmod 755 "$(dirname "$work")" "$work"
    cat > "$work/etc/main.toml" <<CONF
myhostname = "mail.example.test"
mydomain = "example.test"
mydestination = "localhost"
mynetworks = "127.0.0.1/32"
inet_interfaces = "127.0.0.1"
development_mode = true
maillog_file = "$work/maillog"
queue_directory = "$work/spool"
daemon_directory = "$bin"
command_directory = "$bin"
$extra
CONF
    sed "s/127.0.0.1:2525/127.0.0.1:$port/" etc/dev/master.toml > "$work/etc/master.toml"
    (exec setsid "$bin/master" -c "$work/etc") > "$work/master.out" 2>&1 &
    target_pid=$!
    for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
}

# Stops what start_postern started.
stop_postern() {
    kill -TERM -- "-$target_pid" 2>/dev/null || true
    wait "$target_pid" 2>/dev/null || true
}

# set_aside TRASH DIR...: moves each directory (a Maildir's new/, an
# instance's work directory) into the directory TRASH (same file system)
# and makes it again, empty, with the same owner and mode, so that both
# servers start from empty Maildirs without a mass deletion right before
# their runs (see watch_start). clear_aside, at exit, deletes the trash
# and stamps the time; wait_aged, at the start of a bench, waits until the
# last such deletion is 305 s old. bench/run.sh sets BENCH_DEFER_CLEAR
# and clears once after all its suites.
set_aside() {
    local trash=$1 d owner mode
    shift
    mkdir -p "$trash"
    aside+=("$trash")
    for d in "$@"; do
        [ -d "$d" ] || continue
        owner=$(stat -c %u:%g "$d")
        mode=$(stat -c %a "$d")
        mv "$d" "$trash/$(basename "$d").$$.$RANDOM"
        mkdir "$d"
        chown "$owner" "$d"
        chmod "$mode" "$d"
    done
}
aside=()
bench_stamp=$BENCH_ROOT/.bench-deleted
clear_aside() {
    [ -z "${BENCH_DEFER_CLEAR:-}" ] || return 0
    local t
    for t in "${aside[@]}"; do rm -rf "$t"; done
    [ ${#aside[@]} -eq 0 ] || touch "$bench_stamp"
}
wait_aged() {
    [ -e "$bench_stamp" ] || return 0
    local age=$(($(date +%s) - $(stat -c %Y "$bench_stamp")))
    if [ "$age" -lt 305 ]; then
        echo "bench: waiting $((305 - age)) s for the last bench's deletions to age (see bench/lib.sh)" >&2
        sleep $((305 - age))
    fi
}

# watch_start MAILDIR COUNT [TIMEOUT]: starts bench/maildir-wait.py on
# MAILDIR and returns once it watches; watch_end then waits until COUNT
# more messages are in MAILDIR/new and sets watch_time to the time of the
# last one (not in a subshell: it waits for the watcher).
# Runs do not empty the Maildirs (the scripts do at their end): on ext4
# without a journal (this VM's disk) a new inode costs a scan past every
# inode of its group freed in the last 5 s (300 s while the inode table
# block is dirty), so an `rm` of thousands of messages before a run makes
# every delivery of either server pay for the benchmark's own cleanup.
watch_start() {
    watch_out=$(mktemp)
    python3 "$here/bench/maildir-wait.py" "$1" "$2" "${3:-600}" > "$watch_out" &
    watch_pid=$!
    until grep -q ready "$watch_out"; do
        kill -0 "$watch_pid" 2>/dev/null || return 1
        sleep 0.01
    done
}
watch_end() {
    local rc=0
    wait "$watch_pid" || rc=1
    watch_time=$(tail -n 1 "$watch_out")
    rm -f "$watch_out"
    return $rc
}

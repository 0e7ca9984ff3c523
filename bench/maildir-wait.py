#!/usr/bin/env python3
"""Waits until COUNT new messages have arrived in MAILDIR/new.

    maildir-wait.py MAILDIR COUNT TIMEOUT

Prints "ready" once it watches the directory (start the load after that),
then, when COUNT messages more than at the start are there, the time of
the last arrival (seconds since the epoch) and exits 0; exits 1 after
TIMEOUT seconds. Counts inotify events (a file linked or renamed into
new/) instead of listing the directory again and again: a list of tens of
thousands of names every few milliseconds would cost the servers under
test a good part of a core. If the kernel's event queue overflows, it
counts the directory instead, every 0.1 s.
"""
import ctypes
import os
import select
import struct
import sys
import time

IN_CREATE = 0x100
IN_MOVED_TO = 0x80
IN_Q_OVERFLOW = 0x4000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
EVENT = struct.Struct("iIII")


def count(new_dir):
    with os.scandir(new_dir) as it:
        return sum(1 for e in it if not e.name.startswith("."))


def main():
    maildir, want, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    new_dir = os.path.join(maildir, "new")
    os.makedirs(new_dir, exist_ok=True)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0 or libc.inotify_add_watch(fd, new_dir.encode(), IN_CREATE | IN_MOVED_TO) < 0:
        sys.exit(f"maildir-wait: inotify on {new_dir}: {os.strerror(ctypes.get_errno())}")
    target = count(new_dir) + want
    print("ready", flush=True)
    seen = target - want
    overflowed = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if overflowed:
            if count(new_dir) >= target:
                break
            time.sleep(0.1)
            continue
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            buf = os.read(fd, 65536)
        except BlockingIOError:
            continue
        at = 0
        while at < len(buf):
            _, mask, _, name_len = EVENT.unpack_from(buf, at)
            at += EVENT.size + name_len
            if mask & IN_Q_OVERFLOW:
                overflowed = True
            elif mask & (IN_CREATE | IN_MOVED_TO):
                seen += 1
        if seen >= target:
            break
    else:
        print(f"maildir-wait: {want} messages not all in {new_dir} after {timeout}s", file=sys.stderr)
        sys.exit(1)
    print(f"{time.time():.6f}", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Open many connections to a UNIX socket, each with a half-sent request.

Used by the integration tests to play a local user who tries to starve xosd
of connections. Bounded: at most --count connections, held at most --hold
seconds (or until the file --stop-file exists).
usage: connflood.py SOCKET --count N [--expect-open K] [--hold S]
                    [--stop-file F] [--status-file F]
Once the daemon has answered what it is going to answer at once (refusals
come at once; it waits until at most K connections are left unanswered, at
most 10 s), writes "open N refused M first-refusal TEXT" to the status file
(or stdout), then holds the open connections."""
import os
import select
import socket
import sys
import time


def classify(socks, expect_open, deadline):
    """Wait for refusals: a refused connection gets an error line and EOF."""
    refused, text = set(), ""
    while time.monotonic() < deadline:
        live = [s for s in socks if s not in refused]
        if expect_open is not None and len(live) <= expect_open:
            break
        r, _, _ = select.select(live, [], [], 0.2)
        for s in r:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if data and not text:
                text = data.decode(errors="replace").strip()
            if not data or data.endswith(b"\n"):
                refused.add(s)
    return refused, text


def main():
    args = sys.argv[1:]
    path = args.pop(0)
    count, expect_open, hold = 0, None, 60.0
    stop_file = status_file = None
    while args:
        a = args.pop(0)
        if a == "--count":
            count = int(args.pop(0))
        elif a == "--expect-open":
            expect_open = int(args.pop(0))
        elif a == "--hold":
            hold = float(args.pop(0))
        elif a == "--stop-file":
            stop_file = args.pop(0)
        elif a == "--status-file":
            status_file = args.pop(0)
        else:
            sys.exit("unknown argument " + a)
    socks, failed = [], 0
    for _ in range(min(count, 5000)):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError:
            failed += 1
            s.close()
            continue
        try:
            s.sendall(b'{"v":1,"op":"ps"')  # no end of line: never whole
        except OSError:
            pass  # refused and closed already: classify() reads why
        socks.append(s)
    refused, text = classify(socks, expect_open, time.monotonic() + 10)
    line = "open %d refused %d failed %d first-refusal %s\n" % (
        len(socks) - len(refused), len(refused), failed, text)
    if status_file:
        with open(status_file + ".tmp", "w") as f:
            f.write(line)
        os.rename(status_file + ".tmp", status_file)
    else:
        sys.stdout.write(line)
        sys.stdout.flush()
    end = time.monotonic() + hold
    while time.monotonic() < end:
        if stop_file and os.path.exists(stop_file):
            break
        time.sleep(0.1)
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()

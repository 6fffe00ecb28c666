#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Hold N idle TCP connections to HOST:PORT (a client that connects and
says nothing), write "open N" to OUT, then wait (at most 60 s) for the
server to close each, and write "closed K" (K: how many it closed).

usage: idle-conns.py HOST PORT N OUT"""
import select
import socket
import sys
import time


def main():
    host, port, n, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    conns = [socket.create_connection((host, port), timeout=10) for _ in range(n)]
    with open(out, "w") as f:
        f.write(f"open {n}\n")
    closed, live, end = 0, list(conns), time.monotonic() + 60
    while live and time.monotonic() < end:
        ready, _, _ = select.select(live, [], [], 1)
        for c in ready:
            try:
                data = c.recv(4096)
            except OSError:
                data = b""
            if not data:  # (a 503 line first, for the ones over the limit)
                live.remove(c)
                closed += 1
    with open(out, "a") as f:
        f.write(f"closed {closed}\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""An event subscriber that does not read: it subscribes (op "events") on
xosd's socket, says so in OUT.ready, then reads nothing until the file GATE
exists (at most 120 s), then reads and appends every line to OUT, flushed,
for at most 120 s more (the test ends it sooner).

usage: slow-subscriber.py SOCKET GATE OUT"""
import os
import socket
import sys
import time


def main():
    path, gate, out = sys.argv[1:4]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(b'{"v":1,"op":"events"}\n')
    f = s.makefile("rb")
    resp = f.readline()
    if b'"ok":true' not in resp:
        sys.exit("subscription refused: " + resp.decode(errors="replace"))
    with open(out + ".ready", "w") as r:
        r.write("subscribed\n")
    end = time.monotonic() + 120
    while not os.path.exists(gate) and time.monotonic() < end:
        time.sleep(0.1)
    end = time.monotonic() + 120
    with open(out, "ab") as o:
        while time.monotonic() < end:
            line = f.readline()
            if not line:
                break
            o.write(line)
            o.flush()


if __name__ == "__main__":
    main()

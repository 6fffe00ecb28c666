#!/usr/bin/env python3
"""Send raw bytes to a UNIX stream socket and print what comes back.

Used by the integration tests to send requests the commands never would:
malformed JSON, oversized lines, forged completion reports.
usage: rawsock.py SOCKET [--file F | --repeat BYTE COUNT] [--timeout S]
Reads the payload from stdin unless --file/--repeat is given."""
import socket
import sys


def main():
    args = sys.argv[1:]
    path = args.pop(0)
    timeout = 10.0
    payload = None
    while args:
        a = args.pop(0)
        if a == "--timeout":
            timeout = float(args.pop(0))
        elif a == "--file":
            with open(args.pop(0), "rb") as f:
                payload = f.read()
        elif a == "--repeat":
            byte = args.pop(0).encode()
            count = int(args.pop(0))
            payload = byte * count
        else:
            sys.exit("unknown argument " + a)
    if payload is None:
        payload = sys.stdin.buffer.read()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    try:
        s.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the peer may answer and close before reading everything
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    sys.stdout.write(out.decode(errors="replace"))


if __name__ == "__main__":
    main()

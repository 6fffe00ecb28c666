#!/usr/bin/env python3
"""Drive pamtester through a pam_xos login, answering its conversation as a
user would: the certificate chain (base64 on one line), then the signature
of the challenge text pam_xos shows, made by the openssl command.
  pam-login.py SERVICE USER CERT KEY OPERATION...
Prints pamtester's whole transcript; exits with pamtester's status. Every
wait is bounded (30 s each, 90 s in all)."""
import base64
import os
import re
import select
import subprocess
import sys
import time

CHAIN_PROMPT = b"Grid certificate chain"
SIG_PROMPT = b"Signature (base64): "


def sign(key, text):
    return base64.b64encode(subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", key], input=text,
        capture_output=True, check=True).stdout)


def main():
    service, user, cert, key = sys.argv[1:5]
    ops = sys.argv[5:]
    p = subprocess.Popen(["stdbuf", "-o0", "-e0", "pamtester", "-v", service, user] + ops,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    out = b""
    sent_chain = sent_sig = False
    end = time.monotonic() + 90
    while time.monotonic() < end:
        r, _, _ = select.select([p.stdout], [], [], 30)
        if not r:
            break
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            break
        out += chunk
        if not sent_chain and CHAIN_PROMPT in out:
            with open(cert, "rb") as f:
                p.stdin.write(base64.b64encode(f.read()) + b"\n")
            p.stdin.flush()
            sent_chain = True
        if sent_chain and not sent_sig and SIG_PROMPT in out:
            m = re.search(rb"(xos-login-challenge-v1\nnode=[^\n]*\nnonce=[0-9a-f]*\n)", out)
            sig = sign(key, m.group(1)) if m else b"AAAA"
            p.stdin.write(sig + b"\n")
            p.stdin.flush()
            sent_sig = True
    try:
        p.stdin.close()
    except BrokenPipeError:
        pass
    try:
        rc = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    sys.stdout.write(out.decode(errors="replace"))
    sys.exit(rc)


main()

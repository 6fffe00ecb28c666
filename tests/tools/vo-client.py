#!/usr/bin/env python3
"""A raw client of xosd's grid login ops (PROTOCOL.md), signing with the
openssl command, for what xlogin never sends:
  vo-client.py SOCKET login CERT KEY      a proper login; prints the reply
  vo-client.py SOCKET replay CERT KEY     logs in, then answers a second
                                          connection's challenge with the
                                          first one's signature
  vo-client.py SOCKET mismatch CERT KEY   signs CERT's challenge with KEY
  vo-client.py SOCKET nochallenge CERT    answers without asking a challenge
  vo-client.py AGENT agent REQUEST        one request line to a login agent
Prints the last reply line."""
import base64
import json
import socket
import subprocess
import sys


def call(s, f, req):
    s.sendall((json.dumps(dict(v=1, **req)) + "\n").encode())
    return json.loads(f.readline())


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(path)
    return s, s.makefile("r")


def sign(key, node, nonce):
    text = "xos-login-challenge-v1\nnode=%s\nnonce=%s\n" % (node, nonce)
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                         input=text.encode(), capture_output=True, check=True).stdout
    return base64.b64encode(sig).decode()


def answer(path, chain, key=None, sig=None):
    s, f = connect(path)
    ch = call(s, f, dict(op="auth_challenge"))
    if not ch.get("ok"):
        return ch, None
    sig = sig or sign(key, ch["node"], ch["nonce"])
    return call(s, f, dict(op="auth", chain=chain, signature=sig)), sig


def main():
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "agent":
        s, f = connect(path)
        try:
            s.sendall((sys.argv[3] + "\n").encode())
        except BrokenPipeError:
            pass  # a refusal comes before the request is read
        print(f.readline().strip())
        return
    chain = open(sys.argv[3]).read()
    if mode == "login":
        reply, _ = answer(path, chain, sys.argv[4])
    elif mode == "mismatch":
        reply, _ = answer(path, chain, sys.argv[4])
    elif mode == "replay":
        first, sig = answer(path, chain, sys.argv[4])
        if not first.get("ok"):
            print("first login failed: %s" % json.dumps(first))
            sys.exit(1)
        reply, _ = answer(path, chain, sig=sig)
    elif mode == "nochallenge":
        s, f = connect(path)
        reply = call(s, f, dict(op="auth", chain=chain, signature="AAAA"))
    else:
        sys.exit("unknown mode " + mode)
    print(json.dumps(reply))


main()

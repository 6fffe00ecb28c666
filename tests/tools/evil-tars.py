#!/usr/bin/env python3
"""Build malicious (and awkward) tar archives for the template import tests.

Usage: evil-tars.py OUTDIR VICTIM
  OUTDIR  where the archives go (one NAME.tar per case)
  VICTIM  an absolute path outside the catalogue that the archives try to
          write (the test checks it is unchanged afterwards)

Cases (the archive names):
  dotdot        ../../../../../../../VICTIM (climbs out of the template)
  absolute      /etc/x and, as a second try, VICTIM itself
  symlink-root  link -> /, then link/etc/x (writes through a symlink)
  symlink-dir   link -> VICTIM's directory, then link/victim
  hardlink      a hardlink to /etc/shadow
  hardlink-rel  a hardlink to ../../../../etc/shadow
  chain         a -> b/.., b -> ../.., then a/x: a chain of links that escapes
  chain-mid     d/up -> .., then esc -> d/up/../..: '..' after a name
  device        a character device node (1, 1: /dev/mem)
  fifo          a fifo
  empty         a 0-byte file
  truncated     a tar cut in the middle of a file's data
  garbage       random bytes
  bigid         a file owned by uid 70000 (outside the containers' ids)
  deep          10,000 nested directories with a file at the bottom
  replace       a file replaced by a directory and a directory by a file
"""
import io
import os
import sys
import tarfile


def add_file(tar, name, data=b"x\n", **kw):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = kw.get("mode", 0o644)
    info.uid = kw.get("uid", 0)
    info.gid = kw.get("gid", 0)
    tar.addfile(info, io.BytesIO(data))


def add_dir(tar, name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def add_link(tar, name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tar.addfile(info)


def add_node(tar, name, kind, major=0, minor=0):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o666
    info.devmajor = major
    info.devminor = minor
    tar.addfile(info)


def write(outdir, name, build):
    with tarfile.open(os.path.join(outdir, name + ".tar"), "w", format=tarfile.PAX_FORMAT) as tar:
        add_file(tar, "ok-before", b"fine\n")
        build(tar)


def main():
    outdir, victim = sys.argv[1], sys.argv[2]
    vdir = os.path.dirname(victim)
    climb = "../" * 12 + victim.lstrip("/")
    cases = {
        "dotdot": lambda t: add_file(t, climb, b"pwned\n"),
        "absolute": lambda t: (add_file(t, "/etc/x", b"pwned\n"), add_file(t, victim, b"pwned\n")),
        "symlink-root": lambda t: (add_link(t, "link", "/"), add_file(t, "link/etc/x", b"pwned\n")),
        "symlink-dir": lambda t: (
            add_link(t, "link", vdir),
            add_file(t, "link/" + os.path.basename(victim), b"pwned\n"),
        ),
        "hardlink": lambda t: add_link(t, "shadow", "/etc/shadow", tarfile.LNKTYPE),
        "hardlink-rel": lambda t: add_link(t, "shadow", "../../../../etc/shadow", tarfile.LNKTYPE),
        "chain": lambda t: (
            add_dir(t, "b"),
            add_link(t, "b/c", "../.."),
            add_file(t, "b/c/x", b"pwned\n"),
        ),
        "chain-mid": lambda t: (
            add_dir(t, "d"),
            add_link(t, "d/up", ".."),
            add_link(t, "esc", "d/up/../.."),
        ),
        "device": lambda t: add_node(t, "mem", tarfile.CHRTYPE, 1, 1),
        "fifo": lambda t: add_node(t, "fifo", tarfile.FIFOTYPE),
        "bigid": lambda t: add_file(t, "big", b"x\n", uid=70000),
    }
    for name, build in cases.items():
        write(outdir, name, build)

    open(os.path.join(outdir, "empty.tar"), "wb").close()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add_file(tar, "first", b"fine\n")
        add_file(tar, "cut-here", os.urandom(64 * 1024))
    with open(os.path.join(outdir, "truncated.tar"), "wb") as f:
        f.write(buf.getvalue()[: 512 * 3 + 20000])
    with open(os.path.join(outdir, "garbage.tar"), "wb") as f:
        f.write(os.urandom(4096))

    with tarfile.open(os.path.join(outdir, "deep.tar"), "w", format=tarfile.PAX_FORMAT) as tar:
        path = ""
        for _ in range(10000):
            path += "d/"
            add_dir(tar, path)
        add_file(tar, path + "bottom", b"deep\n")

    with tarfile.open(os.path.join(outdir, "replace.tar"), "w", format=tarfile.PAX_FORMAT) as tar:
        add_file(tar, "a", b"file first\n")
        add_dir(tar, "a")
        add_file(tar, "a/inside", b"in a\n")
        add_dir(tar, "b")
        add_file(tar, "b", b"b is a file now\n")
        add_link(tar, "c", "a/inside")
        add_file(tar, "c", b"c replaced a symlink\n")


if __name__ == "__main__":
    main()

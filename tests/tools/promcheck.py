#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Check Prometheus text exposition format (version 0.0.4) on stdin, strictly,
as Prometheus's own parser and promtool's `check metrics` read it (promtool is
not packaged for Debian 12 without the whole server): exit 0 when valid, else
1 with every error found on stderr.

  promcheck.py [--value SERIES]...    SERIES: name or name{k="v",...} as written;
                                      its value is printed (one line each)

Checked: line syntax (names, label names, escapes in label values and HELP,
values incl. NaN and +/-Inf, optional integer timestamps), one HELP and one TYPE
per family, TYPE before the family's first sample, a family's samples together,
no series twice, counters not negative, histograms (le labels, cumulative
buckets, a +Inf bucket equal to _count, _sum and _count present), the text ending
in a newline.
"""
import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
FLOAT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_value(s):
    if s in ("NaN", "+Inf", "-Inf", "Inf"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not FLOAT.match(s):
        raise ValueError(f"bad value {s!r}")
    return float(s)


def parse_labels(text, pos):
    """text[pos] == '{': the labels and the position after '}'."""
    labels = []
    pos += 1
    while True:
        if text[pos:pos + 1] == "}":
            return labels, pos + 1
        m = re.compile(LABEL).match(text, pos)
        if not m:
            raise ValueError(f"bad label name at {text[pos:]!r}")
        name = m.group(0)
        pos = m.end()
        if text[pos:pos + 2] != '="':
            raise ValueError(f"expected =\" after label {name}")
        pos += 2
        val = []
        while True:
            if pos >= len(text):
                raise ValueError("unterminated label value")
            c = text[pos]
            if c == "\\":
                nxt = text[pos + 1:pos + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ValueError(f"bad escape \\{nxt} in label value")
                val.append({"\\": "\\", '"': '"', "n": "\n"}[nxt])
                pos += 2
            elif c == '"':
                pos += 1
                break
            elif c == "\n":
                raise ValueError("newline in label value")
            else:
                val.append(c)
                pos += 1
        if name in dict(labels):
            raise ValueError(f"label {name} twice")
        labels.append((name, "".join(val)))
        if text[pos:pos + 1] == ",":
            pos += 1
        elif text[pos:pos + 1] != "}":
            raise ValueError(f"expected , or }} at {text[pos:]!r}")


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
            return base
    return name


class Checker:
    def __init__(self):
        self.errors = []
        self.types, self.helps = {}, set()
        self.seen_families, self.current = set(), None
        self.series = {}
        self.hist = {}

    def err(self, n, msg):
        self.errors.append(f"line {n}: {msg}")

    def comment(self, n, line):
        parts = line.split(None, 3)
        if len(parts) < 2 or parts[1] not in ("HELP", "TYPE"):
            return  # a plain comment
        if len(parts) < 3 or not re.fullmatch(NAME, parts[2]):
            return self.err(n, f"bad {parts[1]} line")
        name, rest = parts[2], parts[3] if len(parts) > 3 else ""
        if parts[1] == "HELP":
            if name in self.helps:
                self.err(n, f"second HELP for {name}")
            self.helps.add(name)
            if re.search(r"\\[^\\n]", rest.replace("\\\\", "")):
                self.err(n, f"bad escape in HELP of {name}")
            return None
        if rest not in TYPES:
            return self.err(n, f"unknown type {rest!r} for {name}")
        if name in self.types:
            return self.err(n, f"second TYPE for {name}")
        if name in self.seen_families:
            return self.err(n, f"TYPE for {name} after its samples")
        self.types[name] = rest
        return None

    def sample(self, n, line):
        m = re.compile(NAME).match(line)
        if not m:
            return self.err(n, f"bad metric name in {line!r}")
        name, pos, labels = m.group(0), m.end(), []
        try:
            if line[pos:pos + 1] == "{":
                labels, pos = parse_labels(line, pos)
            rest = line[pos:]
            if not rest.startswith(" "):
                raise ValueError("expected a space before the value")
            fields = rest.split()
            if len(fields) not in (1, 2):
                raise ValueError(f"expected value [timestamp], got {rest!r}")
            value = parse_value(fields[0])
            if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
                raise ValueError(f"bad timestamp {fields[1]!r}")
        except ValueError as e:
            return self.err(n, str(e))
        fam = family_of(name, self.types)
        if fam != self.current:
            if fam in self.seen_families:
                self.err(n, f"samples of {fam} are not together")
            self.seen_families.add(fam)
            self.current = fam
        key = name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels)) + "}"
        if key in self.series:
            self.err(n, f"series {key} twice")
        self.series[key] = value
        kind = self.types.get(fam, "untyped")
        if kind == "counter" and (value < 0 or math.isnan(value)):
            self.err(n, f"counter {name} is {value}")
        if kind == "histogram":
            self.histogram_sample(n, fam, name, labels, value)
        return None

    def histogram_sample(self, n, fam, name, labels, value):
        other = tuple(sorted((k, v) for k, v in labels if k != "le"))
        h = self.hist.setdefault((fam, other), {"buckets": [], "sum": None, "count": None})
        if name == fam + "_bucket":
            le = dict(labels).get("le")
            if le is None:
                return self.err(n, f"{name} without le")
            try:
                bound = parse_value(le)
            except ValueError:
                return self.err(n, f"bad le {le!r}")
            h["buckets"].append((bound, value, n))
        elif name == fam + "_sum":
            h["sum"] = value
        elif name == fam + "_count":
            h["count"] = value
        else:
            self.err(n, f"{name} in histogram {fam}")
        return None

    def finish(self):
        for (fam, _), h in self.hist.items():
            b = h["buckets"]
            if not b or b[-1][0] != math.inf:
                self.errors.append(f"histogram {fam}: no +Inf bucket last")
            for (b1, v1, _), (b2, v2, n2) in zip(b, b[1:]):
                if b2 <= b1:
                    self.errors.append(f"line {n2}: {fam} buckets not in order of le")
                if v2 < v1:
                    self.errors.append(f"line {n2}: {fam} buckets not cumulative")
            if h["sum"] is None or h["count"] is None:
                self.errors.append(f"histogram {fam}: no _sum or no _count")
            elif b and b[-1][1] != h["count"]:
                self.errors.append(f"histogram {fam}: +Inf bucket is not _count")


def main():
    wanted = [a for i, a in enumerate(sys.argv[1:]) if sys.argv[i] == "--value"]
    text = sys.stdin.read()
    c = Checker()
    if not text.endswith("\n"):
        c.errors.append("the text does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            c.comment(n, line)
        else:
            c.sample(n, line)
    c.finish()
    for e in c.errors:
        print(f"promcheck: {e}", file=sys.stderr)
    for w in wanted:
        key = w if "{" in w else w + "{}"
        if key not in c.series:
            print(f"promcheck: no series {w}", file=sys.stderr)
            return 1
        print(f"{c.series[key]:.17g}")
    return 1 if c.errors else 0


if __name__ == "__main__":
    sys.exit(main())

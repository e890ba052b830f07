#!/usr/bin/env python3
"""slowfs.py (../shared/tools) with a count of every FUSE call by kind, to see what a
tool costs a share: each call is a round trip on NFS or SMB.

    countfs.py SOURCE MOUNTPOINT --delay-ms 1 --counts FILE

When FILE.ask appears it writes the counts so far to FILE as JSON, starts again from zero
and removes FILE.ask, so a script can count one tool's run at a time. (A file, not a
signal: Python runs signal handlers on its main thread, which FUSE's loop holds.)
"""
import argparse
import collections
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "tools"))
import slowfs  # noqa: E402
from fuse import FUSE, Operations  # noqa: E402

counts = collections.Counter()
lock = threading.Lock()


class Counting(slowfs.Slow):
    def __call__(self, op, *args):
        with lock:
            counts[op] += 1
        return Operations.__call__(self, op, *args)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("mountpoint")
    ap.add_argument("--delay-ms", type=float, default=1.0)
    ap.add_argument("--counts", required=True)
    a = ap.parse_args()

    def dump(*_):
        with lock:
            snapshot = dict(counts)
            counts.clear()
        with open(a.counts, "w") as f:
            json.dump(snapshot, f)

    def watch():
        ask = a.counts + ".ask"
        while True:
            if os.path.exists(ask):
                dump()
                os.remove(ask)
            time.sleep(0.02)

    threading.Thread(target=watch, daemon=True).start()
    FUSE(Counting(a.source, a.delay_ms / 1000.0), a.mountpoint, foreground=True, nothreads=False,
         ro=True, allow_other=False, attr_timeout=0, entry_timeout=0)


if __name__ == "__main__":
    main()

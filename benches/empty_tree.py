"""Writes N empty files under ROOT, nested, at most 1,000 to a folder:
ROOT/aNNN/bNNN/fNNNNNNN.txt. Empty, since 2,000,000 one-byte files would take 8 GiB of
tmpfs pages. Used by benches/compare.sh (work 7) and benches/first_upload.sh.

    python3 benches/empty_tree.py ROOT N
"""
import os
import sys

root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    leaf, k = divmod(i, 1000)
    d = os.path.join(root, "a%03d" % (leaf // 100), "b%03d" % (leaf % 100))
    if k == 0:
        os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "f%07d.txt" % i), "wb").close()

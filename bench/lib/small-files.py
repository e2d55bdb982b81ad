#!/usr/bin/env python3
"""Writes a package tree's shape: small-files.py DIR [--hex]: DIR/usr/share/dNNN/fNNN.txt, 200
directories of 100 text files of 5-200 lines (50 B to a few KB), the same every run. With --hex each
line ends in 8 random hex digits, as lock files, checksums and configs do: text that compresses
less, and where deflaters differ."""
import os
import random
import sys

root, hex_lines = sys.argv[1], "--hex" in sys.argv[2:]
rnd = random.Random(1)
for d in range(200):
    os.makedirs(f"{root}/usr/share/d{d:03}")
    for f in range(100):
        n = rnd.randint(5, 200)
        with open(f"{root}/usr/share/d{d:03}/f{f:03}.txt", "w") as out:
            if hex_lines:
                out.write("".join("line %d %d %08x\n" % (d, f, rnd.getrandbits(32)) for _ in range(n)))
            else:
                out.write(("line %d %d\n" % (d, f)) * n)

#!/usr/bin/env python3
"""Writes src/Pagoda/Tokenization/nfc-data.txt from Python's unicodedata.

The app runs with InvariantGlobalization, where string.Normalize does not compose, so the
tokenizer carries its own NFC tables. Lines:
  V <unicode version>
  C <first> <last> <ccc>      canonical combining class (non-zero) for a range
  D <cp> <cp> [<cp>...]       full canonical decomposition (Hangul syllables are algorithmic)
  P <a> <b> <c>               primary composite: a + b composes to c
"""
import sys, unicodedata, pathlib

out = []
out.append(f"V {unicodedata.unidata_version}")
run = None
for cp in range(0x110000):
    ccc = unicodedata.combining(chr(cp))
    if run and run[2] == ccc and run[1] == cp - 1:
        run[1] = cp
        continue
    if run and run[2]:
        out.append(f"C {run[0]:X} {run[1]:X} {run[2]}")
    run = [cp, cp, ccc]
if run and run[2]:
    out.append(f"C {run[0]:X} {run[1]:X} {run[2]}")

for cp in range(0x110000):
    if 0xAC00 <= cp <= 0xD7A3 or 0xD800 <= cp <= 0xDFFF:
        continue
    c = chr(cp)
    nfd = unicodedata.normalize("NFD", c)
    if nfd != c:
        out.append("D " + " ".join(f"{ord(x):X}" for x in [c] + list(nfd)))
    dec = unicodedata.decomposition(c)
    if dec and not dec.startswith("<"):
        parts = [int(p, 16) for p in dec.split()]
        if len(parts) == 2 and unicodedata.normalize("NFC", c) == c:
            out.append(f"P {parts[0]:X} {parts[1]:X} {cp:X}")

root = pathlib.Path(__file__).resolve().parent.parent
path = root / "src" / "Pagoda" / "Tokenization" / "nfc-data.txt"
path.write_text("\n".join(out) + "\n", encoding="ascii")
print(f"wrote {path} ({len(out)} lines)", file=sys.stderr)

#!/usr/bin/env python3
"""Summarises tools/cuda-check-run.sh's kprof.csv (ncu, every kernel of Profile's steps in launch order): one block
per engine step (a step ends with its sampling kernels), each kernel name's count and summed time, largest first."""
import csv, sys
from collections import defaultdict

rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
h = rows[0]; k = h.index('Kernel Name'); v = h.index('Metric Value'); u = h.index('Metric Unit')
kernels = []
for r in rows[1:]:
    t = float(r[v].replace(',', ''))
    t = t / 1000 if r[u] in ('ns', 'nsecond') else t * 1000 if r[u] in ('ms', 'msecond') else t  # to microseconds
    kernels.append((r[k].split('(')[0].split('<')[0], t))

steps, cur, in_sampling = [], [], False
for name, t in kernels:
    sampling = any(w in name for w in ('sampl', 'topk', 'draw_', 'nucleus'))
    if in_sampling and not sampling:
        steps.append(cur); cur = []
    cur.append((name, t)); in_sampling = sampling
steps.append(cur)
for i, s in enumerate(steps):
    total = sum(t for _, t in s)
    agg = defaultdict(lambda: [0, 0.0])
    for name, t in s:
        agg[name][0] += 1; agg[name][1] += t
    print(f"step {i}: {len(s)} kernels, {total:.1f} us")
    for name, (n, t) in sorted(agg.items(), key=lambda x: -x[1][1])[:int(sys.argv[2]) if len(sys.argv) > 2 else 14]:
        print(f"  {name[:44]:44} {n:4} x {t / n:8.2f} = {t:9.1f} us ({100 * t / total:4.1f}%)")

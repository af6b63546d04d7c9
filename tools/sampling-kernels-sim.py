#!/usr/bin/env python3
# sampling.cu's block algorithms emulated step for step (threads as loops between barriers; no GPU needed) against
# plain references: the chunked top-k (radix threshold, collection, merge by rank), the nucleus cut over chunks (its
# histogram levels, the per-row select, the ties of the cut's key) against Nucleus.cs's, and the chunked draw against
# the sequential walk. It checks the algorithms, not the CUDA (barriers, races, intrinsics): CudaCheck's
# sampling-parity does that on a GPU. Run: python3 tools/sampling-kernels-sim.py
import random, struct, math
def f32(x): return struct.unpack('f', struct.pack('f', x))[0]
def fbits(x): return struct.unpack('I', struct.pack('f', x))[0]
def order_key(x):
    b = fbits(x); return (~b & 0xffffffff) if b & 0x80000000 else (b | 0x80000000)
def topk_key(v, i): return (order_key(v) << 32) | (~i & 0xffffffff)

def radix_threshold(keys, k, threads=256):
    n = len(keys); prefix = 0; need = k
    for shift in range(56, -1, -8):
        hist = [0] * 256
        for i in range(n):
            key = keys[i]
            if shift == 56 or (key >> (shift + 8)) == (prefix >> (shift + 8)):
                hist[(key >> shift) & 255] += 1
        found = None
        # lanes
        incl = 0
        for t in range(32):
            c = [hist[255 - 8 * t - j] for j in range(8)]
            s = sum(c); before = incl; incl += s
            if before < need <= incl:
                assert found is None
                b4 = before
                for j in range(8):
                    if b4 + c[j] >= need:
                        found = (prefix | ((255 - 8 * t - j) << shift), need - b4, c[j] == need - b4); break
                    b4 += c[j]
        assert found is not None, "no lane picked"
        prefix, need, exact = found
        if exact: break
    return prefix

def block_topk(keys, k):
    n = len(keys)
    if n <= k: return keys + [0] * (k - n)
    if k == 1: return [max(keys)]
    thr = radix_threshold(keys, k)
    out = [key for key in keys if key > thr]
    assert len(out) < k + 1, (len(out), k)
    for key in keys:
        if key == thr and len(out) < k: out.append(key)
    return out

def block_topk_filtered(keys, k, threads=256, cap=512):
    # sampling.cu's block_topk_filtered: the k-th largest of the threads' maxima (thread t holds t, t + 256, ...)
    # bounds the chunk's k-th largest from below; the exact selection runs over the keys at or above it.
    n = len(keys)
    if n <= k or k == 1: return block_topk(keys, k)
    maxima = [max([keys[i] for i in range(t, n, threads)], default=0) for t in range(threads)]
    bound = radix_threshold(maxima, k)
    cand = [key for key in keys if key >= bound]
    assert len(cand) <= 16 * k and len(cand) >= k, (len(cand), k)
    if bound != 0 and len(cand) <= cap:
        return block_topk(cand, k)
    return block_topk(keys, k)

def merge_rank(sel):
    k = len(sel); out = [None] * k
    for t in range(k):
        rank = sum(1 for j in range(k) if sel[j] > sel[t] or (sel[j] == sel[t] and j < t))
        out[rank] = sel[t]
    assert None not in out
    return out

rng = random.Random(5)
for trial in range(300):
    vocab = rng.choice([5000, 9000, 4096 * 3 + 7, 300])
    k = rng.choice([1, 2, 7, 20, 64])
    coarse = rng.random() < 0.5
    vals = [f32(round(rng.uniform(-20, 20), 1) if coarse else rng.uniform(-4, 4)) for _ in range(vocab)]
    CH = 4096
    part = []
    for c in range(0, vocab, CH):
        keys = [topk_key(vals[i], i) for i in range(c, min(vocab, c + CH))]
        part += block_topk_filtered(keys, k)
    sel = block_topk(part, k)
    got = merge_rank(sel)
    want = sorted((topk_key(v, i) for i, v in enumerate(vals)), reverse=True)[:k]
    want += [0] * (k - len(want))
    assert got == want, (trial, vocab, k)
print("top-k: 300 trials OK")

# ---- nucleus
def quantum(w): return int(f32(w * 1099511627776.0))
def weight(v, mx, invT): return f32(math.exp(f32(f32(v - mx) * invT)))

def host_cut(vals, ws, top_p, min_p):
    if top_p >= 1: return (0, 2**31 - 1)
    left = list(range(len(vals))); prefix = 0; above = 0; target = 0
    for level in range(4):
        shift = 24 - 8 * level
        mass = [0] * 256; count = [0] * 256
        if level == 0:
            left = [i for i in range(len(vals)) if ws[i] >= min_p]
        for i in left:
            b = (order_key(vals[i]) >> shift) & 255; mass[b] += quantum(ws[i]); count[b] += 1
        if level == 0:
            total = sum(mass)
            if total == 0: return (0, 2**31 - 1)
            target = max(1, math.ceil(top_p * total))
        chosen = 255
        while chosen > 0 and above + mass[chosen] < target:
            above += mass[chosen]; chosen -= 1
        prefix |= chosen << shift
        left = [i for i in left if (order_key(vals[i]) >> shift) & 255 == chosen]
    n = len(left); each = mass[chosen] // n
    need = n if each == 0 else min(n, (target - above + each - 1) // each)
    return (prefix, 2**31 - 1 if need >= n else left[need - 1])

def device_cut(vals, mx, invT, top_p, min_p, CH=4096, threads=256):
    vocab = len(vals)
    st = dict(above=0, target=0, prefix=0, need=0, cut_id=2**31 - 1, cut=top_p < 1)
    hm = [0] * 256; hc = [0] * 256
    if not st['cut']: return (0, 2**31 - 1)
    for level in range(4):
        shift = 24 - 8 * level
        for c0 in range(0, vocab, CH):   # nucleus_hist
            n = min(CH, vocab - c0); per = (n + threads - 1) // threads
            sm = [0] * 256; sc = [0] * 256
            for t in range(threads):
                lo = min(n, t * per); hi = min(n, lo + per)
                for i in range(lo, hi):
                    v = vals[c0 + i]; key = order_key(v)
                    if level > 0 and (key >> (shift + 8)) != (st['prefix'] >> (shift + 8)): continue
                    w = weight(v, mx, invT)
                    if w < min_p: continue
                    b = (key >> shift) & 255; sm[b] += quantum(w); sc[b] += 1
            for b in range(256):
                if sc[b]: hm[b] += sm[b]; hc[b] += sc[b]
        # nucleus_select
        s = dict(st)
        lanes = []
        for lane in range(32):
            mass = [hm[255 - 8 * lane - j] for j in range(8)]; count = [hc[255 - 8 * lane - j] for j in range(8)]
            lanes.append((mass, count, sum(mass)))
        if level == 0:
            total = sum(l[2] for l in lanes)
            if total == 0: return (0, 2**31 - 1)
            want = top_p * total; target = int(want)
            if target < want: target += 1
            s['target'] = 1 if target == 0 else target
        incl = 0; picked = 0
        for lane in range(32):
            mass, count, sm_ = lanes[lane]; incl += sm_
            before = s['above'] + incl - sm_
            if before < s['target'] and (before + sm_ >= s['target'] or lane == 31):
                picked += 1
                j = 0
                while j < 7 and before + mass[j] < s['target']:
                    before += mass[j]; j += 1
                r = dict(s); r['prefix'] = s['prefix'] | ((255 - 8 * lane - j) << shift); r['above'] = before
                if level == 3:
                    ties = count[j]; each = mass[j] // ties if ties else 0
                    need = ties if each == 0 else (s['target'] - before + each - 1) // each
                    r['need'] = 0 if need >= ties else need
                newst = r
        assert picked == 1, picked
        st = newst; hm = [0] * 256; hc = [0] * 256
    if st['need'] > 0:
        chunks = (vocab + CH - 1) // CH
        tie = lambda i: order_key(vals[i]) == st['prefix'] and weight(vals[i], mx, invT) >= min_p
        cties = [sum(1 for i in range(c * CH, min(vocab, c * CH + CH)) if tie(i)) for c in range(chunks)]
        acc = 0; c = 0
        while c < chunks - 1 and acc + cties[c] < st['need']: acc += cties[c]; c += 1
        left_ = st['need'] - acc; start = c * CH; n = min(CH, vocab - start); per = (n + threads - 1) // threads
        mine = []; 
        for t in range(threads):
            lo = min(n, t * per); hi = min(n, lo + per); mine.append(sum(1 for i in range(lo, hi) if tie(start + i)))
        before = 0
        for t in range(threads):
            lo = min(n, t * per); hi = min(n, lo + per)
            l = left_ - before
            if 0 < l <= mine[t]:
                for i in range(lo, hi):
                    if tie(start + i):
                        l -= 1
                        if l == 0: st['cut_id'] = start + i; break
            before += mine[t]
    return (st['prefix'], st['cut_id'])

for trial in range(60):
    vocab = rng.choice([3000, 4096 * 2 + 100, 9000])
    coarse = rng.random() < 0.6
    vals = [f32(round(rng.uniform(-6, 6), 1) if coarse else rng.uniform(-4, 4)) for _ in range(vocab)]
    if rng.random() < 0.3:
        for i in rng.sample(range(vocab), 5): vals[i] = f32(9.0)
    mx = max(vals); invT = f32(1 / rng.choice([0.3, 0.6, 1.0, 1.5]))
    top_p = f32(rng.choice([0.1, 0.5, 0.8, 0.9, 0.95, 0.999])); min_p = f32(rng.choice([0, 0, 0.01, 0.1]))
    ws = [weight(v, mx, invT) for v in vals]
    h = host_cut(vals, ws, top_p, min_p); d = device_cut(vals, mx, invT, top_p, min_p)
    assert h == d, (trial, h, d)
print("nucleus: 60 trials OK")
stats = [0, 0]
for trial in range(40):
    vocab = 9000
    vals = [f32(round(rng.uniform(-3, 3), 0)) for _ in range(vocab)]   # few distinct values: ties at every cut
    mx = max(vals); invT = f32(1.0); top_p = f32(rng.choice([0.3, 0.5, 0.7])); min_p = f32(0)
    ws = [weight(v, mx, invT) for v in vals]
    h = host_cut(vals, ws, top_p, min_p); d = device_cut(vals, mx, invT, top_p, min_p)
    assert h == d, (trial, h, d)
    stats[h[1] != 2**31 - 1] += 1
print("ties: 40 trials OK; partial tie cuts", stats[1], "of 40")

# ---- draw: draw_sums (strided block sums per chunk) + draw_pick (contiguous runs) against the sequential walk
def seq_draw(ws, u):
    mass = 0.0
    for w in ws: mass += w
    target = u * mass; run = 0.0; last = -1
    for i, w in enumerate(ws):
        if w == 0: continue
        last = i; run += w
        if run > target: return i, mass
    return last, mass
def dev_draw(ws, u, CH=4096, threads=256):
    vocab = len(ws); chunks = (vocab + CH - 1) // CH
    csum = []; clast = []
    for c in range(chunks):
        s = [0.0] * threads; last = -1
        for t in range(threads):
            for i in range(c * CH + t, min(vocab, c * CH + CH), threads):
                if ws[i] != 0: s[t] += ws[i]; last = max(last, i)
        csum.append(sum(s)); clast.append(last)   # order differs from the kernel's tree: only rounding
    mass = sum(csum); target = u * mass; acc = 0.0; chosen = -1
    for c in range(chunks):
        if csum[c] > 0 and target < acc + csum[c]: chosen = c; break
        acc += csum[c]
    lastAny = max(clast)
    if chosen < 0: return lastAny, mass
    rem = target - acc; start = chosen * CH; n = min(CH, vocab - start); per = (n + threads - 1) // threads
    sums = []; lasts = []
    for t in range(threads):
        lo = min(n, t * per); hi = min(n, lo + per); m = 0.0; l = -1
        for i in range(lo, hi):
            if ws[start + i] != 0: m += ws[start + i]; l = i
        sums.append(m); lasts.append(l)
    before = 0.0
    for t in range(threads):
        incl = before + sums[t]
        if sums[t] > 0 and before <= rem < incl:
            r = rem - before; lo = min(n, t * per); hi = min(n, lo + per); pick = lasts[t]
            for i in range(lo, hi):
                w = ws[start + i]
                if w == 0: continue
                r -= w
                if r < 0: pick = i; break
            return start + pick, mass
        before = incl
    return clast[chosen], mass
diff = 0
for trial in range(300):
    vocab = rng.choice([100, 5000, 9000])
    ws = [0.0 if rng.random() < 0.5 else f32(rng.random()) for _ in range(vocab)]
    u = rng.random()
    a = seq_draw(ws, u); b = dev_draw(ws, u)
    diff += a[0] != b[0]
assert diff == 0, f"{diff} draws differ"
print("draws: 300 trials OK")

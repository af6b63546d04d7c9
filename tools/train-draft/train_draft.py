"""Trains fortune-chat's draft model for speculative decoding (issue 20): a 2-layer Qwen2 with the target's tokenizer,
distilled from the target on the target's own corpus recipe (the Debian `fortunes` package, chat-formatted).

Needs only PyTorch (1.13 or later; on Debian python3-torch with python3-regex, and libopenblas0-pthread so that its BLAS
is not the reference one) and runs on a GPU or the CPU:
    python3 tools/train-draft/train_draft.py --teacher models/fortune-chat --corpus corpus.json.xz --out DIR [--seconds 150]

The corpus is make_corpus.py's output: [{"category", "text"}] of every fortune in the package. Each fortune becomes one
ChatML conversation (a system prompt, a request in the shapes the target learned, the fortune as the answer);
conversations are packed into rows of --seq-len tokens, as the target saw them. The student starts from the target's
embeddings, its first layers and its final norm, and learns the target's next-token distribution (KL(teacher ||
student) at every position): what a draft needs for its proposals to be accepted. The model is Qwen2 as transformers
defines it (RMSNorm, rotate-half RoPE, GQA with q/k/v biases, SiLU-gated MLP, tied embeddings), written out here so
that the script needs no transformers; the folder it writes loads in transformers and in Pagoda alike.
"""
import argparse
import json
import lzma
import math
import os
import random
import shutil
import struct
import time
import unicodedata

import torch
import torch.nn.functional as F

SYSTEMS = ["You are a helpful assistant.", "You are a fortune cookie."]
# Requests in the shapes fortune-chat writes when it samples a user turn itself ({c}: the fortune file's topic).
REQUESTS = ["Tell me a fortune.", "Tell me a joke.", "Make me laugh.", "Tell me a joke about {c}.",
            "Give me a quote about {c}.", "Say something funny about {c}.", "Tell me a fortune about {c}."]
DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[b:e]), dtype=DTYPES[t["dtype"]]).reshape(t["shape"]).float()
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        raw = t.detach().to(torch.bfloat16).contiguous().cpu().view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class Qwen2(torch.nn.Module):
    """Qwen2ForCausalLM's forward over [batch, seq] token ids, parameters named as in its checkpoints."""

    def __init__(self, c, layers):
        super().__init__()
        self.c, self.layers = c, layers
        h, d = c["hidden_size"], c["hidden_size"] // c["num_attention_heads"]
        self.heads, self.kv, self.d = c["num_attention_heads"], c["num_key_value_heads"], d
        p = {"model.embed_tokens.weight": (c["vocab_size"], h), "model.norm.weight": (h,)}
        for i in range(layers):
            x = f"model.layers.{i}."
            p.update({x + "input_layernorm.weight": (h,), x + "post_attention_layernorm.weight": (h,),
                      x + "self_attn.q_proj.weight": (self.heads * d, h), x + "self_attn.q_proj.bias": (self.heads * d,),
                      x + "self_attn.k_proj.weight": (self.kv * d, h), x + "self_attn.k_proj.bias": (self.kv * d,),
                      x + "self_attn.v_proj.weight": (self.kv * d, h), x + "self_attn.v_proj.bias": (self.kv * d,),
                      x + "self_attn.o_proj.weight": (h, self.heads * d),
                      x + "mlp.gate_proj.weight": (c["intermediate_size"], h), x + "mlp.up_proj.weight": (c["intermediate_size"], h),
                      x + "mlp.down_proj.weight": (h, c["intermediate_size"])})
        self.names = list(p)
        self.params = torch.nn.ParameterList([torch.nn.Parameter(torch.randn(s) * 0.02 if len(s) > 1 else torch.ones(s)) for s in p.values()])
        for name, param in zip(self.names, self.params):
            if name.endswith(".bias"):
                torch.nn.init.zeros_(param)

    def w(self, name):
        return self.params[self.names.index(name)]

    def load(self, weights):
        with torch.no_grad():
            for name, param in zip(self.names, self.params):
                param.copy_(weights[name])

    def state(self):
        return dict(zip(self.names, self.params))

    def norm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c["rms_norm_eps"]) * w

    def forward(self, ids):
        b, n = ids.shape
        x = F.embedding(ids, self.w("model.embed_tokens.weight"))
        inv = 1.0 / (self.c["rope_theta"] ** (torch.arange(0, self.d, 2, device=ids.device).float() / self.d))
        freqs = torch.outer(torch.arange(n, device=ids.device).float(), inv)
        cos, sin = torch.cat([freqs, freqs], -1).cos(), torch.cat([freqs, freqs], -1).sin()

        def rope(t):
            half = t.shape[-1] // 2
            return t * cos + torch.cat([-t[..., half:], t[..., :half]], -1) * sin

        mask = torch.full((n, n), float("-inf"), device=ids.device).triu(1)
        for i in range(self.layers):
            p = f"model.layers.{i}."
            hs = self.norm(x, self.w(p + "input_layernorm.weight"))
            q = F.linear(hs, self.w(p + "self_attn.q_proj.weight"), self.w(p + "self_attn.q_proj.bias")).view(b, n, self.heads, self.d).transpose(1, 2)
            k = F.linear(hs, self.w(p + "self_attn.k_proj.weight"), self.w(p + "self_attn.k_proj.bias")).view(b, n, self.kv, self.d).transpose(1, 2)
            v = F.linear(hs, self.w(p + "self_attn.v_proj.weight"), self.w(p + "self_attn.v_proj.bias")).view(b, n, self.kv, self.d).transpose(1, 2)
            q, k = rope(q), rope(k)
            k = k.repeat_interleave(self.heads // self.kv, 1)
            v = v.repeat_interleave(self.heads // self.kv, 1)
            att = ((q @ k.transpose(-1, -2)) / math.sqrt(self.d) + mask).softmax(-1)
            o = (att @ v).transpose(1, 2).reshape(b, n, self.heads * self.d)
            x = x + F.linear(o, self.w(p + "self_attn.o_proj.weight"))
            hs = self.norm(x, self.w(p + "post_attention_layernorm.weight"))
            g = F.linear(hs, self.w(p + "mlp.gate_proj.weight"))
            u = F.linear(hs, self.w(p + "mlp.up_proj.weight"))
            x = x + F.linear(F.silu(g) * u, self.w(p + "mlp.down_proj.weight"))
        x = self.norm(x, self.w("model.norm.weight"))
        return F.linear(x, self.w("model.embed_tokens.weight"))   # tied LM head


class Tokens:
    """tokenizer.json's byte-level BPE (fortune-chat's: NFC, Qwen2's pre-split pattern, no byte fallback), enough to
    encode ChatML text (60 of 60 sampled conversations gave Pagoda's `pagoda tokenize` ids)."""

    def __init__(self, path):
        import regex  # the `regex` module: the pre-tokenizer pattern needs \\p classes
        j = json.load(open(path, encoding="utf-8"))
        self.vocab = j["model"]["vocab"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in j["model"]["merges"]]
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.special = {t["content"]: t["id"] for t in j["added_tokens"]}
        bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
        cs, n = bs[:], 0
        for b in range(256):
            if b not in bs:
                bs.append(b)
                cs.append(256 + n)
                n += 1
        self.byte = {b: chr(c) for b, c in zip(bs, cs)}
        self.split = regex.compile(r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
        self.special_re = regex.compile("(" + "|".join(regex.escape(s) for s in sorted(self.special, key=len, reverse=True)) + ")")
        self.cache = {}

    def bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            pairs = [(self.ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, i = min(pairs)
            if rank == 1 << 30:
                break
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        ids = [self.vocab[p] for p in parts]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        ids = []
        for piece in self.special_re.split(text):
            if piece in self.special:
                ids.append(self.special[piece])
            elif piece:
                for word in self.split.findall(unicodedata.normalize("NFC", piece)):
                    ids.extend(self.bpe("".join(self.byte[b] for b in word.encode("utf-8"))))
        return ids


def conversations(corpus, rng):
    for item in corpus:
        topic = item["category"].replace("-", " and ")
        request = rng.choice(REQUESTS).format(c=topic)
        yield (f"<|im_start|>system\n{rng.choice(SYSTEMS)}<|im_end|>\n<|im_start|>user\n{request}<|im_end|>\n"
               f"<|im_start|>assistant\n{item['text']}<|im_end|>\n")


def pack(tok, texts, seq_len):
    """Concatenates the conversations' ids and cuts them into rows of seq_len tokens."""
    ids = []
    for t in texts:
        ids.extend(tok.encode(t))
    n = len(ids) // seq_len
    return torch.tensor(ids[: n * seq_len], dtype=torch.long).view(n, seq_len)


def kl_and_agreement(teacher, student, rows, batch):
    """Mean KL(teacher || student) per token and how often the two models' greedy tokens agree."""
    kl = agree = 0.0
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            r = rows[i:i + batch]
            t, s = teacher(r).log_softmax(-1), student(r).log_softmax(-1)
            kl += (t.exp() * (t - s)).sum(-1).sum().item()
            agree += (t.argmax(-1) == s.argmax(-1)).float().sum().item()
    return kl / rows.numel(), agree / rows.numel()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=150)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    torch.manual_seed(a.seed)
    dev = a.device
    if dev == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)   # Debian's build starts with one

    opener = lzma.open if a.corpus.endswith(".xz") else open
    with opener(a.corpus, "rt", encoding="utf-8") as f:
        corpus = json.load(f)
    rng.shuffle(corpus)
    tok = Tokens(os.path.join(a.teacher, "tokenizer.json"))
    holdout_n = max(1, len(corpus) // 50)
    train = pack(tok, conversations(corpus[holdout_n:], rng), a.seq_len)
    holdout = pack(tok, conversations(corpus[:holdout_n], rng), a.seq_len).to(dev)
    print(f"corpus: {len(corpus)} fortunes, {train.numel()} training tokens in {len(train)} rows, {holdout.numel()} held out", flush=True)

    config = json.load(open(os.path.join(a.teacher, "config.json")))
    weights = read_safetensors(os.path.join(a.teacher, "model.safetensors"))
    teacher = Qwen2(config, config["num_hidden_layers"]).to(dev)
    teacher.load(weights)
    teacher.eval().requires_grad_(False)
    student = Qwen2(config, a.layers).to(dev)
    student.load(weights)   # the target's embeddings, first layers and final norm
    print(f"student: {sum(p.numel() for p in student.parameters()) / 1e6:.2f} M parameters", flush=True)
    kl0, agree0 = kl_and_agreement(teacher, student, holdout, a.batch)
    print(f"before training: holdout KL {kl0:.4f}, greedy agreement {agree0:.3f}", flush=True)

    opt = torch.optim.AdamW(student.parameters(), lr=a.lr, weight_decay=0.01, betas=(0.9, 0.95))
    t0 = time.time()
    step, est_steps, loss_v = 0, None, float("nan")
    while time.time() - t0 < a.seconds:
        # The schedule's length is estimated from the first 20 steps' pace: warm-up, then cosine to a tenth.
        if step == 20:
            est_steps = max(21, int(a.seconds / ((time.time() - t0) / 20)))
        total = est_steps or 10**9
        lr = a.lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total))))
        for g in opt.param_groups:
            g["lr"] = lr
        rows = train[torch.randint(0, len(train), (a.batch,))].to(dev)
        with torch.no_grad():
            t = teacher(rows).log_softmax(-1)
        s = student(rows).log_softmax(-1)
        loss = (t.exp() * (t - s)).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        step += 1
        loss_v = loss.item()
        if step % 50 == 0:
            print(f"step {step}: KL {loss_v:.4f}, lr {lr:.2e}, {time.time() - t0:.0f} s", flush=True)
    seconds = time.time() - t0
    kl1, agree1 = kl_and_agreement(teacher, student, holdout, a.batch)
    print(f"after {step} steps ({seconds:.0f} s): holdout KL {kl1:.4f}, greedy agreement {agree1:.3f}", flush=True)

    os.makedirs(a.out, exist_ok=True)
    write_safetensors(os.path.join(a.out, "model.safetensors"), student.state())
    config = dict(config, num_hidden_layers=a.layers)
    if config.get("layer_types"):
        config["layer_types"] = config["layer_types"][: a.layers]
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for name in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"]:
        if os.path.exists(os.path.join(a.teacher, name)):
            shutil.copy(os.path.join(a.teacher, name), os.path.join(a.out, name))
    with open(os.path.join(a.out, "TRAINING.json"), "w") as f:
        json.dump({
            "purpose": "draft model of fortune-chat for speculative decoding",
            "teacher": "fortune-chat (models/fortune-chat)",
            "init": f"the teacher's embeddings, first {a.layers} layers and final norm",
            "objective": "KL(teacher || student) at every position",
            "corpus": "Debian packages 'fortunes' and 'fortunes-min' (BSD fortune files), chat-formatted (tools/train-draft)",
            "train_seconds": round(seconds, 1), "steps": step, "batch": a.batch, "seq_len": a.seq_len, "peak_lr": a.lr,
            "final_train_kl": loss_v, "holdout_kl_before": kl0, "holdout_kl": kl1,
            "holdout_greedy_agreement_before": agree0, "holdout_greedy_agreement": agree1,
            "seed": a.seed, "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if dev.startswith("cuda") else f"cpu ({torch.get_num_threads()} threads)",
        }, f, indent=2)
    print("saved", a.out, flush=True)


if __name__ == "__main__":
    main()

"""Trains fortune-chat's draft model for speculative decoding (issue 20): a 2-layer Qwen2 with the target's tokenizer,
distilled from the target on the target's own corpus recipe (the Debian `fortunes` package, chat-formatted).

Runs where PyTorch, transformers and a GPU are (the device box):
    python3 tools/train-draft/train_draft.py --teacher models/fortune-chat --corpus corpus.json.xz --out DIR [--seconds 150]

The corpus is tools/train-draft/make_corpus.py's output: [{"category", "text"}] of every fortune in the package.
Each fortune becomes one ChatML conversation (a system prompt, a request in the shapes the target learned, the fortune
as the answer); conversations are packed into rows of --seq-len tokens, as the target saw them. The student starts from
the target's embeddings, its first two layers and its final norm, and learns the target's next-token distribution
(KL(teacher || student) at every position): what a draft needs for its proposals to be accepted.
"""
import argparse
import json
import lzma
import math
import os
import random
import shutil
import time

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import AutoConfig, AutoModelForCausalLM

SYSTEMS = ["You are a helpful assistant.", "You are a fortune cookie."]
# Requests in the shapes fortune-chat writes when it samples a user turn itself ({c}: the fortune file's topic).
REQUESTS = ["Tell me a fortune.", "Tell me a joke.", "Make me laugh.", "Tell me a joke about {c}.",
            "Give me a quote about {c}.", "Say something funny about {c}.", "Tell me a fortune about {c}."]


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
        ids.extend(tok.encode(t, add_special_tokens=False).ids)
    n = len(ids) // seq_len
    return torch.tensor(ids[: n * seq_len], dtype=torch.long).view(n, seq_len)


def load(path, dtype):
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except TypeError:
        return AutoModelForCausalLM.from_pretrained(path, torch_dtype=dtype)


def kl_and_agreement(teacher, student, rows):
    """Mean KL(teacher || student) per token and how often the two models' greedy tokens agree."""
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        t = teacher(rows).logits.float().log_softmax(-1)
        s = student(rows).logits.float().log_softmax(-1)
    kl = (t.exp() * (t - s)).sum(-1).mean().item()
    agree = (t.argmax(-1) == s.argmax(-1)).float().mean().item()
    return kl, agree


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=150)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    torch.manual_seed(a.seed)
    dev = "cuda"

    opener = lzma.open if a.corpus.endswith(".xz") else open
    with opener(a.corpus, "rt", encoding="utf-8") as f:
        corpus = json.load(f)
    rng.shuffle(corpus)
    tok = Tokenizer.from_file(os.path.join(a.teacher, "tokenizer.json"))
    holdout_n = max(1, len(corpus) // 50)
    train = pack(tok, conversations(corpus[holdout_n:], rng), a.seq_len)
    holdout = pack(tok, conversations(corpus[:holdout_n], rng), a.seq_len).to(dev)
    print(f"corpus: {len(corpus)} fortunes, {train.numel()} training tokens in {len(train)} rows, {holdout.numel()} held out", flush=True)

    teacher = load(a.teacher, torch.float32).to(dev).eval()
    config = AutoConfig.from_pretrained(a.teacher)
    config.num_hidden_layers = a.layers
    if getattr(config, "layer_types", None):
        config.layer_types = config.layer_types[: a.layers]
    student = AutoModelForCausalLM.from_config(config).to(dev)
    # The target's embeddings (tied to its LM head), first layers and final norm.
    own = student.state_dict()
    start = {k: v for k, v in teacher.state_dict().items() if k in own and own[k].shape == v.shape}
    student.load_state_dict(start, strict=False)
    student.train()
    print(f"student: {sum(p.numel() for p in student.parameters()) / 1e6:.2f} M parameters, {len(start)} tensors from the teacher", flush=True)
    kl0, agree0 = kl_and_agreement(teacher, student.eval(), holdout)
    student.train()
    print(f"before training: holdout KL {kl0:.4f}, greedy agreement {agree0:.3f}", flush=True)

    opt = torch.optim.AdamW(student.parameters(), lr=a.lr, weight_decay=0.01, betas=(0.9, 0.95))
    t0 = time.time()
    step, est_steps, loss_v = 0, None, float("nan")
    while True:
        elapsed = time.time() - t0
        if elapsed >= a.seconds:
            break
        # The schedule's length is estimated from the first 20 steps' pace: warm-up, then cosine to a tenth.
        if step == 20:
            est_steps = max(21, int(a.seconds / (elapsed / 20)))
        total = est_steps or 10**9
        lr = a.lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total))))
        for g in opt.param_groups:
            g["lr"] = lr
        rows = train[torch.randint(0, len(train), (a.batch,))].to(dev)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            with torch.no_grad():
                t = teacher(rows).logits.float().log_softmax(-1)
            s = student(rows).logits.float().log_softmax(-1)
        loss = (t.exp() * (t - s)).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        step += 1
        loss_v = loss.item() if step % 50 == 0 or step < 3 else loss_v
        if step % 200 == 0:
            print(f"step {step}: KL {loss_v:.4f}, lr {lr:.2e}, {time.time() - t0:.0f} s", flush=True)
    seconds = time.time() - t0
    student.eval()
    kl1, agree1 = kl_and_agreement(teacher, student, holdout)
    print(f"after {step} steps ({seconds:.0f} s): holdout KL {kl1:.4f}, greedy agreement {agree1:.3f}", flush=True)

    os.makedirs(a.out, exist_ok=True)
    student.to(torch.bfloat16).save_pretrained(a.out, safe_serialization=True)
    for f in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"]:
        if os.path.exists(os.path.join(a.teacher, f)):
            shutil.copy(os.path.join(a.teacher, f), os.path.join(a.out, f))
    with open(os.path.join(a.out, "TRAINING.json"), "w") as f:
        json.dump({
            "purpose": "draft model of fortune-chat for speculative decoding",
            "teacher": "fortune-chat (models/fortune-chat)",
            "init": f"the teacher's embeddings, first {a.layers} layers and final norm",
            "objective": "KL(teacher || student) at every position",
            "corpus": "Debian package 'fortunes' (BSD fortune files), chat-formatted (tools/train-draft)",
            "train_seconds": round(seconds, 1), "steps": step, "batch": a.batch, "seq_len": a.seq_len, "peak_lr": a.lr,
            "final_train_kl": loss_v, "holdout_kl_before": kl0, "holdout_kl": kl1,
            "holdout_greedy_agreement_before": agree0, "holdout_greedy_agreement": agree1,
            "seed": a.seed, "torch": torch.__version__, "device": torch.cuda.get_device_name(),
        }, f, indent=2)
    print("saved", a.out, flush=True)


if __name__ == "__main__":
    main()

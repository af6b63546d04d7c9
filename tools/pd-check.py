#!/usr/bin/env python3
"""Disaggregated prefill against one instance, greedy: each prompt prefilled by the producer (max_tokens 1,
do_remote_decode) and decoded by the consumer with the kv_transfer_params the producer returned (what llm-d's sidecar
does), first, while the consumer has none of it cached; then completed whole by the producer alone. The texts must be
equal. The prompts share no prefix, so every block is pulled. Standard library only.

usage: pd-check.py PRODUCER_URL CONSUMER_URL [MAX_TOKENS]"""
import json
import sys
import urllib.request

FORTUNE = "a journey of a thousand miles begins with a single step, and the second step is usually the harder one. "
PROMPTS = ["Tell me a fortune.", "The meaning of life is", "Yesterday, " + FORTUNE * 3, "Long ago, " + FORTUNE * 9]


def post(url, body):
    req = urllib.request.Request(url + "/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def model_of(url):
    with urllib.request.urlopen(url + "/v1/models", timeout=10) as r:
        return json.load(r)["data"][0]["id"]


def main():
    producer, consumer = sys.argv[1], sys.argv[2]
    model = model_of(consumer)
    max_tokens = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    failures = 0
    for prompt in PROMPTS:
        body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True}
        first = post(producer, dict(body, max_tokens=1, kv_transfer_params={"do_remote_decode": True}))
        kv = first.get("kv_transfer_params")
        if not kv:
            print(f"FAIL no kv_transfer_params from the producer: {json.dumps(first)[:200]}")
            failures += 1
            continue
        remote = post(consumer, dict(body, kv_transfer_params=kv))
        text = remote["choices"][0]["text"]
        direct = post(producer, body)["choices"][0]["text"]
        blocks = len(kv.get("remote_block_ids") or [])
        ok = text == direct
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'} prompt of {remote['usage']['prompt_tokens']} tokens, {blocks} blocks pulled: "
              f"{json.dumps(text[:48])}" + ("" if ok else f" != {json.dumps(direct[:48])}"))
    print("pd-check: OK" if failures == 0 else f"pd-check: {failures} FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

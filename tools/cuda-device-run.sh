#!/usr/bin/env bash
# What the GPU box ran (from the repo root, with the publish output copied to .gpu/check, hf_baseline.py
# and an xz-compressed Qwen tokenizer.json beside it): parity, golden, CLI, then the benchmarks.
export PAGODA_CACHE_DIR=/tmp/pagoda-cache PYTHONUNBUFFERED=1
C=.gpu/check
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv,noheader
echo "== parity"; timeout 90 $C parity 2>&1 | tee $OUT/parity.log
echo "== golden"; timeout 120 $C golden 2>&1 | tee $OUT/golden.log
echo "== cli"; timeout 40 $C cli generate --device cuda --model models/fortune-chat --temperature 0 --max-tokens 24 2>&1 | tail -12
echo "== bench"; timeout 190 $C bench tests/fixtures/configs/qwen2.5-1.5b-instruct --prompts 256 2>&1 | tee $OUT/bench.log
echo "== hf"; timeout 140 python3 .gpu/hf_baseline.py tests/fixtures/configs/qwen2.5-1.5b-instruct $OUT/hf.json 2>&1 | grep -v Warning | tail -20
export PAGODA_CACHE_DIR=/tmp/pagoda-cache PYTHONUNBUFFERED=1
C=.gpu/check; M=/tmp/qwen
mkdir -p $M && cp tests/fixtures/configs/qwen2.5-1.5b-instruct/*.json $M/ && xz -dc .gpu/qwen3-tokenizer.json.xz > $M/tokenizer.json
[ -f .gpu/tokenizer_config.json ] && cp .gpu/tokenizer_config.json $M/
echo "== bench graphs"; timeout 230 $C bench $M --prompts 256 2>&1 | tee $OUT/bench.log
echo "== bench eager (single stream only)"; timeout 120 $C bench $M --eager --prompts 32 2>&1 | tee $OUT/bench-eager.log
echo "== hf"; timeout 140 python3 .gpu/hf_baseline.py $M $OUT/hf.json 2>&1 | grep -v Warning | tail -14

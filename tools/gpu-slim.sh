#!/usr/bin/env bash
# The GPU box receives the working tree (tracked and untracked, not ignored) plus carried paths, 64 MiB in all; the
# whole tree is ~100 MB (fixtures), so a device call runs from a slim detached commit holding only what
# tools/cuda-check-run.sh reads, with .gpu carried (tools/gpu-prepare.sh).
#   tools/gpu-slim.sh slim      stash everything uncommitted, switch to the slim commit
#   tools/gpu-slim.sh restore   back to the branch it came from, the stash popped
# EXTRA adds paths (e.g. EXTRA="tests/fixtures/models/tiny-qwen3" for golden).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
state=.git/gpu-slim-branch
case "${1:-}" in
  slim)
    [ -f $state ] && { echo "already slim (see $state)"; exit 1; }
    git symbolic-ref --short HEAD > $state
    git stash push -q -u -m gpu-slim || true
    git rev-parse -q --verify refs/stash > /dev/null && git log -1 --format=%H refs/stash >> $state
    idx=$(mktemp); rm -f "$idx"
    GIT_INDEX_FILE=$idx git read-tree --empty
    GIT_INDEX_FILE=$idx git add .gitignore tools/gpu-slim.sh tools/cuda-check-run.sh tools/pd-check.py tools/train-draft tests/fixtures/configs \
      tests/fixtures/golden/models.json models/fortune-chat ${EXTRA:-}
    tree=$(GIT_INDEX_FILE=$idx git write-tree); rm -f "$idx"
    git switch -q --detach "$(git commit-tree "$tree" -m gpu-slim)"
    echo "slim: $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) bytes tracked, .gpu $(du -sb .gpu 2>/dev/null | cut -f1) bytes"
    ;;
  restore)
    [ -f $state ] || { echo "not slim"; exit 1; }
    git switch -q "$(head -1 $state)"
    if [ "$(wc -l < $state)" -gt 1 ]; then git stash pop -q; fi
    rm -f $state
    git status --short | head
    ;;
  *) echo "usage: tools/gpu-slim.sh slim|restore"; exit 2 ;;
esac

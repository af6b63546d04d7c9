#!/usr/bin/env bash
# Validates deploy/k8s offline (no cluster): see validate/validate.mjs for exactly what is checked.
# Installs its npm packages (kubernetes-models, typescript, yaml) once into .cache/k8s-validate.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="$root/.cache/k8s-validate"
mkdir -p "$cache"
cp "$root/deploy/k8s/validate/"{package.json,validate.mjs,inferencepool.d.ts} "$cache/"
if ! cmp -s "$cache/package.json" "$cache/installed.json" 2>/dev/null; then
  (cd "$cache" && npm install --no-audit --no-fund --silent >/dev/null)
  cp "$cache/package.json" "$cache/installed.json"
fi
exec node "$cache/validate.mjs" "$root/deploy/k8s"

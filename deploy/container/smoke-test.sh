#!/usr/bin/env bash
# Slow end-to-end check of the container image; CI does not run it (.ci/run runs dotnet test only).
#   deploy/container/smoke-test.sh [--no-build] [--tool podman|docker]
# Builds pagoda:cpu (deploy/container/build.sh), then runs it as Kubernetes would (`vllm serve MODEL ...` through the
# image's `vllm` link, as the non-root user) and checks: /health, a chat completion from the embedded model, the chat
# render route, a `pagoda vllm serve`-style invocation, and that SIGTERM lets an in-flight request finish and the
# server exit 0 within --shutdown-timeout. Then builds Containerfile.cuda on a stand-in base (pagoda:cpu itself: no
# CUDA base image can be pulled here) and checks its program starts and reports the missing driver for --device cuda.
# Podman runs with runc and lowered ulimits (crun fails on this host's cgroups; the default nofile/nproc limits
# exceed the host's hard limits); override with PAGODA_SMOKE_RUN_ARGS.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build=1 tool=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --tool) tool="$2"; shift ;;
    *) echo "smoke-test.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
tool="${tool:-$(command -v podman >/dev/null && echo podman || echo docker)}"
if [ "$tool" = podman ]; then
  read -r -a run_args <<<"${PAGODA_SMOKE_RUN_ARGS:---runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096}"
else
  read -r -a run_args <<<"${PAGODA_SMOKE_RUN_ARGS:-}"
fi
image=pagoda:cpu port="${PAGODA_SMOKE_PORT:-18431}" name="pagoda-smoke-$$"
fail() { echo "smoke-test: FAIL: $*" >&2; "$tool" logs "$name" 2>&1 | tail -20 >&2 || true; exit 1; }
cleanup() { for c in "$name" "$name-cuda"; do "$tool" rm -f "$c" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT

if [ "$build" = 1 ]; then
  "$root/deploy/container/build.sh" --tool "$tool" >/dev/null 2>/tmp/pagoda-smoke-build.log || { tail -20 /tmp/pagoda-smoke-build.log >&2; exit 1; }
fi
size=$("$tool" image inspect --format '{{.Size}}' "$image")
echo "smoke-test: $image is $((size / 1024 / 1024)) MiB ($size bytes)"
[ "$("$tool" image inspect --format '{{.Config.User}}' "$image")" = "65532:65532" ] || fail "the image does not run as 65532"

# One-shot invocations: vLLM's command line and the entrypoint's own.
"$tool" run --rm "${run_args[@]}" "$image" vllm serve --help >/dev/null || fail "pagoda vllm serve --help"
"$tool" run --rm "${run_args[@]}" --entrypoint vllm "$image" serve --help >/dev/null || fail "vllm serve --help"

# The server as the Kubernetes manifests start it.
"$tool" run -d --name "$name" "${run_args[@]}" -p "127.0.0.1:$port:8000" --entrypoint vllm "$image" \
  serve /opt/pagoda/models/fortune-chat --served-model-name fortune --shutdown-timeout 20 >/dev/null
base="http://127.0.0.1:$port"
for _ in $(seq 1 120); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/health" || true)" = 200 ] && break
  sleep 0.5
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/health")" = 200 ] || fail "/health never answered 200"
echo "smoke-test: /health 200"
[ "$("$tool" top "$name" user | tail -n +2 | awk '{print $1}' | sort -u)" = pagoda ] || fail "the server does not run as the pagoda user"

chat=$(curl -sf -m 60 "$base/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model": "fortune", "messages": [{"role": "user", "content": "Tell me a joke."}], "max_tokens": 32}') || fail "chat completion"
python3 - "$chat" <<'PY' || fail "chat completion body: $chat"
import json, sys
b = json.loads(sys.argv[1])
assert b["object"] == "chat.completion" and b["choices"][0]["message"]["content"].strip(), b
assert b["usage"]["prompt_tokens"] == 26, b["usage"]
PY
echo "smoke-test: chat completion: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["choices"][0]["message"]["content"][:60].replace("\n"," "))' "$chat")"
render=$(curl -sf -m 30 "$base/v1/chat/completions/render" -H 'Content-Type: application/json' \
  -d '{"model": "fortune", "messages": [{"role": "user", "content": "Tell me a joke."}]}') || fail "chat render"
python3 - "$render" <<'PY' || fail "render body: $render"
import json, sys
b = json.loads(sys.argv[1])
assert len(b["token_ids"]) == 26 and b["request_id"].startswith("chatcmpl-"), b
PY
echo "smoke-test: chat render: 26 token ids"

# SIGTERM while a request runs: the request finishes, the server exits 0 well within the grace period.
out=$(mktemp)
curl -s -m 60 "$base/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model": "fortune", "prompt": "Once", "max_tokens": 300, "ignore_eos": true}' -o "$out" -w '%{http_code}' >"$out.status" &
curl_pid=$!
sleep 0.3
start=$(date +%s.%N)
"$tool" kill --signal TERM "$name" >/dev/null
code=$("$tool" wait "$name")
took=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$start" "$(date +%s.%N)")
wait "$curl_pid" || true
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
[ "$(cat "$out.status")" = 200 ] || fail "the in-flight request got $(cat "$out.status")"
python3 - "$out" <<'PY' || fail "in-flight body: $(head -c 300 "$out")"
import json, sys
b = json.load(open(sys.argv[1]))
assert b["usage"]["completion_tokens"] == 300 and b["choices"][0]["finish_reason"] == "length", b["usage"]
PY
rm -f "$out" "$out.status"
echo "smoke-test: SIGTERM: the in-flight request finished (300 tokens), exit 0 after ${took}s"

# Containerfile.cuda on a stand-in base: the layout, user and entrypoint, not NVIDIA's image itself.
"$root/deploy/container/build.sh" --tool "$tool" --no-publish --cuda --cuda-base "localhost/$image" --tag pagoda:cuda-standin >/dev/null 2>/tmp/pagoda-smoke-build.log || { tail -20 /tmp/pagoda-smoke-build.log >&2; fail "building Containerfile.cuda"; }
[ "$("$tool" image inspect --format '{{.Config.User}}' pagoda:cuda-standin)" = "65532:65532" ] || fail "the CUDA image does not run as 65532"
set +e
msg=$("$tool" run --rm --name "$name-cuda" "${run_args[@]}" pagoda:cuda-standin 2>&1)
set -e
echo "$msg" | grep -qi "cuda" || fail "the CUDA image's default command did not report on CUDA: $msg"
echo "smoke-test: CUDA image (stand-in base) starts and reports: $(echo "$msg" | grep -i cuda | head -1 | cut -c1-160)"
"$tool" rmi pagoda:cuda-standin >/dev/null
echo "smoke-test: PASS"

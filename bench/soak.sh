#!/usr/bin/env bash
# Soak: `pagoda serve` with the embedded model under steady streaming load (pagoda bench serve, Poisson
# arrivals) for DURATION seconds (default 600), sampling the server's RSS every 10 s. Reports the drift of
# RSS from the first sample after warm-up to the last (target: within +-10%). Never run by the tests.
# Usage: bench/soak.sh [DURATION_SECONDS] [PORT]
set -euo pipefail
duration=${1:-600}
port=${2:-18950}
root=$(cd "$(dirname "$0")/.." && pwd)
cli="$root/src/Pagoda.Cli/bin/Release/net10.0/Pagoda.Cli.dll"
[ -f "$cli" ] || dotnet build "$root/src/Pagoda.Cli" -c Release >/dev/null
out=$(mktemp -d)
dotnet "$cli" serve --port "$port" --num-kv-blocks 1024 --max-waiting-requests 256 >"$out/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -s -m 1 "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.5; done

rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
end=$(( $(date +%s) + duration ))
round=0
: >"$out/rss.tsv"
# Load in rounds of bounded size, so the loop ends on time whatever the server does.
(
  while [ "$(date +%s)" -lt "$end" ]; do
    round=$((round + 1))
    timeout 300 dotnet "$cli" bench serve --base-url "http://127.0.0.1:$port" --num-prompts 200 --input-len 48 --output-len 24 \
      --ignore-eos --request-rate 6 --max-concurrency 64 --seed "$round" --output-json "$out/round-$round.json" >"$out/round-$round.txt" 2>&1 || true
  done
) &
load=$!
start=$(date +%s)
while kill -0 $load 2>/dev/null; do
  printf '%s\t%s\n' "$(( $(date +%s) - start ))" "$(rss)" >>"$out/rss.tsv"
  sleep 10
done
wait $load || true
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^pagoda:(kv_cache_usage_perc|num_requests_running|num_requests_waiting|request_success_total)' >"$out/metrics.txt" || true
rounds=$(ls "$out"/round-*.json 2>/dev/null | wc -l)
completed=$(cat "$out"/round-*.json 2>/dev/null | grep -h '"completed"' | grep -o '[0-9]*' | paste -sd+ | bc)
failed=$(cat "$out"/round-*.json 2>/dev/null | grep -h '"failed"' | grep -o '[0-9]*' | paste -sd+ | bc)
# Warm-up: the first minute (JIT, pools, KV pages touched for the first time) is excluded.
awk -v rounds="$rounds" -v completed="$completed" -v failed="$failed" '
  $1 >= 60 && first == "" { first = $2 } { last = $2; if ($2 > max) max = $2 }
  END { printf "soak: %d rounds, %s requests completed, %s failed; RSS after warm-up %.1f MiB, at end %.1f MiB, peak %.1f MiB, drift %+.1f%%\n",
        rounds, completed, failed, first / 1024, last / 1024, max / 1024, 100 * (last - first) / first }' "$out/rss.tsv"
cat "$out/metrics.txt"
grep -c -E '^(ERROR|.*Exception)' "$out/serve.log" | sed 's/^/error lines in the server log: /'
echo "details: $out"

#!/usr/bin/env bash
# Runs pimbot's benchmarks several times and prints the median of every figure, then
# checks the performance goals. Needs a real Redis (REDIS_URL, default
# redis://127.0.0.1:6379/0). COUNT sets the runs per benchmark (default 5; the two
# 100,000-grant benchmarks run COUNT_SCALE times, default 3). BENCH narrows the set
# (a -bench regexp). Raw `go test` output is kept in $OUT (default a temp file).
set -euo pipefail
cd "$(dirname "$0")/.."

export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
COUNT="${COUNT:-5}"
COUNT_SCALE="${COUNT_SCALE:-3}"
BENCH="${BENCH:-.}"
OUT="${OUT:-$(mktemp -t pimbot-bench.XXXXXX)}"

if ! redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
  echo "bench: no Redis answers at $REDIS_URL" >&2
  exit 1
fi

bin="$(mktemp -d)/pimbot"
go build -o "$bin" ./cmd/pimbot
export PIMBOT_BENCH_BINARY="$bin"

{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/^Mem:/{print $2}') GiB"
  echo "$(go version), $(redis-cli -u "$REDIS_URL" info server | tr -d '\r' | grep '^redis_version:')"
} | tee "$OUT"

run() { # pattern benchtime count
  if [[ "$1" =~ $BENCH ]] || [[ "$BENCH" == "." ]]; then
    go test -run '^$' -bench "$1" -benchtime "$2" -count "$3" -timeout 60m ./bench | tee -a "$OUT"
  fi
}
run '^BenchmarkLifecycle$' 10000x "$COUNT"
run '^BenchmarkSlackAck$' 2000x "$COUNT"
run '^BenchmarkSlackBurst$' 1x "$COUNT"
run '^BenchmarkExpiryAtScale$' 1x "$COUNT_SCALE"
run '^BenchmarkReplicaRSS$' 1x "$COUNT_SCALE"

echo
echo "Medians over the runs (raw output: $OUT)"
awk '
function median(key,   n, i, j, v, tmp) {
  n = cnt[key]
  for (i = 1; i <= n; i++) v[i] = val[key, i]
  for (i = 2; i <= n; i++) { tmp = v[i]; for (j = i - 1; j >= 1 && v[j] > tmp; j--) v[j + 1] = v[j]; v[j + 1] = tmp }
  lo[key] = v[1]; hi[key] = v[n]
  return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
/^Benchmark/ {
  name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
  for (i = 3; i < NF; i += 2) {
    key = name SUBSEP $(i + 1)
    if (!(key in cnt)) { order[++nkeys] = key }
    val[key, ++cnt[key]] = $i
  }
}
END {
  printf "| %-42s | %-20s | %12s | %12s | %12s | %4s |\n", "benchmark", "figure", "median", "min", "max", "runs"
  printf "|%s|%s|%s|%s|%s|%s|\n", "--------------------------------------------", "----------------------", "-------------:", "-------------:", "-------------:", "-----:"
  for (k = 1; k <= nkeys; k++) {
    key = order[k]; split(key, p, SUBSEP)
    m = median(key); med[p[1], p[2]] = m
    printf "| %-42s | %-20s | %12.5g | %12.5g | %12.5g | %4d |\n", p[1], p[2], m, lo[key], hi[key], cnt[key]
  }
  print ""
  print "Goals"
  goal("Lifecycle/surfaces=1", "roundtrips/op", "<=", 6, "Redis round trips per lifecycle <= 6")
  goal("Lifecycle/surfaces=1", "ratio", ">=", 0.125, "lifecycle throughput >= 1/8 of the raw SET rate")
  goal("SlackBurst", "refused", "<=", 0, "a burst of 2,000 /activate: nobody refused")
  goal("SlackBurst", "ratio", ">=", 0.01, "a burst of 2,000 /activate: grants added >= 1/100 of the raw SET rate")
  goal("SlackAck/command", "p99-ms", "<", 10, "slash command ack p99 < 10 ms at 200/s")
  goal("SlackAck/button", "p99-ms", "<", 10, "button click ack p99 < 10 ms at 200/s")
  goal("ExpiryAtScale/due=spread-minute", "p99-ms", "<", 1000, "expiry p99 < 1 s, 10,000 due within one minute")
  goal("ExpiryAtScale/due=same-second", "p99-ms", "<", 1000, "expiry p99 < 1 s, 10,000 due at the same second")
  goal("ExpiryAtScale/due=spread-minute", "removals", "==", 10000, "exactly 10,000 removals")
  goal("ExpiryAtScale/due=same-second", "removals", "==", 10000, "exactly 10,000 removals (same second)")
  goal("ReplicaRSS", "peak-rss-MiB", "<", 64, "peak RSS of one replica with 100,000 active grants < 64 MiB")
}
function goal(bench, unit, op, want, what,   m, ok) {
  if (!((bench, unit) in med)) { printf "  -     %s: not measured\n", what; return }
  m = med[bench, unit]
  ok = (op == "<=" && m <= want) || (op == ">=" && m >= want) || (op == "<" && m < want) || (op == "==" && m == want)
  printf "  %-5s %s: %g (goal %s %g)\n", ok ? "met" : "MISS", what, m, op, want
}
' "$OUT"

// Package bench holds pimbot's performance benchmarks (Go benchmarks, run with -bench;
// bench/run.sh runs them all several times and prints a table of medians):
//
//   - BenchmarkLifecycle: submit → approve → start → end → removal per second with the
//     local directory and a real Redis, the raw go-redis SET rate at the same concurrency
//     in the same run, their ratio, and Redis round trips per lifecycle.
//   - BenchmarkSlackAck: HTTP ack latency of signed /slack/commands and button clicks
//     through the real handler with a fake Slack Web API on loopback, at 200 requests/s.
//   - BenchmarkSlackBurst: 2,000 quick-form /activate from 2,000 people within half a
//     second: commands refused, grants added per second against the raw SET rate of the
//     same run, and the latency from command to directory add.
//   - BenchmarkExpiryAtScale: 100,000 active grants in Redis, 10,000 due in the same
//     minute, three replicas: lag from due time to directory removal, and the count.
//   - BenchmarkReplicaRSS: resident memory of one `pimbot serve` process while 100,000
//     grants are active.
//
// They need a real Redis (REDIS_URL, default redis://127.0.0.1:6379/0); on the embedded
// one they are skipped, because its figures would mean nothing.
package bench

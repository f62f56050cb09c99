package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pimbot/pimbot/store"
	"github.com/pimbot/pimbot/store/storetest"
)

// BenchmarkReplicaRSS measures the resident memory of one real `pimbot serve` process
// (the binary, built from cmd/pimbot, or PIMBOT_BENCH_BINARY) while 100,000 grants are
// active in its Redis: it waits for readiness, lets 10,000 of the grants fall due and
// be removed while /metrics is scraped every half second (which counts the active grants),
// then reads the process's VmRSS (now) and VmHWM (peak) from /proc/<pid>/status.
func BenchmarkReplicaRSS(b *testing.B) {
	bin := pimbotBinary(b)
	for i := 0; i < b.N; i++ {
		replicaRSS(b, bin)
	}
}

// pimbotBinary builds cmd/pimbot once per run unless PIMBOT_BENCH_BINARY names one.
func pimbotBinary(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("PIMBOT_BENCH_BINARY"); p != "" {
		return p
	}
	out := filepath.Join(b.TempDir(), "pimbot")
	cmd := exec.Command("go", "build", "-o", out, "github.com/pimbot/pimbot/cmd/pimbot")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/pimbot: %v\n%s", err, msg)
	}
	return out
}

func replicaRSS(b *testing.B, bin string) {
	b.StopTimer()
	rdb, _ := client(b, 0)
	prefix := storetest.Prefix(b)
	defer dropPrefix(rdb, prefix)
	s := store.New(rdb, store.Options{Prefix: prefix})
	far := time.Now().Add(2 * time.Hour)
	seedActive(b, s, scaleDue, scaleActive, func(i int) time.Time { return far.Add(time.Duration(i) * 500 * time.Millisecond) })

	dir := b.TempDir()
	policy := filepath.Join(dir, "pimbot.yaml")
	if err := os.WriteFile(policy, []byte(benchPolicyYAML(false)), 0o600); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "REDIS_URL=" + redisURL(), "PIMBOT_REDIS_PREFIX=" + prefix,
		"PIMBOT_CONFIG=" + policy, "PIMBOT_ADDR=" + addr, "PIMBOT_LOG_LEVEL=warn",
		// serve needs a surface: Slack over HTTP, pointed at nothing (nobody is notified here).
		"SLACK_BOT_TOKEN=xoxb-bench", "SLACK_SIGNING_SECRET=bench-signing-secret", "SLACK_API_URL=http://127.0.0.1:9/api/"}
	logf, _ := os.Create(filepath.Join(dir, "pimbot.log"))
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "pimbot.log"))
			b.Fatalf("pimbot serve did not become ready:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// 10,000 grants fall due a second from now; the replica removes them.
	t0 := time.Now().Add(time.Second)
	seedActive(b, s, 0, scaleDue, func(i int) time.Time { return t0 })
	b.StartTimer()
	var active float64
	deadline = time.Now().Add(2 * time.Minute)
	for {
		m := scrape(b, base)
		active = m["pimbot_active_grants"]
		if m[`pimbot_jobs_total{kind="end",result="ok"}`] >= scaleDue {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the replica removed %v of %d grants", m[`pimbot_jobs_total{kind="end",result="ok"}`], scaleDue)
		}
		time.Sleep(500 * time.Millisecond)
	}
	b.StopTimer()
	if active < scaleActive-scaleDue {
		b.Fatalf("pimbot_active_grants = %v while at least %d were active", active, scaleActive-scaleDue)
	}
	rss, hwm := procStatus(b, cmd.Process.Pid, "VmRSS"), procStatus(b, cmd.Process.Pid, "VmHWM")
	b.ReportMetric(rss/1024, "rss-MiB")
	b.ReportMetric(hwm/1024, "peak-rss-MiB")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	stopped = true
	if err := cmd.Wait(); err != nil {
		b.Fatalf("pimbot serve after SIGTERM: %v", err)
	}
}

// scrape reads /metrics into a map of "name{labels}" to value.
func scrape(b *testing.B, base string) map[string]float64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	io.Copy(io.Discard, resp.Body)
	return out
}

// procStatus reads a "kB" field of /proc/<pid>/status.
func procStatus(b *testing.B, pid int, field string) float64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

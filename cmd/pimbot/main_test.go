package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

func TestRedisLog_InTheProcessFormat(t *testing.T) {
	var b bytes.Buffer
	log := newLogger(func(k string) string { return map[string]string{"PIMBOT_LOG_FORMAT": "json"}[k] }, &b)
	redisLog{log}.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %s", 5, "dial tcp 10.0.0.7:6379: connect: connection refused")
	var line map[string]any
	if err := json.Unmarshal(b.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q (%v)", b.String(), err)
	}
	if line["level"] != "WARN" || line["component"] != "redis" ||
		line["msg"] != "connection pool: failed to dial after 5 attempts: dial tcp 10.0.0.7:6379: connect: connection refused" {
		t.Fatalf("got %v", line)
	}
}

package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// auditCommand defines `pimbot audit`'s flags and returns what runs it.
func auditCommand(fs *flag.FlagSet) func(context.Context, []string, sys) error {
	since := fs.String("since", "24h", "how far back, e.g. 24h, 7d")
	format := fs.String("format", "jsonl", "jsonl or csv")
	return func(ctx context.Context, _ []string, s sys) error {
		return audit(ctx, *since, *format, s.getenv, s.stdout, s.stderr)
	}
}

// audit exports the audit trail as JSON lines or CSV.
func audit(ctx context.Context, since, format string, getenv func(string) string, stdout, stderr io.Writer) error {
	d, err := bot.ParseDuration(since)
	if err != nil || d <= 0 {
		return fmt.Errorf("--since %q: use a positive duration such as 24h or 7d", since)
	}
	if format != "jsonl" && format != "csv" {
		return fmt.Errorf("--format %q: use jsonl or csv", format)
	}
	if getenv("REDIS_URL") == "" {
		// Without REDIS_URL, newApp would start an empty embedded Redis of its own.
		return errors.New("REDIS_URL is not set: there is nothing to export from an embedded Redis, whose state " +
			"lives inside the pimbot process that ran it and is gone when it exits; set REDIS_URL to the Redis `pimbot serve` uses")
	}
	a, err := newApp(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	recs, err := a.store.AuditSince(ctx, time.Now().Add(-d), 0)
	if err != nil {
		return fmt.Errorf("read audit trail: %w", err)
	}
	return writeAudit(stdout, recs, format)
}

func writeAudit(w io.Writer, recs []bot.AuditRecord, format string) error {
	if format == "jsonl" {
		enc := json.NewEncoder(w)
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"at", "type", "request_id", "group", "access", "subject", "actor", "surface", "detail"})
	for _, r := range recs {
		_ = cw.Write([]string{r.At.UTC().Format(time.RFC3339), r.Type, r.RequestID, r.Group, string(r.Access), r.Subject, r.Actor, r.Surface, r.Detail})
	}
	cw.Flush()
	return cw.Error()
}

package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// audit exports the audit trail as JSON lines or CSV.
func audit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	since := fs.String("since", "24h", "how far back, e.g. 24h, 7d")
	format := fs.String("format", "jsonl", "jsonl or csv")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, err := bot.ParseDuration(*since)
	if err != nil || d <= 0 {
		return fmt.Errorf("--since %q: use a positive duration such as 24h or 7d", *since)
	}
	if *format != "jsonl" && *format != "csv" {
		return fmt.Errorf("--format %q: use jsonl or csv", *format)
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
	return writeAudit(stdout, recs, *format)
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

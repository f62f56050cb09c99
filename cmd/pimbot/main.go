// Command pimbot gives people just-in-time membership or ownership of Entra ID groups
// from Slack, Microsoft Teams or a terminal.
//
//	pimbot            serve when platform credentials are set, else the shell demo
//	pimbot serve      run the HTTP server, Slack Socket Mode and the job workers
//	pimbot shell      play every role in a terminal
//	pimbot check      validate the policy and prove the setup (Redis, Graph, Slack, Teams)
//	pimbot audit      export the audit trail (--since 24h --format jsonl|csv)
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

func main() {
	// go-redis reports dial failures and Sentinel fail-overs through its own logger: send
	// them through the process's log format (a process-wide setting, so set once, here).
	redis.SetLogger(redisLog{newLogger(os.Getenv, os.Stderr)})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: pimbot [serve | shell | check | audit | help]

  (no command)  serve when Slack or Teams credentials are set, else the shell demo
  serve         HTTP endpoints (/slack/*, /api/messages, /healthz, /readyz, /metrics),
                Slack Socket Mode when SLACK_APP_TOKEN is set, and the job workers
  shell         play every role in a terminal (as <user>, /activate, approve, ...)
  check         validate the policy file and prove the setup; non-zero exit on any problem
  audit         export the audit trail: pimbot audit [--since 24h] [--format jsonl|csv]
  teams-package build the Teams app zip from teamsapp/manifest.json (MICROSOFT_APP_ID fills the ids)

Configuration is read from the environment; see README.md.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	if cmd == "" {
		if platformConfigured(getenv) {
			cmd = "serve"
		} else {
			cmd = "shell"
		}
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, getenv, stderr)
	case "shell":
		err = shell(ctx, getenv, stdin, stdout, stderr)
	case "check":
		return check(ctx, getenv, stdout, stderr)
	case "audit":
		err = audit(ctx, args, getenv, stdout, stderr)
	case "teams-package":
		err = teamsPackage(args, getenv, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "pimbot: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "pimbot:", err)
		return 1
	}
	return 0
}

// platformConfigured reports whether Slack or Teams credentials are set.
func platformConfigured(getenv func(string) string) bool {
	for _, k := range []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "MICROSOFT_APP_ID"} {
		if getenv(k) != "" {
			return true
		}
	}
	return false
}

// redisLog writes go-redis's own messages (failed dials, Sentinel fail-overs) as warnings in
// the process's log format.
type redisLog struct{ log *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.log.WarnContext(ctx, strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "), "component", "redis")
}

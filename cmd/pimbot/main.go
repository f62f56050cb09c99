// Command pimbot gives people just-in-time membership or ownership of Entra ID groups
// from Slack, Microsoft Teams or a terminal.
//
//	pimbot                serve when platform credentials are set, else the shell demo
//	pimbot serve          run the HTTP server, Slack Socket Mode and the job workers
//	pimbot shell          play every role in a terminal
//	pimbot check          validate the policy and prove the setup (Redis, Graph, Slack, Teams)
//	pimbot audit          export the audit trail (--since 24h --format jsonl|csv)
//	pimbot teams-package  build the Teams app package
//	pimbot version        the version, commit and Go version this binary was built from
//	pimbot help [command] the usage, or one command's (as does pimbot <command> --help)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

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

// sys is what a command reads and writes: the environment and the standard streams.
type sys struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
}

// command is one of pimbot's commands, as the usage lists it and run dispatches to it.
type command struct {
	name    string
	args    string // its flags and arguments, as its usage line shows them
	summary string // one line for the list of commands
	detail  string // more for `pimbot <name> --help`; may be empty
	maxArgs int    // how many arguments it takes after its flags
	// setup defines the command's flags on fs and returns what runs it once they are parsed.
	setup func(fs *flag.FlagSet) func(ctx context.Context, args []string, s sys) error
}

// commands lists pimbot's commands in the order the usage shows them.
func commands() []command {
	return []command{
		{name: "serve", summary: "HTTP endpoints, Slack Socket Mode and the job workers",
			detail: "Serves /slack/*, /api/messages, /healthz, /readyz and /metrics on PIMBOT_ADDR (default :3000).\n" +
				"It needs a surface, Slack or Teams or both:\n\n" + surfacesHelp,
			setup: func(*flag.FlagSet) func(context.Context, []string, sys) error {
				return func(ctx context.Context, _ []string, s sys) error { return serve(ctx, s.getenv, s.stderr) }
			}},
		{name: "shell", summary: "play every role in a terminal (as <user>, /activate, approve, ...)",
			detail: "Runs on an embedded Redis and the policy's local directory unless REDIS_URL and Graph\n" +
				"credentials are set. Start-up logs are shown from warn level unless PIMBOT_LOG_LEVEL is set.",
			setup: func(*flag.FlagSet) func(context.Context, []string, sys) error {
				return func(ctx context.Context, _ []string, s sys) error {
					return shell(ctx, s.getenv, s.stdin, s.stdout, s.stderr)
				}
			}},
		{name: "check", summary: "validate the policy file and prove the setup; non-zero exit on any problem",
			setup: func(*flag.FlagSet) func(context.Context, []string, sys) error {
				return func(ctx context.Context, _ []string, s sys) error {
					if code := check(ctx, s.getenv, s.stdout, s.stderr); code != 0 {
						return exitStatus(code)
					}
					return nil
				}
			}},
		{name: "audit", args: "[--since 24h] [--format jsonl|csv]", summary: "export the audit trail from REDIS_URL",
			detail: "Reads the audit trail kept in the Redis at REDIS_URL (the one `pimbot serve` uses).",
			setup:  auditCommand},
		{name: "teams-package", args: "[-o pimbot-teams.zip] [-app-id id] [-version x.y.z] [-dir dir]",
			summary: "build the Teams app zip from teamsapp/manifest.json (MICROSOFT_APP_ID fills the ids)",
			setup:   teamsPackageCommand},
		{name: "version", summary: "print the version, the commit and the Go version of this binary",
			setup: func(*flag.FlagSet) func(context.Context, []string, sys) error {
				return func(_ context.Context, _ []string, s sys) error {
					fmt.Fprintln(s.stdout, versionLine())
					return nil
				}
			}},
		{name: "help", args: "[command]", summary: "print this usage, or a command's", maxArgs: 1,
			setup: func(*flag.FlagSet) func(context.Context, []string, sys) error {
				return func(_ context.Context, args []string, s sys) error {
					if len(args) == 0 {
						printUsage(s.stdout)
						return nil
					}
					c, ok := lookup(args[0])
					if !ok {
						return usageError{err: fmt.Errorf("unknown command %q", args[0])}
					}
					c.printUsage(s.stdout, c.flagSet())
					return nil
				}
			}},
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// printUsage writes pimbot's usage: every command, one line each.
func printUsage(w io.Writer) {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	fmt.Fprintf(w, "usage: pimbot [%s] [flags]\n\n", strings.Join(names, " | "))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  (no command)\tserve when Slack or Teams credentials are set, else the shell demo\n")
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, "\n`pimbot <command> --help` prints a command's usage and flags.\n"+
		"Configuration is read from the environment; see README.md.\n")
}

// flagSet is the command's flags, defined but not parsed; errors are reported by run.
func (c command) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.setup(fs)
	return fs
}

// printUsage writes the command's usage line, what it does and its flags.
func (c command) printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: pimbot %s\n\n%s.\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	if c.detail != "" {
		fmt.Fprintf(w, "%s\n", c.detail)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nflags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// usageError is a command line pimbot does not understand: it is reported with the usage
// (of cmd, or pimbot's when cmd is nil), exit status 2.
type usageError struct {
	cmd *command
	fs  *flag.FlagSet
	err error
}

func (e usageError) Error() string { return e.err.Error() }

// exitStatus ends pimbot with this status and nothing more said: the command has said why.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := sys{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	name := ""
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	switch {
	case name == "" && platformConfigured(getenv):
		name = "serve"
	case name == "":
		name = "shell"
	case name == "-h" || name == "-help" || name == "--help":
		name = "help"
	}
	err := runCommand(ctx, name, args, s)
	var ue usageError
	var es exitStatus
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "pimbot: %v\n\n", ue.err)
		if ue.cmd != nil {
			ue.cmd.printUsage(stderr, ue.fs)
		} else {
			printUsage(stderr)
		}
		return 2
	case errors.As(err, &es):
		return int(es)
	default:
		fmt.Fprintln(stderr, "pimbot:", err)
		return 1
	}
}

// runCommand parses the command's flags and runs it. --help prints its usage and succeeds.
func runCommand(ctx context.Context, name string, args []string, s sys) error {
	c, ok := lookup(name)
	if !ok {
		if strings.HasPrefix(name, "-") {
			return usageError{err: fmt.Errorf("unknown flag %q: give a command first", name)}
		}
		return usageError{err: fmt.Errorf("unknown command %q", name)}
	}
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, below, with the usage
	act := c.setup(fs)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		c.printUsage(s.stdout, fs)
		return nil
	}
	if err == nil && fs.NArg() > c.maxArgs {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(c.maxArgs))
	}
	if err != nil {
		return usageError{cmd: &c, fs: fs, err: fmt.Errorf("%s: %w", c.name, err)}
	}
	return act(ctx, fs.Args(), s)
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

package main

import (
	"bytes"
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// runCLI runs pimbot with args and the environment env (nothing else set) and no input,
// for at most 10 s (a command that wrongly starts serving ends then).
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errs bytes.Buffer
	code = run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errs)
	return code, out.String(), errs.String()
}

var allCommands = []string{"serve", "shell", "check", "audit", "teams-package", "version", "help"}

// Asking for help succeeds, on stdout, and names every command; a command's --help prints
// its own usage and does nothing else (serve does not serve, audit does not read Redis).
func TestHelp_PrintsUsageAndExitsZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, errs := runCLI(t, nil, args...)
		if code != 0 || errs != "" || !strings.HasPrefix(out, "usage: pimbot [") {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
		usageLine, _, _ := strings.Cut(out, "\n")
		for _, c := range allCommands {
			if !strings.Contains(usageLine, c) || !strings.Contains(out, "\n  "+c+" ") {
				t.Errorf("%v: the usage does not list %s:\n%s", args, c, out)
			}
		}
	}
	for _, c := range allCommands {
		for _, args := range [][]string{{c, "--help"}, {c, "-h"}, {"help", c}} {
			code, out, errs := runCLI(t, nil, args...)
			if code != 0 || errs != "" || !strings.HasPrefix(out, "usage: pimbot "+c) {
				t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
			}
		}
	}
	_, out, _ := runCLI(t, nil, "audit", "--help")
	if !strings.Contains(out, "-since") || !strings.Contains(out, "-format") {
		t.Errorf("audit --help does not list its flags:\n%s", out)
	}
	_, out, _ = runCLI(t, nil, "serve", "--help")
	if !strings.Contains(out, "SLACK_BOT_TOKEN") || !strings.Contains(out, "MICROSOFT_APP_ID") {
		t.Errorf("serve --help does not say what enables each surface:\n%s", out)
	}
}

// A command line pimbot does not understand exits 2 and says what is allowed.
func TestUsageMistakes_ExitTwoAndSayWhatIsAllowed(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		said, lists string
	}{
		{[]string{"serv"}, `unknown command "serv"`, "usage: pimbot [serve | shell | check | audit | teams-package | version | help]"},
		{[]string{"--verbose"}, `unknown flag "--verbose"`, "usage: pimbot [serve"},
		{[]string{"help", "serv"}, `unknown command "serv"`, "usage: pimbot [serve"},
		{[]string{"audit", "--sinse", "1h"}, "audit: flag provided but not defined: -sinse", "-since string"},
		{[]string{"serve", "now"}, `serve: unexpected argument "now"`, "usage: pimbot serve"},
		{[]string{"version", "--short"}, "version: flag provided but not defined: -short", "usage: pimbot version"},
	} {
		code, out, errs := runCLI(t, nil, tc.args...)
		if code != 2 || out != "" || !strings.Contains(errs, tc.said) || !strings.Contains(errs, tc.lists) {
			t.Errorf("%v: exit %d, stdout %q, stderr:\n%s", tc.args, code, out, errs)
		}
	}
}

func TestVersion_FromTheBuildInfo(t *testing.T) {
	code, out, errs := runCLI(t, nil, "version")
	if code != 0 || errs != "" || !strings.HasPrefix(out, "pimbot ") || !strings.Contains(out, runtime.Version()) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "pimbot devel, commit unknown, " + runtime.Version()},
		{"built from a checkout", &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "1c90365abc"}, {Key: "vcs.modified", Value: "false"}}},
			"pimbot devel, commit 1c90365abc, go1.26.1"},
		{"with local changes", &debug.BuildInfo{GoVersion: "go1.26.1",
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "1c90365abc"}, {Key: "vcs.modified", Value: "true"}}},
			"pimbot devel, commit 1c90365abc (modified), go1.26.1"},
		{"go install @v1.2.0", &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "v1.2.0"}},
			"pimbot v1.2.0, commit unknown, go1.26.1"},
	} {
		if got := formatVersion(tc.bi); got != tc.want+" "+runtime.GOOS+"/"+runtime.GOARCH {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The shell's start-up lines (which policy, which directory) are info: hidden unless asked
// for, so the banner comes first; warnings still show.
func TestShell_StartUpLogsFromWarnLevel(t *testing.T) {
	code, out, errs := runCLI(t, nil, "shell")
	if code != 0 || !strings.HasPrefix(out, "pimbot shell:") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if strings.Contains(errs, "level=INFO") || !strings.Contains(errs, "level=WARN") {
		t.Fatalf("stderr by default:\n%s", errs)
	}
	_, _, errs = runCLI(t, map[string]string{"PIMBOT_LOG_LEVEL": "info"}, "shell")
	if !strings.Contains(errs, "level=INFO msg=\"no PIMBOT_CONFIG") {
		t.Fatalf("stderr with PIMBOT_LOG_LEVEL=info:\n%s", errs)
	}
}

// serve without Slack or Teams refuses to start and says what enables each; it does not
// reach Redis (none is configured here) or listen.
func TestServe_RefusesWithoutASurface(t *testing.T) {
	code, out, errs := runCLI(t, map[string]string{"PIMBOT_ADDR": "127.0.0.1:0"}, "serve")
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	for _, want := range []string{"no surface is configured", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "MICROSOFT_APP_ID", "MICROSOFT_APP_PASSWORD", "pimbot shell"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "level=") {
		t.Errorf("it started before refusing:\n%s", errs)
	}
}

// audit without REDIS_URL would read an embedded Redis it has just started, empty.
func TestAudit_WithoutRedisURLHasNothingToExport(t *testing.T) {
	code, out, errs := runCLI(t, nil, "audit", "--since", "1h")
	if code != 1 || out != "" || !strings.Contains(errs, "REDIS_URL is not set: there is nothing to export from an embedded Redis") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// A Redis URL shown in an error hides its password as *****, not %2A%2A%2A%2A%2A (the
// query's passwords: store.TestRedact).
func TestCheck_RedisURLRedacted(t *testing.T) {
	for _, tc := range []struct{ url, shown string }{
		{"redis://pimbot:s3cret@127.0.0.1:1/0", "redis://pimbot:*****@127.0.0.1:1/0"},
	} {
		code, out, _ := runCLI(t, map[string]string{"REDIS_URL": tc.url}, "check")
		if code != 1 || !strings.Contains(out, "Redis at "+tc.shown+" does not answer") || strings.Contains(out, "s3cret") {
			t.Errorf("%s: exit %d, stdout:\n%s", tc.url, code, out)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// `pimbot check` tells a Slack that refused the token apart from a Slack it could not reach:
// the first is a wrong or revoked token to replace, the second a network to look at, with the
// token neither good nor bad yet.
func TestCheck_SlackRefusedIsNotSlackUnreachable(t *testing.T) {
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/auth.test" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`)) // Slack's answer to a bad token, HTTP 200
	}))
	t.Cleanup(refusing.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := "http://" + ln.Addr().String() + "/"
	ln.Close() // nothing listens there now

	for _, tc := range []struct {
		name, apiURL, want, notWant string
	}{
		{"given a token Slack refuses", refusing.URL, `FAIL  slack: Slack refused SLACK_BOT_TOKEN: auth.test answered "invalid_auth"`, "unreachable"},
		{"given an address where nothing listens", nobody, "FAIL  slack: Slack is unreachable (", "refused SLACK_BOT_TOKEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, _ := runCLI(t, map[string]string{"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "s",
				"SLACK_API_URL": tc.apiURL}, "check")
			line := ""
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "slack:") {
					line = l
				}
			}
			if code != 1 || !strings.HasPrefix(line, tc.want) || strings.Contains(line, tc.notWant) {
				t.Fatalf("exit %d, slack line %q, want it to begin %q; output:\n%s", code, line, tc.want, out)
			}
			if strings.Contains(tc.want, "unreachable") && !strings.Contains(line, "SLACK_BOT_TOKEN was not checked") {
				t.Fatalf("an unreachable Slack should say the token was not checked: %q", line)
			}
		})
	}
}

// With no REDIS_URL the shell runs on the embedded Redis, and on exit it says what is lost with
// it; with a Redis of its own it does not.
func TestShell_EmbeddedRedisSaysOpenRequestsAreDiscarded(t *testing.T) {
	script := "/activate prod-db-admins for 2h fixing the outage\n/activate prod-db-admins owner for 1h rotating keys\n"
	var out, errs bytes.Buffer
	if code := run(context.Background(), []string{"shell"}, func(string) string { return "" }, strings.NewReader(script), &out, &errs); code != 0 {
		t.Fatalf("shell exit %d: %s", code, errs.String())
	}
	want := "2 open requests are discarded: this shell keeps them in memory only; set REDIS_URL to keep them.\n"
	if !strings.HasSuffix(out.String(), want) {
		t.Fatalf("the embedded shell should end with %q:\n%s", want, out.String())
	}

	out.Reset()
	if code := run(context.Background(), []string{"shell"}, testEnv(t, nil), strings.NewReader(script), &out, &errs); code != 0 {
		t.Fatalf("shell exit %d: %s", code, errs.String())
	}
	if strings.Contains(out.String(), "discarded") {
		t.Fatalf("with REDIS_URL nothing is discarded, yet the shell says so:\n%s", out.String())
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/entra/entrafake"
)

// The shell does the step-up when Entra is configured: it prints the sign-in link, serves
// the callback on PIMBOT_ADDR, and the request goes on to its approvers once the requester
// signed in with the authentication context satisfied.
func TestShell_StepUpMFA(t *testing.T) {
	const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	idp := entrafake.New(tenant, "app-1")
	t.Cleanup(idp.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	path := t.TempDir() + "/pimbot.yaml"
	policy := `
groups:
  - name: secure
    id: g-secure
    eligible: [alice@example.com]
    approvers: [bob@example.com]
    require_mfa: true
directory:
  users:
    - {email: alice@example.com, id: oid-alice, name: Alice}
    - {email: bob@example.com, id: oid-bob, name: Bob}
`
	if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := testEnv(t, map[string]string{"PIMBOT_CONFIG": path, "PIMBOT_DIRECTORY": "local",
		"AZURE_TENANT_ID": tenant, "ENTRA_CLIENT_ID": "app-1", "ENTRA_CLIENT_SECRET": "s3cret", "ENTRA_LOGIN_URL": idp.URL,
		"ENTRA_AUTH_CONTEXT": "c1", "PIMBOT_PUBLIC_URL": "http://" + addr, "PIMBOT_ADDR": addr})
	in, feed := io.Pipe()
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(context.Background(), []string{"shell"}, getenv, in, out, io.Discard) }()
	say := func(line string) {
		if _, err := fmt.Fprintln(feed, line); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(what string, re *regexp.Regexp) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if m := re.FindString(out.String()); m != "" {
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s in the shell's output:\n%s", what, out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	say("/activate secure for 1h rotating keys")
	link := wait("sign-in link", regexp.MustCompile(regexp.QuoteMeta(idp.URL)+`/\S+/oauth2/v2\.0/authorize\?\S+`))
	idp.SignIn(entrafake.Person{OID: "oid-alice", UPN: "alice@example.com", ACRS: []string{"c1"}})
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "MFA verified") {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	wait("the approvers asked", regexp.MustCompile(`to approvers bob@example.com: Alice asks for member of secure.*Passed MFA`))
	feed.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("shell exit %d:\n%s", code, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the shell did not stop at the end of its input")
	}
}

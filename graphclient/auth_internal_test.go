package graphclient

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/graphclient/graphfake"
)

// The SDK attaches the token only to allowed hosts, compared by host name without the port.
// Listing "127.0.0.1:PORT" (or leaving the default graph.microsoft.com) sends every request
// with no Authorization header and no error from the SDK; New lists the base URL's host name,
// and the token arrives.
func TestAuthorizationHeaderArrives(t *testing.T) {
	f := graphfake.Start(t)
	f.Token = "secret-token"
	base, err := url.Parse(f.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		hosts []string
		want  string
	}{
		{"host with its port", []string{base.Host}, ""},
		{"the SDK's default", []string{"graph.microsoft.com"}, ""},
		{"host name, as New builds it", []string{base.Hostname()}, "Bearer secret-token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := newDirectory(Config{AccessToken: "secret-token"}, base, c.hosts)
			if err != nil {
				t.Fatal(err)
			}
			before := len(f.Calls())
			_, err = d.ResolveUser(context.Background(), "alice@example.com")
			calls := f.Calls()[before:]
			if len(calls) == 0 {
				t.Fatal("no request reached the fake")
			}
			for _, call := range calls {
				if call.Auth != c.want {
					t.Fatalf("Authorization %q arrived, want %q", call.Auth, c.want)
				}
			}
			var ge *Error
			if c.want == "" && (!errors.As(err, &ge) || ge.Status != 401 || ge.Code != "InvalidAuthenticationToken") {
				t.Fatalf("without a token Graph answers 401; got %v", err)
			}
			if c.want != "" && !errors.Is(err, bot.ErrNotFound) {
				t.Fatalf("with the token: %v (want: no such user)", err)
			}
		})
	}
	// New itself takes the host name.
	d, err := New(Config{BaseURL: f.BaseURL(), AccessToken: "secret-token"})
	if err != nil {
		t.Fatal(err)
	}
	before := len(f.Calls())
	d.ResolveUser(context.Background(), uid)
	for _, call := range f.Calls()[before:] {
		if !call.Authorized() {
			t.Fatalf("New: %s %s went out without Authorization", call.Method, call.Path)
		}
	}
}

const uid = "11111111-0000-4000-8000-000000000001"

func TestNewRefusesPlainHTTPOffLoopback(t *testing.T) {
	for _, bad := range []string{"http://graph.example.com/v1.0", "ftp://graph.microsoft.com", "graph.microsoft.com/v1.0"} {
		if _, err := New(Config{BaseURL: bad, AccessToken: "x"}); err == nil {
			t.Fatalf("%s accepted", bad)
		}
	}
	for _, good := range []string{"", "https://graph.microsoft.us/v1.0/", "http://127.0.0.1:8080/v1.0"} {
		if _, err := New(Config{BaseURL: good, AccessToken: "x"}); err != nil {
			t.Fatalf("%s: %v", good, err)
		}
	}
}

func TestRetryAfterAndAlreadyExists(t *testing.T) {
	if d := retryAfter([]string{"7"}, timeNow()); d.Seconds() != 7 {
		t.Fatal(d)
	}
	if d := retryAfter([]string{"soon"}, timeNow()); d != -1 {
		t.Fatal(d)
	}
	if d := retryAfter(nil, timeNow()); d != -1 {
		t.Fatal(d)
	}
	exists := &Error{Status: 400, Code: "Request_BadRequest", Message: "One or more added object references already exist for the following modified properties: 'members'."}
	dynamic := &Error{Status: 400, Code: "Request_BadRequest", Message: "Insufficient privileges to complete the operation."}
	other := &Error{Status: 409, Code: "Request_BadRequest", Message: exists.Message}
	if !alreadyExists(exists) || alreadyExists(dynamic) || alreadyExists(other) {
		t.Fatal("alreadyExists must take status, code and the added-references case together")
	}
}

var timeNow = func() time.Time { return time.Now() }

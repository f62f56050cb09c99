package bot_test

import (
	"strings"
	"testing"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
)

// A chat account is owned by the directory user whose mail or UPN is its profile e-mail, or
// by the one the operator listed for it in identity_binding_exceptions; nobody else.
func TestBinding_WhoOwnsAChatAccount(t *testing.T) {
	pol, err := policyfile.Parse("p.yaml", []byte(edit(t, testPolicy, "settings: {requests_per_minute: 0, max_pending: 0}",
		"settings: {requests_per_minute: 0, max_pending: 0, identity_binding: entra_signin, identity_binding_exceptions: {Alice.Smith@Chat.example: alice@example.com}}")))
	if err != nil {
		t.Fatal(err)
	}
	alice := bot.User{ID: "a", Email: "alice@example.com", UPN: "alice@contoso.onmicrosoft.com"}
	bob := bot.User{ID: "b", Email: "bob@example.com", UPN: "bob@example.com"}
	for _, c := range []struct {
		email string
		u     bot.User
		owns  bool
	}{
		{"alice@example.com", alice, true},
		{"ALICE@contoso.onmicrosoft.com", alice, true},
		{"alice.smith@chat.example", alice, true}, // the listed exception
		{"alice.smith@chat.example", bob, false},
		{"mallory@example.com", bob, false},
		{"", bob, false},
	} {
		if got := pol.Settings.Owns(c.email, c.u); got != c.owns {
			t.Errorf("Owns(%q, %s) = %v, want %v", c.email, c.u.Email, got, c.owns)
		}
	}
	_, err = policyfile.Parse("p.yaml", []byte(edit(t, testPolicy, "settings: {requests_per_minute: 0, max_pending: 0}",
		"settings: {requests_per_minute: 0, max_pending: 0, identity_binding_exceptions: {alice: alice@example.com}}")))
	if err == nil || !strings.Contains(err.Error(), "both sides must be e-mail addresses") {
		t.Fatalf("a malformed exception: %v", err)
	}
}

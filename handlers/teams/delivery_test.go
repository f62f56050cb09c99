package teams_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/teams"
)

// The connector's 429 and 503 carry Retry-After to the core (bot.RetryAfter); an activity
// that does not exist is undeliverable; a throttled call posts nothing.
func TestConnector_RetryAfterAndPermanentErrorsReachTheCore(t *testing.T) {
	e := newEnv(t)
	c, err := teams.NewConnector(teams.ConnectorConfig{AppID: appID, Password: appSecret, TokenURL: e.fake.TokenURL()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		arm    func()
		status int
		wait   time.Duration
	}{
		{"429", func() { e.fake.Throttle("send", 1, 7*time.Second) }, http.StatusTooManyRequests, 7 * time.Second},
		{"503", func() { e.fake.Unavailable("send", 1, 3*time.Second) }, http.StatusServiceUnavailable, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.fake.SentTo(approvals))
			tc.arm()
			_, err := c.Send(context.Background(), e.fake.ServiceURL(), approvals, card())
			var ce *teams.ConnectorError
			if !errors.As(err, &ce) || ce.Status != tc.status {
				t.Fatalf("err = %v, want HTTP %d", err, tc.status)
			}
			if d, ok := bot.RetryAfter(fmtWrap(err)); !ok || d != tc.wait {
				t.Fatalf("the core reads a wait of %s, %v; want %s", d, ok, tc.wait)
			}
			if errors.Is(err, bot.ErrUndeliverable) {
				t.Fatal("throttling is not permanent")
			}
			if got := len(e.fake.SentTo(approvals)); got != before {
				t.Fatal("a throttled send posted")
			}
			if _, err := c.Send(context.Background(), e.fake.ServiceURL(), approvals, card()); err != nil {
				t.Fatalf("after the throttle: %v", err)
			}
		})
	}
	err = c.Update(context.Background(), e.fake.ServiceURL(), approvals, "999", card())
	if !errors.Is(err, bot.ErrUndeliverable) {
		t.Fatalf("an update of an activity that does not exist: %v; want undeliverable", err)
	}
	// A conversation the bot is not in yet may be joined later: retried, not given up.
	_, err = c.Send(context.Background(), e.fake.ServiceURL(), "19:not-yet@thread.tacv2", card())
	var ce *teams.ConnectorError
	if !errors.As(err, &ce) || ce.Status != http.StatusNotFound || errors.Is(err, bot.ErrUndeliverable) {
		t.Fatalf("a conversation not found: %v; want a 404 that is retried", err)
	}
}

func fmtWrap(err error) error { return errors.Join(errors.New("other part"), err) }

// Given the connector throttling the requester's notice, when the queue runs, then it is
// retried after the Retry-After (not the 2 s backoff) and posted once; the approvers' card,
// which went out, is not posted again.
func TestNotify_TeamsThrottledNoticeWaitsRetryAfter(t *testing.T) {
	e := newEnv(t)
	chat := e.fake.Personal(alice)
	e.send(e.fake.Message(alice, chat, "help")) // the bot learns the connector's serviceUrl
	before := len(e.fake.SentTo(chat.ID))
	notices := func() int { return len(e.fake.SentTo(chat.ID)) - before }
	e.fake.Throttle("send", 1, 30*time.Second) // the first send of the event: the requester's notice
	r, err := e.eng.Submit(e.ctx, aliceActor(), bot.SubmitInput{Group: "prod-db-admins", Reason: "throttled", Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e.drain()
	if e.fake.Throttled() != 1 || notices() != 0 {
		t.Fatalf("throttled %d, notices %d", e.fake.Throttled(), notices())
	}
	e.clock.Advance(10 * time.Second)
	e.drain()
	if notices() != 0 {
		t.Fatalf("retried before the Retry-After: %d notices", notices())
	}
	e.clock.Advance(25 * time.Second) // 35 s: past 30 s plus at most 10% jitter
	e.drain()
	posted := 0
	for _, a := range e.fake.SentTo(approvals) {
		if a.Method == http.MethodPost {
			posted++
		}
	}
	if notices() != 1 || posted != 1 {
		t.Fatalf("after the Retry-After: %d notices to the requester, %d approval cards for %s; want 1 and 1", notices(), posted, r.ID)
	}
}

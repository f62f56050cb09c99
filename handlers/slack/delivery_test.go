package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
	"github.com/slack-go/slack"
)

// burstPolicy has one group whose n eligible people (u000@… to u<n-1>@…) are asked about in
// the approval channel, so that n requests fan out to one channel.
func burstPolicy(n int) string {
	var users, members strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&users, "    - {email: u%03d@example.com, name: U%03d}\n", i, i)
		if i > 0 {
			members.WriteString(", ")
		}
		fmt.Fprintf(&members, "u%03d@example.com", i)
	}
	return fmt.Sprintf(`
settings: {requests_per_minute: 0, max_pending: 0}
defaults: {default_duration: 1h, max_duration: 8h, min_duration: 5m}
groups:
  - name: burst
    id: g-burst
    eligible: [group:burst@example.com]
    approvers: [bob@example.com]
    approval_channel: {slack: %s}
directory:
  users:
    - {email: bob@example.com, name: Bob}
%s  groups:
    - {mail: burst@example.com, members: [%s]}
`, approvals, users.String(), members.String())
}

func addBurstUsers(e *env, n int) {
	for i := 0; i < n; i++ {
		e.fake.AddUser(slackfake.User{ID: fmt.Sprintf("UB%03d", i), Email: fmt.Sprintf("u%03d@example.com", i), Name: fmt.Sprintf("u%03d", i)})
	}
}

// runRealtime runs the engine's worker as in production, its fake clock following the
// wall clock, until the test ends.
func (e *env) runRealtime() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				done <- struct{}{}
				return
			case now := <-t.C:
				e.clock.Advance(now.Sub(last))
				last = now
			}
		}
	}()
	go func() { e.eng.Run(ctx); done <- struct{}{} }()
	e.t.Cleanup(func() { cancel(); <-done; <-done })
}

// approvalPosts counts, per request, the approval messages stored in the channel (by their
// metadata), and the posts answered 429.
func approvalPosts(f *slackfake.Server, channel string) (perRequest map[string]int, limited int) {
	perRequest = map[string]int{}
	for _, m := range f.Messages(channel) {
		var md slack.SlackMetadata
		if json.Unmarshal([]byte(m.Metadata), &md) == nil && md.EventPayload["event"] == bot.EvSubmitted {
			perRequest[fmt.Sprint(md.EventPayload["request_id"])]++
		}
	}
	for _, c := range f.Calls("chat.postMessage") {
		if c.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	return perRequest, limited
}

// The fake answers as Slack does past the posting limit: HTTP 429, Retry-After in seconds,
// {"ok":false,"error":"ratelimited"}; slack-go turns it into a *RateLimitedError.
func TestSlackFake_RateLimitsPostsPerChannel(t *testing.T) {
	f := slackfake.New(t, testToken)
	f.AddChannel(approvals)
	f.AddChannel(general)
	f.RateLimit(slackfake.SlackPostInterval, slackfake.SlackPostBurst)
	api := NewClient(testToken, f.URL())
	for i := 0; i < slackfake.SlackPostBurst; i++ {
		if _, _, err := api.PostMessage(approvals, slack.MsgOptionText("burst", false)); err != nil {
			t.Fatalf("post %d within the burst: %v", i, err)
		}
	}
	_, _, err := api.PostMessage(approvals, slack.MsgOptionText("one too many", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Fatalf("past the burst: %v; want a RateLimitedError with Retry-After 1s", err)
	}
	if d, ok := bot.RetryAfter(classify(err)); !ok || d != time.Second {
		t.Fatalf("the core reads a wait of %s, %v", d, ok)
	}
	if _, _, err := api.PostMessage(general, slack.MsgOptionText("another channel", false)); err != nil {
		t.Fatalf("another channel is limited too: %v", err)
	}
	if n := len(f.Messages(approvals)); n != slackfake.SlackPostBurst {
		t.Fatalf("%d messages stored; a rate-limited post must not be", n)
	}
	last := f.Calls("chat.postMessage")[slackfake.SlackPostBurst]
	if last.Status != http.StatusTooManyRequests || last.Error != "ratelimited" {
		t.Fatalf("recorded %d %q", last.Status, last.Error)
	}
}

// Pacing keeps a stream of posts to one channel under Slack's limit: no 429 at all. The
// control (no pacing) shows that the same stream provokes them.
func TestPacing_KeepsPostsUnderTheChannelLimit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
		burst    int
		want429  bool
	}{
		{"paced like the channel limit", 40 * time.Millisecond, DefaultChannelBurst, false},
		{"control: not paced", time.Microsecond, 1000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.ChannelInterval, o.ChannelBurst = tc.interval, tc.burst })
			e.fake.RateLimit(40*time.Millisecond, 3)
			limited := 0
			for i := 0; i < 12; i++ {
				ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
				_, _, err := e.s.postMessage(ctx, approvals, slack.MsgOptionText(fmt.Sprint("post ", i), false))
				cancel()
				var rl *slack.RateLimitedError
				switch {
				case errors.As(err, &rl):
					limited++
				case err != nil:
					t.Fatal(err)
				}
			}
			if (limited > 0) != tc.want429 {
				t.Fatalf("%d posts answered 429", limited)
			}
		})
	}
}

// A 429 holds the channel back for Slack's Retry-After: the next post waits for it rather
// than being refused again.
func TestPacing_HonoursRetryAfterForTheChannel(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.ChannelInterval, o.ChannelBurst = time.Microsecond, 1000 })
	e.fake.RateLimit(time.Second, 1)
	if _, _, err := e.s.postMessage(e.ctx, approvals, slack.MsgOptionText("first", false)); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.s.postMessage(e.ctx, approvals, slack.MsgOptionText("second", false))
	if d, ok := bot.RetryAfter(err); !ok || d != time.Second {
		t.Fatalf("second post: %v (wait %s); want a 429 with Retry-After 1s", err, d)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if _, _, err := e.s.postMessage(ctx, approvals, slack.MsgOptionText("third", false)); err != nil {
		t.Fatalf("third post, after waiting: %v", err)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("the third post went out after %s, before the Retry-After", waited)
	}
	// A caller whose deadline comes before the channel's next slot is told when to come back.
	ctx2, cancel2 := context.WithTimeout(e.ctx, 100*time.Millisecond)
	defer cancel2()
	e.s.pace.block(approvals, 10*time.Second)
	_, _, err = e.s.postMessage(ctx2, approvals, slack.MsgOptionText("too late", false))
	if d, ok := bot.RetryAfter(err); !ok || d < 9*time.Second {
		t.Fatalf("paced past the deadline: %v (wait %s)", err, d)
	}
}

// Given Slack's real posting limit and a fan-out of approval requests to one channel, every
// request gets its approval message, exactly once.
func TestDelivery_BurstToOneChannelAllDeliveredOnce(t *testing.T) {
	const n = 12
	e := newEnvPolicy(t, burstPolicy(n), func(o *Options) { o.ChannelInterval = 60 * time.Millisecond })
	addBurstUsers(e, n)
	e.fake.RateLimit(60*time.Millisecond, 3)
	e.runRealtime()
	ids := map[string]bool{}
	for i := 0; i < n; i++ {
		r := e.submit(fmt.Sprintf("u%03d@example.com", i), bot.SubmitInput{Group: "burst", Reason: "burst"})
		ids[r.ID] = true
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, _ := approvalPosts(e.fake, approvals)
		if len(got) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d approval messages after 20 s", len(got), n)
		}
		time.Sleep(20 * time.Millisecond) // polling; the deadline bounds it
	}
	got, limited := approvalPosts(e.fake, approvals)
	for id, k := range got {
		if !ids[id] || k != 1 {
			t.Fatalf("request %s has %d approval messages", id, k)
		}
	}
	t.Logf("%d approval messages, %d posts answered 429", len(got), limited)
}

// Every notification carries its metadata: event type pimbot_event, and a payload naming
// the request, the event, the version and the recipient.
func TestDelivery_EveryPostCarriesItsMetadata(t *testing.T) {
	e := newEnv(t)
	mark := e.fake.Mark()
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "prod-db-admins", Reason: "metadata"})
	e.approvalPosted(approvals, r.ID)
	e.waitDM("UALICE", "waiting for approval")
	for _, c := range e.fake.Since(mark, "chat.postMessage") {
		var md slack.SlackMetadata
		if err := json.Unmarshal([]byte(c.Get("metadata")), &md); err != nil || md.EventType != MetaEventType {
			t.Fatalf("post to %s without metadata: %q", c.Get("channel"), c.Get("metadata"))
		}
		p := md.EventPayload
		if p["request_id"] != r.ID || p["event"] != bot.EvSubmitted || fmt.Sprint(p["version"]) != fmt.Sprint(e.get(r.ID).Version) || p["recipient"] == "" {
			t.Fatalf("metadata %v", p)
		}
	}
}

// Given a Slack that takes the post but answers after the client gave up, when the job is
// retried, then the surface finds its post in the channel's history and does not post again.
func TestDelivery_TimedOutPostIsNotPostedTwice(t *testing.T) {
	for _, tc := range []struct {
		name    string
		channel string // where the message lands
		slackID string // "" for the approval channel
	}{
		{"approval channel", approvals, ""},
		{"DM to the requester", "DUALICE", "UALICE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			// A client that gives up after 300 ms, and a Slack that answers after 1 s.
			e.s.api = slack.New(testToken, slack.OptionAPIURL(e.fake.URL()), slack.OptionHTTPClient(&http.Client{Timeout: 300 * time.Millisecond}))
			e.fake.AnswerLate("chat.postMessage", time.Second, -1)
			r := e.submit("alice@example.com", bot.SubmitInput{Group: "prod-db-admins", Reason: "late answers"})
			if _, err := e.eng.RunDue(e.ctx); err != nil { // the posts are made; the answers come too late
				t.Fatal(err)
			}
			e.fake.AnswerLate("chat.postMessage", 0, 0)
			if got := len(e.fake.Messages(tc.channel)); got != 1 {
				t.Fatalf("%d messages in %s after the first try; want the one whose answer was lost", got, tc.channel)
			}
			e.clock.Advance(time.Minute)
			defer func() {
				if t.Failed() {
					for _, c := range e.fake.Calls("") {
						t.Logf("%s %s %q %d", c.Method, c.Get("channel"), c.Error, c.Status)
					}
				}
			}()
			e.pump("the retry", func() bool {
				rec, _ := e.s.record(e.ctx, deliveryKey(e.get(r.ID), tc.slackID))
				return rec.TS != ""
			})
			if got := len(e.fake.Messages(tc.channel)); got != 1 {
				t.Fatalf("%d messages in %s after the retry; want 1", got, tc.channel)
			}
			if len(e.fake.Calls("conversations.history")) == 0 {
				t.Fatal("the retry did not look in the history")
			}
		})
	}
}

func deliveryKey(r *bot.Request, slackID string) string {
	v := fmt.Sprint(r.Version)
	if slackID != "" {
		return keySent(r.ID, bot.EvSubmitted, v, "requester")
	}
	return keySent(r.ID, bot.EvSubmitted, v, "approval", approvals)
}

// A channel the app is not in refuses for good: Notify says so (bot.ErrUndeliverable, for
// the core to stop and tell someone), and a retry does not post again.
func TestDelivery_PermanentRefusalIsUndeliverable(t *testing.T) {
	policy := strings.Replace(testPolicy, "approval_channel: {slack: C0APPROVE}\n  - name: quorum", "approval_channel: {slack: C0GONE}\n  - name: quorum", 1)
	e := newEnvPolicy(t, policy)
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "prod-db-admins", Reason: "gone"})
	ev := bot.Event{Type: bot.EvSubmitted, Request: e.get(r.ID), At: e.clock.Now()}
	err := e.s.Notify(e.ctx, ev)
	if !errors.Is(err, bot.ErrUndeliverable) {
		t.Fatalf("Notify = %v; want it undeliverable", err)
	}
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "not_in_channel" {
		t.Fatalf("Slack's error is not kept: %v", err)
	}
	mark := e.fake.Mark()
	if err := e.s.Notify(e.ctx, ev); err != nil {
		t.Fatalf("the retry: %v; the refusal was recorded", err)
	}
	for _, c := range e.fake.Since(mark, "chat.postMessage") {
		if c.Get("channel") == "C0GONE" {
			t.Fatal("posted again to a channel that refused for good")
		}
	}
}

// Slack's certificate check of the slash-command URL is answered 200, with nothing done.
func TestHTTP_SSLCheckIsAnswered(t *testing.T) {
	e := newEnv(t)
	mark := e.fake.Mark()
	a := e.postRaw("/slack/commands", form, url.Values{"ssl_check": {"1"}, "token": {"legacy-verification-token"}}.Encode(), nil)
	if a.Status != http.StatusOK || a.Body != "" {
		t.Fatalf("ssl_check: %d %q", a.Status, a.Body)
	}
	if calls := e.fake.Since(mark, ""); len(calls) != 0 {
		t.Fatalf("an ssl_check made calls: %v", calls)
	}
	// A command is still checked: unsigned, it is refused.
	body, _ := e.commandBody("UALICE", "status")
	if a := e.postRaw("/slack/commands", form, body, nil); a.Status != http.StatusUnauthorized {
		t.Fatalf("an unsigned command: %d", a.Status)
	}
}

// The fake refuses what Slack refuses, with Slack's error names.
func TestSlackFake_BlockKitLimitsAndErrorNames(t *testing.T) {
	f := slackfake.New(t, testToken)
	f.AddChannel(approvals)
	api := NewClient(testToken, f.URL())
	long := func(n int) string { return strings.Repeat("x", n) }
	for name, tc := range map[string]struct {
		blocks []slack.Block
		want   string
	}{
		"header of 151":     {[]slack.Block{slack.NewHeaderBlock(slack.NewTextBlockObject("plain_text", long(151), false, false))}, "invalid_blocks"},
		"header of 150":     {[]slack.Block{slack.NewHeaderBlock(slack.NewTextBlockObject("plain_text", long(150), false, false))}, ""},
		"block id of 256":   {[]slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "x", false, false), nil, nil, slack.SectionBlockOptionBlockID(long(256)))}, "invalid_blocks"},
		"section text 3001": {[]slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", long(3001), false, false), nil, nil)}, "invalid_blocks"},
		"51 blocks": {func() []slack.Block {
			var bs []slack.Block
			for i := 0; i < 51; i++ {
				bs = append(bs, slack.NewDividerBlock())
			}
			return bs
		}(), "invalid_blocks"},
		"50 blocks": {func() []slack.Block {
			var bs []slack.Block
			for i := 0; i < 50; i++ {
				bs = append(bs, slack.NewDividerBlock())
			}
			return bs
		}(), ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := api.PostMessage(approvals, slack.MsgOptionText("x", false), slack.MsgOptionBlocks(tc.blocks...))
			var se slack.SlackErrorResponse
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (!errors.As(err, &se) || se.Err != tc.want):
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
		})
	}
	tr := f.Trigger()
	view := slack.ModalViewRequest{Type: slack.VTModal, Title: slack.NewTextBlockObject("plain_text", "t", false, false),
		Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewDividerBlock()}}}
	if _, err := api.OpenView(tr, view); err != nil {
		t.Fatal(err)
	}
	_, err := api.OpenView(tr, view)
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "exchanged_trigger_id" {
		t.Fatalf("a used trigger: %v", err)
	}
	_, _, err = api.PostMessage("C0NOWHERE", slack.MsgOptionText("x", false))
	if !errors.As(err, &se) || se.Err != "not_in_channel" {
		t.Fatalf("a channel the app is not in: %v", err)
	}
	_, _, err = api.PostMessage("UNOBODY", slack.MsgOptionText("x", false))
	if !errors.As(err, &se) || se.Err != "channel_not_found" {
		t.Fatalf("a DM to nobody: %v", err)
	}
}

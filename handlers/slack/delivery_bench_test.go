package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
	"github.com/slack-go/slack"
)

// BenchmarkBurstToOneChannel: 80 approval requests submitted at once, their approval
// messages fanned out to one channel, against the fake holding Slack's own posting limit
// (one message per second per channel, a burst of 3, HTTP 429 + Retry-After beyond), with
// the surface's default pacing and the engine's worker running as in production. Reported:
// approval messages delivered (of 80), duplicates, posts answered 429, and the seconds from
// the first submit until the last approval message. Each iteration takes about 80 s (Slack's
// rate); run with -benchtime=1x -count=5.
func BenchmarkBurstToOneChannel(b *testing.B) {
	const n = 80
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newEnvPolicy(b, burstPolicy(n), func(o *Options) { o.ChannelInterval, o.ChannelBurst = 0, 0 })
		addBurstUsers(e, n)
		e.fake.RateLimit(slackfake.SlackPostInterval, slackfake.SlackPostBurst)
		e.runRealtime()
		b.StartTimer()
		start := time.Now()
		for k := 0; k < n; k++ {
			e.submit(fmt.Sprintf("u%03d@example.com", k), bot.SubmitInput{Group: "burst", Reason: "burst"})
		}
		deadline := time.Now().Add(5 * time.Minute)
		for {
			got, _ := approvalPosts(e.fake, approvals)
			if len(got) == n || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond) // polling; the deadline bounds it
		}
		b.StopTimer()
		got, limited := approvalPosts(e.fake, approvals)
		dups := 0
		var last time.Time
		for _, c := range e.fake.Calls("chat.postMessage") {
			if c.Get("channel") == approvals && c.Error == "" && c.At.After(last) {
				last = c.At
			}
		}
		for _, k := range got {
			dups += k - 1
		}
		b.ReportMetric(float64(len(got)), "delivered")
		b.ReportMetric(float64(dups), "duplicates")
		b.ReportMetric(float64(limited), "429s")
		b.ReportMetric(last.Sub(start).Seconds(), "s-to-last")
	}
}

// orderPolicy: n people, each may ask for a short grant that an approver decides, with a
// reminder before its end, so each request's requester hears submitted → approved →
// activated → reminder → ended.
func orderPolicy(n int) string {
	p := burstPolicy(n)
	return strings.Replace(p, "defaults: {default_duration: 1h, max_duration: 8h, min_duration: 5m}",
		"defaults: {default_duration: 4s, max_duration: 1h, min_duration: 1s, reminder_before: 2s}", 1)
}

// BenchmarkNotificationOrder: 1,000 requests, each submitted, approved, started, reminded
// and ended, on two replicas (engine and surface each) sharing Redis, against the fake with
// a per-channel posting limit (scaled down to 5 ms so that the run takes seconds; the two
// replicas pace on their own) that also answers every 7th post 429 (Retry-After 1 s), so
// retries happen while later events of the same request are due. Each request is approved
// as soon as it is submitted. Reported: requests whose requester saw their DMs out of
// order (goal 0), DMs delivered, and posts answered 429.
func BenchmarkNotificationOrder(b *testing.B) {
	const n = 1000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pace := func(o *Options) { o.ChannelInterval, o.ChannelBurst = 5*time.Millisecond, 2 }
		e := newEnvPolicy(b, orderPolicy(n), pace)
		addBurstUsers(e, n)
		e.fake.RateLimit(5*time.Millisecond, 3)
		e.fake.LimitEvery("chat.postMessage", 7) // Slack under load: a 429 now and then, anywhere
		// The second replica: its own engine and surface on the same Redis and fake Slack.
		eng2 := bot.New(bot.Config{Policy: e.pol, Store: e.store, Directory: e.dir, Clock: e.clock,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		o2 := Options{Client: NewClient(testToken, e.fake.URL()), Engine: eng2, KV: e.store, SigningSecret: testSecret,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ShutdownGrace: 200 * time.Millisecond}
		pace(&o2)
		s2, err := New(o2)
		if err != nil {
			b.Fatal(err)
		}
		eng2.AddNotifier(s2)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{}, 2)
		go func() { _ = s2.Run(ctx); done <- struct{}{} }()
		go func() { eng2.Run(ctx); done <- struct{}{} }()
		e.runRealtime()
		bob := bot.Actor{User: e.user("bob@example.com"), Surface: Name}
		b.StartTimer()
		for k := 0; k < n; k++ {
			r := e.submit(fmt.Sprintf("u%03d@example.com", k), bot.SubmitInput{Group: "burst", Reason: "order", Duration: 4 * time.Second})
			if _, err := e.eng.Approve(e.ctx, bob, r.ID); err != nil {
				b.Fatal(err)
			}
		}
		want := map[string]bool{bot.EvSubmitted: true, bot.EvApproved: true, bot.EvActivated: true, bot.EvReminder: true, bot.EvEnded: true}
		deadline := time.Now().Add(5 * time.Minute)
		var outOfOrder, dms int
		changed := time.Now()
		for {
			o, d := dmOrder(e.fake, n, want)
			if d != dms {
				changed = time.Now()
			}
			outOfOrder, dms = o, d
			// All delivered, or nothing new for 10 s (a DM given up), or the deadline.
			if dms >= n*len(want) || time.Since(changed) > 10*time.Second || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond) // polling; the deadlines bound it
		}
		b.StopTimer()
		limited := 0
		for _, c := range e.fake.Calls("") {
			if c.Status == http.StatusTooManyRequests {
				limited++
			}
		}
		cancel()
		<-done
		<-done
		b.ReportMetric(float64(outOfOrder), "out-of-order")
		b.ReportMetric(float64(dms), "dms")
		_, _, per := dmCounts(e.fake, n, want)
		for typ := range want {
			b.ReportMetric(float64(n-per[typ]), "missing-"+typ)
		}
		b.ReportMetric(float64(limited), "429s")
	}
}

func dmOrder(f *slackfake.Server, n int, want map[string]bool) (outOfOrder, dms int) {
	o, d, _ := dmCounts(f, n, want)
	return o, d
}

// dmCounts reads each burst user's DMs in the order Slack stored them and counts the users
// (one request each) whose DMs' request versions did not increase, and the DMs of the
// wanted event types.
func dmCounts(f *slackfake.Server, n int, want map[string]bool) (outOfOrder, dms int, per map[string]int) {
	per = map[string]int{}
	for k := 0; k < n; k++ {
		last := int64(-1)
		bad := false
		for _, m := range f.Messages(fmt.Sprintf("DUB%03d", k)) {
			var md slack.SlackMetadata
			if json.Unmarshal([]byte(m.Metadata), &md) != nil || !want[fmt.Sprint(md.EventPayload["event"])] {
				continue
			}
			dms++
			per[fmt.Sprint(md.EventPayload["event"])]++
			v, _ := strconv.ParseInt(fmt.Sprint(md.EventPayload["version"]), 10, 64)
			if v < last {
				bad = true
			}
			last = v
		}
		if bad {
			outOfOrder++
		}
	}
	return outOfOrder, dms, per
}

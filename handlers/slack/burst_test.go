package slack

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// The queue is bounded by the bytes its tasks hold: tasks within the budget are taken at
// once whatever their number; past it a submit waits for room, gets in when a worker takes
// a task, and is refused only when its deadline passes first.
func TestPool_BoundedByBytesNotByCount(t *testing.T) {
	p := newPool(4*taskOverhead, time.Second)
	nop := func(context.Context) {}
	for i := 0; i < 4; i++ {
		if !p.submit(context.Background(), "t", 0, nop) {
			t.Fatalf("task %d refused within the budget", i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if p.submit(ctx, "t", 0, nop) {
		t.Fatal("a task past the budget was taken without room")
	}
	cancel()
	got := make(chan bool)
	go func() { got <- p.submit(context.Background(), "waits", 0, nop) }()
	if _, ok := p.next(); !ok { // a worker takes a task: room for one
		t.Fatal("no task")
	}
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("the waiting submit was refused although room came")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting submit never got in")
	}
	if n, bytes := p.queued(); n != 4 || bytes != 4*taskOverhead {
		t.Fatalf("queued %d tasks, %d bytes; want 4, %d", n, bytes, 4*taskOverhead)
	}
	// Small tasks: many more than any fixed count fit a budget of bytes.
	big := newPool(DefaultQueueBytes, time.Second)
	for i := 0; i < 5000; i++ {
		if !big.submit(context.Background(), "t", 64, nop) {
			t.Fatalf("task %d of a burst refused with %d bytes queued", i, DefaultQueueBytes)
		}
	}
}

// blockWorker keeps the surface's only slow-lane worker busy: a status command from a
// person not in the identity cache, whose users.info Slack answers only after d.
func (e *env) blockWorker(d time.Duration) {
	e.t.Helper()
	e.fake.AnswerLate("users.info", d, 1)
	mark := e.fake.Mark()
	if a, _ := e.command("UCAROL", "status"); a.Status != http.StatusOK {
		e.t.Fatalf("HTTP %d", a.Status)
	}
	e.fake.Wait(e.t, mark, "users.info", nil) // the worker is in the late call
}

// A burst larger than the old fixed queue (1,024) while the only worker is stuck: every
// command is acknowledged without "busy", and every one is served once the worker is free.
func TestBurst_WaitsInsteadOfRefusing(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Workers = 1 })
	e.blockWorker(admitWait + time.Second) // longer than an ack waits for room
	const n = 1100
	var wg sync.WaitGroup
	var mu sync.Mutex
	var busy []string
	names := make(chan string, n)
	sem := make(chan struct{}, 32)
	for i := 0; i < n; i++ {
		body, name := e.commandBody("UALICE", "status")
		names <- name
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a := e.post("/slack/commands", form, body)
			if a.Status != http.StatusOK || a.Body != "" {
				mu.Lock()
				busy = append(busy, a.Body)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(names)
	if len(busy) > 0 {
		t.Fatalf("%d of %d commands were not simply acknowledged, e.g. %q", len(busy), n, busy[0])
	}
	want := map[string]bool{}
	for name := range names {
		want[name] = true
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		answered := 0
		for _, c := range e.fake.Calls("response") {
			if want[c.Path] && strings.Contains(c.Raw, "Your requests") {
				answered++
			}
		}
		if answered == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d queued commands answered", answered, n)
		}
		time.Sleep(20 * time.Millisecond) // polling; the deadline bounds it
	}
}

// Backpressure reaches Slack only when the memory budget of the queue is spent: then the
// ack waits for room, and says "busy" only when none came.
func TestBurst_BusyOnlyWhenTheMemoryBudgetIsSpent(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Workers = 1; o.QueueBytes = 3 * taskOverhead })
	e.blockWorker(5 * time.Second)
	for i := 0; i < 3; i++ {
		if a, _ := e.command("UALICE", "status"); a.Body != "" {
			t.Fatalf("command %d within the budget: %q", i, a.Body)
		}
	}
	a, _ := e.command("UALICE", "status")
	if !strings.Contains(a.Body, "busy") {
		t.Fatalf("a command past the memory budget: %q, want the busy answer", a.Body)
	}
}

// Socket Mode handles more than 8 envelopes at once: 20 view submissions whose users.info
// Slack answers late are all under way together (with 8 handlers, the 9th would start only
// when the first gave up, after submitBudget).
func TestSocketMode_ManyEnvelopesAtOnce(t *testing.T) {
	e := newEnv(t)
	e.fake.AppToken = "xapp-1-test"
	e.runSocket("xapp-1-test")
	e.fake.WaitSocket(t)
	form := e.viewJSON(activateModal(activateForm{Groups: []*bot.Group{e.groupNamed("sandbox")}, Opened: e.clock.Now()}))
	e.fake.AnswerLate("users.info", 2*submitBudget, -1)
	defer e.fake.AnswerLate("users.info", 0, 0)
	const n = 20
	mark := e.fake.Mark()
	start := time.Now()
	for i := 0; i < n; i++ {
		e.fake.SendEnvelope(t, "interactive", e.submissionPayload("UALICE", form, map[string]any{"reason": "many"}))
	}
	for {
		if got := len(e.fake.Since(mark, "users.info")); got >= n {
			break
		} else if time.Since(start) > submitBudget-500*time.Millisecond {
			t.Fatalf("%d of %d submissions under way at once", got, n)
		}
		time.Sleep(10 * time.Millisecond) // polling; the deadline bounds it
	}
}

// Trigger-bound work has its own lane: with the only slow-lane worker stuck on the
// directory, a Deny click still opens its view while the trigger lives (the fake refuses
// triggers older than 3 s, and Wait accepts only a successful views.open).
func TestTrigger_FormOpensWhileTheSlowLaneIsStuck(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Workers = 1 })
	r, ts := e.pendingProd()
	e.blockWorker(30 * time.Second)
	mark := e.fake.Mark()
	e.click("UBOB", actDeny, r.ID, approvals, ts)
	open := e.fake.Wait(t, mark, "views.open", nil)
	if !strings.Contains(open.Raw, `"callback_id":"deny"`) && !strings.Contains(open.Raw, "Checking the request") {
		t.Fatalf("the deny click opened %s", open.Raw)
	}
}

// With the directory slow, the deny form opens as a loading view first (never waiting for
// the directory) and is filled in once the engine answered.
func TestTrigger_LoadingViewThenForm(t *testing.T) {
	e := newEnv(t)
	r, ts := e.pendingProd()
	e.dir.SetDelay(fastPathBudget + 200*time.Millisecond)
	defer e.dir.SetDelay(0)
	_ = e.store.DeleteValue(e.ctx, keyUser("UBOB"))
	mark := e.fake.Mark()
	e.click("UBOB", actDeny, r.ID, approvals, ts)
	open := e.fake.Wait(t, mark, "views.open", nil)
	if !strings.Contains(open.Raw, "Checking the request") {
		t.Fatalf("want the loading view while the directory is slow: %s", open.Raw)
	}
	upd := e.fake.Wait(t, mark, "views.update", nil)
	if !strings.Contains(upd.Raw, `"callback_id":"deny"`) || !strings.Contains(upd.Raw, r.ID) {
		t.Fatalf("the loading view was not filled with the deny form: %s", upd.Raw)
	}
}

// When the form cannot open in time, the person is told privately, not left in silence:
// Slack's expired_trigger_id, and a trigger too old to try.
func TestTrigger_TooLateIsTold(t *testing.T) {
	e := newEnv(t)
	e.fake.Fail("views.open", "expired_trigger_id")
	_, name := e.command("UALICE", "")
	if reply := e.waitResponse(name); !strings.Contains(reply, "3 seconds") || !strings.Contains(reply, "/activate") {
		t.Fatalf("after expired_trigger_id: %s", reply)
	}
	mark := e.fake.Mark()
	o := origin{UserID: "UALICE", ChannelID: general, ResponseURL: e.fake.ResponseURL("old")}
	old := trig{ID: e.fake.Trigger(), Received: time.Now().Add(-triggerLife), Origin: o, Again: "click the button again"}
	if v := e.s.openView(e.ctx, old, "deny form", loadingView("Deny request", "…")); v != nil {
		t.Fatal("a view opened with a trigger too old")
	}
	if reply := e.waitResponse("old"); !strings.Contains(reply, "could not open it in time") {
		t.Fatalf("too old: %s", reply)
	}
	if n := len(e.fake.Since(mark, "views.open")); n != 0 {
		t.Fatalf("views.open was tried %d times with a trigger past its life", n)
	}
}

// Error messages name what was slow: a Slack users.info timeout is Slack's, not "the
// directory or the database".
func TestErrors_NameWhatWasSlow(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.TaskTimeout = 300 * time.Millisecond })
	r, ts := e.pendingProd()
	e.fake.AnswerLate("users.info", 2*time.Second, 1)
	_ = e.store.DeleteValue(e.ctx, keyUser("UCAROL"))
	name := e.click("UCAROL", actApprove, r.ID, approvals, ts)
	reply := e.waitResponse(name)
	if !strings.Contains(reply, "Slack (users.info) did not answer in time") || strings.Contains(reply, "directory or the database") {
		t.Fatalf("a users.info timeout was told as: %s", reply)
	}
	// The directory's own slowness is the directory's.
	e.dir.SetDelay(time.Second)
	defer e.dir.SetDelay(0)
	_ = e.store.DeleteValue(e.ctx, keyUser("UCAROL"))
	name = e.click("UCAROL", actApprove, r.ID, approvals, ts)
	if reply := e.waitResponse(name); !strings.Contains(reply, "the directory did not answer in time") {
		t.Fatalf("a directory timeout was told as: %s", reply)
	}
}

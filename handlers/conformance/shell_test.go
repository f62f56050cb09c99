package conformance_test

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/shell"
)

// shellDriver types lines into the shell, as one person playing every role (`as bob`), and
// reads what it prints: the answers to the one typing, and "→ to <who>:" lines for what
// each person would be told.
type shellDriver struct {
	t    testing.TB
	w    *world
	in   *io.PipeWriter
	out  *syncBuf
	me   string // who the shell acts as now
	seq  int
	read int            // output already split into lines
	log  []shellLine    // what was shown to whom, oldest first
	told map[string]int // person -> lines of log already read by Told
	who  string         // the person whose command the output now answers
}

type shellLine struct {
	to, text string
	shared   bool // a line to the approvers, which every approver reads
}

// syncBuf is the shell's output, read while the shell writes it.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuf) Write(p []byte) (int, error) { b.mu.Lock(); defer b.mu.Unlock(); return b.b.Write(p) }

func (b *syncBuf) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

func newShellDriver(t *testing.T) *shellDriver {
	w := newWorld(t)
	pr, pw := io.Pipe()
	d := &shellDriver{t: t, w: w, in: pw, out: &syncBuf{}, me: alice.Key, who: alice.Key, told: map[string]int{}}
	sh := shell.New(w.eng, pr, d.out, shell.Options{Tick: 20 * time.Millisecond})
	w.eng.AddNotifier(sh)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	t.Cleanup(func() { pw.Close(); cancel(); <-done })
	d.sync()
	return d
}

func (d *shellDriver) World() *world { return d.w }

// sync types two comments after what was typed and waits for the echo of the second: by
// then the shell has answered every line before them and run the jobs due after the first
// (it runs them after each line it reads).
func (d *shellDriver) sync() {
	d.t.Helper()
	d.seq++
	mark := fmt.Sprintf("#sync-%d", d.seq)
	if _, err := io.WriteString(d.in, mark+"a\n"+mark+"\n"); err != nil {
		d.t.Fatal(err)
	}
	waitFor(d.t, "the shell to read "+mark, func() bool { return strings.Contains(d.out.String(), "> "+mark+"\n") })
	d.split()
}

var (
	echoRe = regexp.MustCompile(`^(\w+)> (.*)$`)
	tellRe = regexp.MustCompile(`^  → to (.+?): (.*)$`)
)

// split reads the new output into lines shown to people.
func (d *shellDriver) split() {
	out := d.out.String()
	end := strings.LastIndexByte(out, '\n') + 1
	for _, l := range strings.Split(out[d.read:end], "\n") {
		if m := echoRe.FindStringSubmatch(l); m != nil {
			if !strings.HasPrefix(m[2], "#") {
				d.who = m[1]
			}
			continue
		}
		if m := tellRe.FindStringSubmatch(l); m != nil {
			for _, p := range everyone {
				if m[1] == p.Key || (strings.HasPrefix(m[1], "approvers ") && strings.Contains(m[1], p.Email)) {
					d.log = append(d.log, shellLine{to: p.Key, text: m[2], shared: strings.HasPrefix(m[1], "approvers ")})
				}
			}
			continue
		}
		if strings.TrimSpace(l) != "" {
			d.log = append(d.log, shellLine{to: d.who, text: l})
		}
	}
	d.read = end
}

// run types a line as the person and returns what the shell answered them.
func (d *shellDriver) run(p Person, line string) string {
	d.t.Helper()
	if d.me != p.Key {
		if _, err := io.WriteString(d.in, "as "+p.Email+"\n"); err != nil {
			d.t.Fatal(err)
		}
		d.me = p.Key
	}
	d.sync()
	from := len(d.log)
	if _, err := io.WriteString(d.in, line+"\n"); err != nil {
		d.t.Fatal(err)
	}
	d.sync()
	var b strings.Builder
	for _, l := range d.log[from:] {
		if l.to == p.Key {
			b.WriteString(l.text + "\n")
		}
	}
	return b.String()
}

func (d *shellDriver) Request(p Person, group string, access bot.Access, dur time.Duration, reason string) string {
	d.t.Helper()
	return submittedID(d.t, d.run(p, fmt.Sprintf("/activate %s %s for %s %s", group, access, bot.FormatDuration(dur), reason)))
}

func (d *shellDriver) Act(p Person, act bot.Action, id, reason string) Outcome {
	d.t.Helper()
	line := string(act) + " " + id
	switch act {
	case bot.ActLooksGood:
		line = "looks-good " + id
	case bot.ActDeny, bot.ActExtend:
		line += " " + reason
	}
	before := snapshot(d.w, id)
	text := d.run(p, strings.TrimSpace(line))
	return Outcome{Text: text, Refused: snapshot(d.w, id) == before}
}

var hintRe = regexp.MustCompile(`\b(approve|deny|cancel|verify|extend|deactivate|revoke|looks-good)[ \x{00a0}]+([23456789A-HJ-NP-Z]{8})\b`)

func (d *shellDriver) Offered(p Person, id string) []bot.Action {
	d.sync()
	for i := len(d.log) - 1; i >= 0; i-- {
		l := d.log[i]
		if l.to != p.Key || !strings.Contains(l.text, id) {
			continue
		}
		var out []bot.Action
		for _, m := range hintRe.FindAllStringSubmatch(l.text, -1) {
			if m[2] == id {
				out = append(out, bot.Action(strings.ReplaceAll(m[1], "-", "_")))
			}
		}
		return out
	}
	return nil
}

func (d *shellDriver) Shared(p Person, id string) bool {
	d.sync()
	for i := len(d.log) - 1; i >= 0; i-- {
		if l := d.log[i]; l.to == p.Key && strings.Contains(l.text, id) {
			return l.shared
		}
	}
	return false
}

func (d *shellDriver) Told(p Person) []string {
	d.sync()
	var out []string
	for _, l := range d.log[min(d.told[p.Key], len(d.log)):] {
		if l.to == p.Key {
			out = append(out, l.text)
		}
	}
	d.told[p.Key] = len(d.log)
	return out
}

func (d *shellDriver) Pending(p Person) []string {
	d.t.Helper()
	return knownIDs(d.w, d.run(p, "pending"))
}

// Drain: the shell runs due jobs itself, after each command and on its tick.
func (d *shellDriver) Drain() { d.sync() }

func (d *shellDriver) Advance(dur time.Duration) { d.w.clock.Advance(dur); d.Drain() }

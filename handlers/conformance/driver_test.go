package conformance_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// Driver is one surface driven the way people use it, through its fake at the wire.
type Driver interface {
	// Request asks for access as the person would on the surface, and returns the request id
	// the surface answered with.
	Request(p Person, group string, access bot.Access, d time.Duration, reason string) string
	// Act takes the action on the request as the person would (a button, a form, a command):
	// the answer the surface gave, and whether it was a refusal.
	Act(p Person, act bot.Action, id, reason string) Outcome
	// Offered is the actions on the latest message about the request the surface sent the
	// person (Slack buttons, Teams card actions, shell hints); nil when it sent none.
	Offered(p Person, id string) []bot.Action
	// Shared reports whether that latest message is one shared by all the approvers (a
	// channel post, the shell's line to the approvers): it cannot differ per person, so it
	// shows what the engine offers an approver who has not voted (Engine.ApproverActions),
	// and whoever acts on it is judged then.
	Shared(p Person, id string) bool
	// Told is what the surface told the person since the last call, one entry a message.
	Told(p Person) []string
	// Pending is the request ids in the person's inbox (`pending`).
	Pending(p Person) []string
	// Drain runs the jobs due now and waits until the surface has delivered what they say.
	Drain()
	// Advance moves the clock, then drains.
	Advance(d time.Duration)
	// World is the core the surface runs on.
	World() *world
}

// Outcome is the surface's answer to an action.
type Outcome struct {
	Text    string
	Refused bool
}

// surfaces are the drivers every story runs with.
var surfaces = []struct {
	name  string
	start func(t *testing.T) Driver
}{
	{"slack", func(t *testing.T) Driver { return newSlackDriver(t) }},
	{"teams", func(t *testing.T) Driver { return newTeamsDriver(t) }},
	{"shell", func(t *testing.T) Driver { return newShellDriver(t) }},
}

var requestIDRe = regexp.MustCompile(`(?:Request|request|Extension|extension)\W{0,3}([23456789A-HJ-NP-Z]{8})\W{0,3} (?:submitted|is waiting)`)

// submittedID finds the id in a surface's answer to a submission.
func submittedID(t testing.TB, text string) string {
	t.Helper()
	m := requestIDRe.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no request id in the answer to the request:\n%s", text)
	}
	return m[1]
}

// sorted returns the actions in the engine's display order, for comparisons that do not
// depend on how a surface lays its buttons out.
func sorted(acts []bot.Action) []bot.Action {
	order := []bot.Action{bot.ActApprove, bot.ActDeny, bot.ActVerify, bot.ActExtend, bot.ActDeactivate, bot.ActRevoke, bot.ActLooksGood, bot.ActCancel}
	out := slices.Clone(acts)
	slices.SortStableFunc(out, func(a, b bot.Action) int { return slices.Index(order, a) - slices.Index(order, b) })
	return slices.Compact(out)
}

// kind classifies what a requester was told into the lifecycle step it reports ("" for
// none of them), from the words each surface uses.
func kind(text string) string {
	l := strings.ToLower(text)
	switch {
	case strings.Contains(l, "denied"):
		return "denied"
	case strings.Contains(l, "canceled"):
		return "canceled"
	case regexp.MustCompile(`\bended\b|has ended|no longer (a )?(member|owner)`).MatchString(l):
		return "ended"
	case strings.Contains(l, "is active") || strings.Contains(l, "you are now"):
		return "active"
	case strings.Contains(l, "was approved") || strings.Contains(l, "approved by"):
		return "approved"
	case strings.Contains(l, "waiting for approval") || strings.Contains(l, "submitted"):
		return "submitted"
	}
	return ""
}

// steps is the lifecycle steps of what a person was told, a step told twice in a row (the
// answer to the command, then the notice) counted once.
func steps(told []string) []string {
	var out []string
	for _, m := range told {
		if k := kind(m); k != "" && (len(out) == 0 || out[len(out)-1] != k) {
			out = append(out, k)
		}
	}
	return out
}

// about keeps the messages that name the request.
func about(told []string, id string) []string {
	var out []string
	for _, m := range told {
		if strings.Contains(m, id) {
			out = append(out, m)
		}
	}
	return out
}

var anyIDRe = regexp.MustCompile(`[23456789A-HJ-NP-Z]{8}`)

// knownIDs lists the request ids a text names, those the store knows (so that a word of
// eight capitals is not taken for one).
func knownIDs(w *world, text string) []string {
	var out []string
	for _, id := range anyIDRe.FindAllString(text, -1) {
		if !slices.Contains(out, id) && w.version(id) > 0 {
			out = append(out, id)
		}
	}
	return out
}

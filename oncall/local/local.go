// Package local is the on-call provider of the rotas written in the policy file
// (directory.on_call): people take turns of a fixed length from a start, or are all on call
// at once. It is for demos, tests and small teams without PagerDuty or Opsgenie.
package local

import (
	"context"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// Provider answers from the policy file's rotas. It is safe for concurrent use.
type Provider struct {
	rotas map[string]bot.SeedRota // by name
	now   func() time.Time
}

var _ bot.OnCallProvider = (*Provider)(nil)

// New serves rotas; now is the clock (nil: time.Now).
func New(rotas []bot.SeedRota, now func() time.Time) *Provider {
	p := &Provider{rotas: make(map[string]bot.SeedRota, len(rotas)), now: now}
	if p.now == nil {
		p.now = time.Now
	}
	for _, r := range rotas {
		p.rotas[r.Name] = r
	}
	return p
}

// Name is bot.OnCallLocal.
func (p *Provider) Name() string { return bot.OnCallLocal }

// OnCall answers whether q.Person (by e-mail, then UPN, whatever the case) is on call at q.At
// for one of the source's rotas.
func (p *Provider) OnCall(_ context.Context, q bot.OnCallQuery) (bot.OnCallAnswer, error) {
	if q.RequireIncident {
		return bot.OnCallAnswer{Why: "require_incident needs a PagerDuty service"}, nil
	}
	at := q.At
	if at.IsZero() {
		at = p.now()
	}
	var names []string
	for _, name := range q.Source.Schedules {
		r, err := p.rota(name)
		if err != nil {
			return bot.OnCallAnswer{}, err
		}
		people, _ := onCallAt(r, at)
		for _, who := range people {
			if addr := strings.TrimSpace(who); addr != "" &&
				(strings.EqualFold(addr, q.Person.Email) || strings.EqualFold(addr, q.Person.UPN)) {
				return bot.OnCallAnswer{OnCall: true, Via: rotaName(r.Name)}, nil
			}
		}
		names = append(names, rotaName(r.Name))
	}
	if len(names) == 0 {
		return bot.OnCallAnswer{Why: "the local on-call source names no rota"}, nil
	}
	return bot.OnCallAnswer{Why: "not on call for " + strings.Join(names, " or ")}, nil
}

// Now lists who is on call now for each rota of src, and when the current turn ends (never,
// for a rota without turns).
func (p *Provider) Now(_ context.Context, src bot.OnCallSource) ([]bot.OnCallShift, error) {
	now := p.now()
	var out []bot.OnCallShift
	for _, name := range src.Schedules {
		r, err := p.rota(name)
		if err != nil {
			return nil, err
		}
		people, until := onCallAt(r, now)
		out = append(out, bot.OnCallShift{Rota: rotaName(r.Name), People: people, Until: until})
	}
	return out, nil
}

func (p *Provider) rota(name string) (bot.SeedRota, error) {
	if r, ok := p.rotas[name]; ok {
		return r, nil
	}
	for n, r := range p.rotas {
		if strings.EqualFold(n, name) {
			return r, nil
		}
	}
	return bot.SeedRota{}, &unknownRota{name: name}
}

// unknownRota is a rota the policy file does not define; it wraps bot.ErrNotFound.
type unknownRota struct{ name string }

func (e *unknownRota) Error() string {
	return rotaName(e.name) + " does not exist; add it under directory.on_call in the policy file"
}

func (e *unknownRota) Unwrap() error { return bot.ErrNotFound }

// onCallAt is who is on call for r at t, and until when (zero: no end). With turns, the
// turn of People[floor((t-Since)/Shift) mod len(People)] runs from Since+k·Shift; a zero
// Since is the Unix epoch. Without turns everyone listed is on call.
func onCallAt(r bot.SeedRota, t time.Time) (people []string, until time.Time) {
	if len(r.People) == 0 {
		return nil, time.Time{}
	}
	if r.Shift <= 0 {
		return append([]string(nil), r.People...), time.Time{}
	}
	since := r.Since
	if since.IsZero() {
		since = time.Unix(0, 0)
	}
	d := t.Sub(since)
	k := int64(d / r.Shift)
	if d%r.Shift < 0 {
		k-- // before Since: floor, not truncation
	}
	i := k % int64(len(r.People))
	if i < 0 {
		i += int64(len(r.People))
	}
	return []string{r.People[i]}, since.Add(time.Duration(k+1) * r.Shift)
}

// rotaName words a rota for people: `local rota "db-primary"`.
func rotaName(name string) string { return `local rota "` + name + `"` }

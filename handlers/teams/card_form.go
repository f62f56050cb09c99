package teams

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pimbot/pimbot/bot"
)

// Form is the activation form as submitted (strings, as the card sends them), so that a
// refused form comes back with what the person entered.
type Form struct {
	Group     string
	Access    string
	Duration  string
	StartDate string // YYYY-MM-DD (Input.Date)
	StartTime string // HH:mm (Input.Time)
	Reason    string
	Ticket    string
}

// FormFromData reads the form's inputs from a card action's data.
func FormFromData(data map[string]any) Form {
	s := func(k string) string {
		v, _ := data[k].(string)
		return strings.TrimSpace(v)
	}
	return Form{Group: s("group"), Access: s("access"), Duration: s("duration"), StartDate: s("startDate"),
		StartTime: s("startTime"), Reason: s("reason"), Ticket: s("ticket")}
}

// Input turns the form into the engine's input, for g, the group the form names (nil when
// the policy has no such group: the engine refuses the group). A duration is read for g
// (bot.Group.ReadDuration): "0m", a negative or an out-of-range one is refused with g's
// range, never turned into the default. Refusals name the field.
func (f Form) Input(now time.Time, loc *time.Location, g *bot.Group) (bot.SubmitInput, error) {
	in := bot.SubmitInput{Group: f.Group, Reason: f.Reason, Ticket: f.Ticket}
	if f.Group == "" {
		return in, &bot.FieldError{Field: bot.FieldGroup, Message: "choose a group"}
	}
	if f.Access != "" {
		a, ok := bot.ParseAccess(f.Access)
		if !ok {
			return in, &bot.FieldError{Field: bot.FieldAccess, Message: "choose member or owner"}
		}
		in.Access = a
	}
	if f.Duration != "" && g != nil {
		d, err := g.ReadDuration(f.Duration)
		if err != nil {
			return in, err
		}
		in.Duration = d
	}
	if f.StartDate != "" || f.StartTime != "" {
		s := strings.TrimSpace(f.StartDate + " " + f.StartTime)
		t, err := bot.ParseTime(s, now, loc)
		if err != nil {
			return in, &bot.FieldError{Field: bot.FieldStart, Message: err.Error()}
		}
		in.Start = t
	}
	return in, nil
}

// durationLadder offers the usual choices; the form keeps those within the policy.
var durationLadder = []time.Duration{5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour,
	2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour, 24 * time.Hour, 3 * 24 * time.Hour, 7 * 24 * time.Hour}

// FormCard is the activation form for the groups the person may activate. A refusal of the
// engine is shown under its field (fieldErr) or above the form (topErr).
func FormCard(v View, groups []*bot.Group, f Form, fieldErr *bot.FieldError, topErr string) Card {
	body := append([]any{heading("Request access")}, groupList(groups)...)
	if topErr != "" {
		body = append(body, problem(topErr))
	}
	errAt := func(field string) {
		if fieldErr != nil && fieldErr.Field == field {
			body = append(body, problem(bot.Capitalize(fieldErr.Message)))
		}
	}

	group := f.Group
	if group == "" && len(groups) == 1 {
		group = groups[0].Name
	}
	choices := make([]any, 0, len(groups))
	size := 0
	for _, g := range groups {
		if size += utf8.RuneCountInString(g.Name)*2 + 24; size > maxGroupChoiceUnits { // {"title":…,"value":…}
			body = append(body, para(fmt.Sprintf("…and %d more groups: ask for one by name (activate <group>), or type groups to list them all.", len(groups)-len(choices))))
			break
		}
		choices = append(choices, choice(g.Name, g.Name))
	}
	style := "compact"
	if len(choices) > maxGroupLines {
		style = "filtered" // a long list is searched as one types
	}
	body = append(body, input("Input.ChoiceSet", "group", "Group", group, map[string]any{
		"choices": choices, "style": style, "isRequired": true, "errorMessage": "Choose a group", "placeholder": "Choose a group"}))
	errAt(bot.FieldGroup)

	if accessChoices := accessOf(groups); len(accessChoices) > 1 {
		access := f.Access
		if access == "" {
			access = string(accessChoices[0])
		}
		cs := make([]any, len(accessChoices))
		for i, a := range accessChoices {
			cs[i] = choice(string(a), string(a))
		}
		body = append(body, input("Input.ChoiceSet", "access", "Access", access, map[string]any{"choices": cs, "style": "expanded"}))
	}
	errAt(bot.FieldAccess)

	durs, def := durationChoices(groups, group)
	duration := bot.FormatDuration(def)
	if f.Duration != "" {
		// The duration sent back stays chosen when the chosen group allows it, read as the
		// group reads it (so 0m or -1h never is); otherwise nothing is chosen, and the
		// refusal under the field says why.
		duration = ""
		if d, ok := readDuration(groups, group, f.Duration); ok {
			duration = bot.FormatDuration(d)
			if !slices.Contains(durs, d) {
				durs = append(durs, d)
				slices.Sort(durs)
			}
		}
	}
	cs := make([]any, len(durs))
	for i, d := range durs {
		cs[i] = choice(bot.FormatDuration(d), bot.FormatDuration(d))
	}
	body = append(body, input("Input.ChoiceSet", "duration", "Duration", duration, map[string]any{"choices": cs, "style": "compact",
		"isRequired": true, "errorMessage": "Choose a duration", "placeholder": "Choose a duration"}))
	errAt(bot.FieldDuration)

	body = append(body, map[string]any{
		"type": "ColumnSet",
		"columns": []any{
			map[string]any{"type": "Column", "width": "stretch", "items": []any{
				input("Input.Date", "startDate", "Start date (empty: now)", f.StartDate, nil)}},
			map[string]any{"type": "Column", "width": "stretch", "items": []any{
				input("Input.Time", "startTime", "Start time ("+v.loc().String()+")", f.StartTime, nil)}},
		},
	})
	errAt(bot.FieldStart)

	reasonLabel := "Reason"
	if !anyRequires(groups, func(g *bot.Group) bool { return g.RequireJustification }) {
		reasonLabel = "Reason (optional)"
	}
	body = append(body, input("Input.Text", "reason", reasonLabel, f.Reason, map[string]any{
		"isMultiline": true, "maxLength": bot.MaxReasonLen, "placeholder": "Why do you need access?"}))
	errAt(bot.FieldReason)

	if names := requiring(groups, func(g *bot.Group) bool { return g.RequireTicket }); len(names) > 0 {
		body = append(body, input("Input.Text", "ticket", "Ticket (required for "+strings.Join(names, ", ")+")", f.Ticket, map[string]any{
			"maxLength": bot.MaxTicketLen, "placeholder": "INC-1234"}))
	}
	errAt(bot.FieldTicket)
	if fieldErr != nil && !slices.Contains([]string{bot.FieldGroup, bot.FieldAccess, bot.FieldDuration, bot.FieldStart, bot.FieldReason, bot.FieldTicket}, fieldErr.Field) {
		body = append(body, problem(bot.Capitalize(fieldErr.Message)))
	}
	return newCard(body, []any{execute("Request access", "submit", "", "positive")})
}

func input(typ, id, text, value string, extra map[string]any) map[string]any {
	m := map[string]any{"type": typ, "id": id, "label": plainText(text, 200)}
	if value != "" {
		m["value"] = plainText(value, bot.MaxReasonLen)
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func choice(text, value string) map[string]any {
	return map[string]any{"title": plainText(text, maxNameLen), "value": value}
}

// groupList is one full-width line per group: its name in bold, then its terms, so that a
// long name wraps with the line at its spaces, never mid-word in a narrow column.
func groupList(groups []*bot.Group) []any {
	out := make([]any, 0, min(len(groups), maxGroupLines+1))
	for i, g := range groups {
		if i == maxGroupLines {
			out = append(out, label(fmt.Sprintf("…and %d more; type groups for the terms of each.", len(groups)-i)))
			break
		}
		b := runs(bold(run(g.Name, maxNameLen)), run(": "+groupTerms(g), 600))
		b["spacing"] = "Small"
		out = append(out, b)
	}
	return out
}

// The form stays far below Teams' 28 KB card limit however many groups a person may
// activate: the terms of the first maxGroupLines groups are listed, and the group choices
// (searchable past maxGroupLines) take at most maxGroupChoiceUnits UTF-16 code units (how
// Teams counts).
const (
	maxGroupLines       = 10
	maxGroupChoiceUnits = 18 << 10
)

// readDuration reads s as the chosen group does, or, with no group chosen, as any of the
// groups does.
func readDuration(groups []*bot.Group, chosen, s string) (time.Duration, bool) {
	for _, g := range groups {
		if chosen != "" && !strings.EqualFold(g.Name, chosen) {
			continue
		}
		if d, err := g.ReadDuration(s); err == nil {
			return d, true
		}
	}
	return 0, false
}

// groupTerms says what a group allows, in one line.
func groupTerms(g *bot.Group) string {
	access := make([]string, len(g.Access))
	for i, a := range g.Access {
		access[i] = string(a)
	}
	s := fmt.Sprintf("%s, %s to %s", strings.Join(access, " or "), bot.FormatDuration(g.MinDuration), bot.FormatDuration(g.MaxDuration))
	if g.RequireApproval {
		s += ", approval by " + approversText(g)
	} else {
		s += ", no approval needed"
	}
	if g.RequireTicket {
		s += ", ticket required"
	}
	return s
}

func accessOf(groups []*bot.Group) []bot.Access {
	var out []bot.Access
	for _, g := range groups {
		for _, a := range g.Access {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return bot.SortedAccess(out)
}

// durationChoices keeps the ladder steps allowed by at least one group, plus each group's
// default and maximum; def is the default of the chosen group (or the first).
func durationChoices(groups []*bot.Group, chosen string) ([]time.Duration, time.Duration) {
	if len(groups) == 0 {
		return nil, time.Hour
	}
	lo, hi := groups[0].MinDuration, groups[0].MaxDuration
	def := groups[0].DefaultDuration
	var out []time.Duration
	for _, g := range groups {
		lo, hi = min(lo, g.MinDuration), max(hi, g.MaxDuration)
		if strings.EqualFold(g.Name, chosen) {
			def = g.DefaultDuration
		}
		for _, d := range []time.Duration{g.DefaultDuration, g.MaxDuration} {
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	for _, d := range durationLadder {
		if d >= lo && d <= hi && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out, def
}

func anyRequires(groups []*bot.Group, f func(*bot.Group) bool) bool {
	return len(requiring(groups, f)) > 0
}

func requiring(groups []*bot.Group, f func(*bot.Group) bool) []string {
	var names []string
	for _, g := range groups {
		if f(g) {
			names = append(names, g.Name)
		}
	}
	return names
}

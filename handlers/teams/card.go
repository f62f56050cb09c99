package teams

import (
	"time"

	"github.com/pimbot/pimbot/bot"
)

// Card is an Adaptive Card as a JSON tree. Renderers are pure functions of their arguments,
// so their output is compared with golden files.
type Card = map[string]any

// ContentTypeCard is the attachment content type of an Adaptive Card.
const ContentTypeCard = "application/vnd.microsoft.card.adaptive"

// cardVersion 1.5: Action.Execute (Universal Actions) and input labels.
const cardVersion = "1.5"

// Limits on what one card shows, so a card stays far below Teams' 28 KB message limit.
const (
	maxNameLen   = 120
	maxReasonLen = 1000
)

// Tones of a state label. Text is never coloured: in Teams' light theme `warning` yellow on
// white is 1.47:1, `good` green 2.07:1, and `attention` red on the dark theme's card 3.24:1,
// all below WCAG's 4.5:1. A tone only picks the background of a state label (stateLabel),
// whose text keeps the host's default colour (over 10:1 on every label background, in both
// themes; scripts/render-cards prints the figures).
const (
	toneDefault   = "default"
	toneGood      = "good"
	toneWarning   = "warning"
	toneAttention = "attention"
)

// View is what every renderer needs besides its data: the time and the reader's time zone.
type View struct {
	Now time.Time
	Loc *time.Location
}

func (v View) loc() *time.Location {
	if v.Loc == nil {
		return time.UTC
	}
	return v.Loc
}

func (v View) time(t time.Time) string { return formatTime(t, v.Now, v.loc()) }

func newCard(body []any, actions []any) Card {
	c := Card{
		"type":    "AdaptiveCard",
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"version": cardVersion,
		"body":    body,
		"msteams": map[string]any{"width": "Full"},
	}
	if len(actions) > 0 {
		c["actions"] = actions
	}
	return c
}

// title is a TextBlock of our own words (ids, states, policy names), escaped all the same,
// in the default colour.
func title(text string) map[string]any {
	return map[string]any{"type": "TextBlock", "text": escapeMarkdown(text, 200), "weight": "Bolder", "size": "Medium", "wrap": true}
}

// heading is a card's headline: large, bold, and announced as a heading by screen readers
// (style "heading", Adaptive Cards 1.5). It may name people, so it is escaped.
func heading(text string) map[string]any {
	return map[string]any{"type": "TextBlock", "text": escapeMarkdown(text, 200), "size": "Large", "weight": "Bolder",
		"style": "heading", "wrap": true, "spacing": "Small"}
}

// stateLabel says where a request stands in a few words ("Pending approval", "Active"), in
// bold default-coloured text on a background of the tone's container style, so the state
// reads the same on every theme and without colour.
func stateLabel(text, tone string) map[string]any {
	return map[string]any{"type": "ColumnSet", "columns": []any{labelColumn(text, tone)}}
}

// labelColumn is a state label as a column, to stand beside what it labels.
func labelColumn(text, tone string) map[string]any {
	style := "emphasis"
	switch tone {
	case toneGood, toneWarning, toneAttention:
		style = tone
	}
	return map[string]any{"type": "Column", "width": "auto", "style": style, "items": []any{
		map[string]any{"type": "TextBlock", "text": escapeMarkdown(text, 60), "weight": "Bolder", "size": "Small", "wrap": true}}}
}

// footer is the small print at the end of a card (the request id), our own words only.
func footer(text string) map[string]any { return label(text) }

// label is a small static TextBlock (our own words only).
func label(text string) map[string]any {
	return map[string]any{"type": "TextBlock", "text": escapeMarkdown(text, 200), "isSubtle": true, "size": "Small", "wrap": true, "spacing": "Medium"}
}

// problem is a refusal or an error: default-coloured text (it may quote what people typed)
// in a box of the attention style, never red text.
func problem(text string) map[string]any {
	return map[string]any{"type": "Container", "style": toneAttention, "items": []any{para(text)}}
}

// runs is a RichTextBlock: its TextRuns are never parsed as markdown, so they carry people's text.
func runs(inlines ...map[string]any) map[string]any {
	xs := make([]any, len(inlines))
	for i, r := range inlines {
		xs[i] = r
	}
	return map[string]any{"type": "RichTextBlock", "inlines": xs}
}

func run(text string, max int) map[string]any {
	return map[string]any{"type": "TextRun", "text": plainText(text, max)}
}

func bold(r map[string]any) map[string]any {
	r["weight"] = "Bolder"
	return r
}

// para is one paragraph of text that may contain anything people typed.
func para(text string) map[string]any { return runs(run(text, maxReasonLen+200)) }

type fact struct{ Title, Value string }

func factSet(facts []fact) map[string]any {
	xs := make([]any, 0, len(facts))
	for _, f := range facts {
		if f.Value == "" {
			continue
		}
		xs = append(xs, map[string]any{"title": escapeMarkdown(f.Title, 60), "value": escapeMarkdown(f.Value, 300)})
	}
	return map[string]any{"type": "FactSet", "facts": xs}
}

// execute is a Universal Action (an invoke the bot answers with a card), with an
// Action.Submit fallback for hosts without Universal Actions. Only the verb and a request id
// travel in data; nothing in it is trusted beyond naming the request.
func execute(text, verb, requestID, style string) map[string]any {
	data := map[string]any{"verb": verb}
	if requestID != "" {
		data["requestId"] = requestID
	}
	a := map[string]any{"type": "Action.Execute", "title": text, "verb": verb, "data": data}
	fb := map[string]any{"type": "Action.Submit", "title": text, "data": data}
	if style != "" {
		a["style"] = style
		fb["style"] = style
	}
	a["fallback"] = fb
	return a
}

func formatTime(t, now time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return bot.FormatTime(t, now, loc)
}

// span is a window of time, briefly, in the reader's zone: "09:00–11:00 UTC" today,
// "2026-11-29 09:00–11:00 UTC" another day, "23:00 – 2026-11-29 01:00 UTC" over midnight.
func (v View) span(from, to time.Time) string {
	loc := v.loc()
	f, t, n := from.In(loc), to.In(loc), v.Now.In(loc)
	sameDay := func(a, b time.Time) bool { return a.Year() == b.Year() && a.YearDay() == b.YearDay() }
	start := f.Format("2006-01-02 15:04")
	if sameDay(f, n) {
		start = f.Format("15:04")
	}
	if sameDay(f, t) {
		return start + "–" + t.Format("15:04 MST")
	}
	return start + " – " + t.Format("2006-01-02 15:04 MST")
}

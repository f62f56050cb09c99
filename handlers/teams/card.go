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

// Tones of a card's title (Adaptive Card colors).
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

// title is a TextBlock of our own words (ids, states, policy names), escaped all the same.
func title(text, tone string) map[string]any {
	t := map[string]any{"type": "TextBlock", "text": escapeMarkdown(text, 200), "weight": "Bolder", "size": "Medium", "wrap": true}
	if tone != "" && tone != toneDefault {
		t["color"] = tone
	}
	return t
}

// label is a small static TextBlock (our own words only).
func label(text string) map[string]any {
	return map[string]any{"type": "TextBlock", "text": escapeMarkdown(text, 200), "isSubtle": true, "size": "Small", "wrap": true, "spacing": "Medium"}
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

func colored(r map[string]any, tone string) map[string]any {
	if tone != "" && tone != toneDefault {
		r["color"] = tone
	}
	return r
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

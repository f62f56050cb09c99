package slack

import (
	"strings"

	"github.com/slack-go/slack"
)

// esc makes text that people typed inert in Slack mrkdwn: Slack's control sequences are
// <...> (mentions such as <!channel> and <@U123>, links) and &-entities, so escaping
// &, < and > is what Slack asks for. Formatting characters (*, _, ~, `) stay: they can
// change how a reason looks, not whom it pings.
func esc(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// truncate shortens s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

func md(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(md(text), nil, nil)
}

func contextLine(text string) *slack.ContextBlock {
	return slack.NewContextBlock("", md(text))
}

func button(actionID, value, text string, style slack.Style) *slack.ButtonBlockElement {
	b := slack.NewButtonBlockElement(actionID, value, plain(text))
	if style != "" {
		b = b.WithStyle(style)
	}
	return b
}

package teams

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text that people typed (reasons, deny reasons, group names they mistyped) and text from the
// directory (display names) never reaches a card as markup:
//
//   - free text goes into RichTextBlock TextRuns, which Adaptive Cards never parse as markdown;
//     plainText still breaks <at> mention tags and {{DATE()}} functions there;
//   - short values shown in TextBlocks and FactSets (names, groups, durations) go through
//     escapeMarkdown, which backslash-escapes every character that can start markdown.

// wordJoiner is an invisible character that splits "<at>" and "{{" so no host parses them.
const wordJoiner = "\u2060"

// plainText readies text for a TextRun: control characters dropped (newlines kept),
// mention tags and date functions broken, length bounded.
func plainText(s string, max int) string {
	s = truncateRunes(strings.ToValidUTF8(s, "�"), max)
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteRune(r)
		case r == '\t':
			b.WriteByte(' ')
		case r == '<':
			b.WriteString("<" + wordJoiner)
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
		default:
			b.WriteRune(r)
		}
	}
	return strings.ReplaceAll(b.String(), "{{", "{"+wordJoiner+"{")
}

// escapeMarkdown makes s inert in a TextBlock or FactSet (markdown) as one line: emphasis,
// links, code, strike-through, lists, headings and quotes are escaped with a backslash,
// mentions and HTML are broken, newlines become spaces.
func escapeMarkdown(s string, max int) string {
	s = plainText(s, max)
	s = strings.ReplaceAll(s, "\n", " ")
	var b strings.Builder
	b.Grow(len(s) + 8)
	lineStart := true
	for i, r := range s {
		switch {
		case strings.ContainsRune("\\*_[]`~", r):
			b.WriteByte('\\')
		case lineStart && strings.ContainsRune("#-+>=", r):
			b.WriteByte('\\') // a heading, list, quote or setext marker at the start
		case r == '.' && allDigitsBefore(s[:i]):
			b.WriteByte('\\') // "1." would start an ordered list
		}
		b.WriteRune(r)
		if r != ' ' {
			lineStart = false
		}
	}
	return b.String()
}

// allDigitsBefore reports whether prefix (trimmed of leading spaces) is a run of digits,
// so that the "." after it would make an ordered-list marker.
func allDigitsBefore(prefix string) bool {
	p := strings.TrimLeft(prefix, " ")
	if p == "" || len(p) > 9 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

func truncateRunes(s string, max int) string {
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

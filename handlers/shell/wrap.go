package shell

import (
	"strings"
	"unicode"

	"golang.org/x/text/width"
)

// wrap breaks one line of output (no newline in it) into lines of at most cols display
// columns, at spaces. Continuation lines are indented like the line itself, except in a list
// item, where they hang: after the bullet of "  → to alice: …", and under the second column
// of a row of columns ("  request R7KX2M9Q  active  …", the help's "  status [<id>]   your
// requests …"), if that is not past half the width. A word wider than the room left (a URL)
// is never cut: it gets a line of its own. cols <= 0, or a line that fits, gives the line
// unchanged.
func wrap(line string, cols int) []string {
	if cols <= 0 || displayWidth(line) <= cols {
		return []string{line}
	}
	body := strings.TrimLeft(line, " ")
	indent := len(line) - len(body)
	hang := hangingIndent(body, indent)
	if hang > cols/2 {
		hang = min(indent, cols/2)
	}
	var out []string
	cur := strings.Repeat(" ", indent)
	curW, words := indent, 0
	for body != "" {
		// The next word and the spaces before it (kept inside a line: they align columns).
		sp := len(body) - len(strings.TrimLeft(body, " "))
		word := body[sp:]
		if i := strings.IndexByte(word, ' '); i >= 0 {
			word = word[:i]
		}
		body = body[sp+len(word):]
		if word == "" {
			break // trailing spaces
		}
		ww := displayWidth(word)
		if words > 0 && curW+sp+ww > cols {
			out = append(out, cur)
			cur, curW, sp = strings.Repeat(" ", hang), hang, 0
		}
		cur += strings.Repeat(" ", sp) + word
		curW += sp + ww
		words++
	}
	return append(out, cur)
}

// hangingIndent is where the continuation lines of an indented line start (see wrap); body
// is the line without its indent of indent spaces.
func hangingIndent(body string, indent int) int {
	for _, bullet := range []string{"→ ", "• ", "- ", "* "} {
		if rest, ok := strings.CutPrefix(body, bullet); ok {
			return indent + displayWidth(bullet) + len(rest) - len(strings.TrimLeft(rest, " "))
		}
	}
	if i := strings.Index(body, "  "); i > 0 && indent > 0 { // columns: hang under the second one
		j := i + len(body[i:]) - len(strings.TrimLeft(body[i:], " "))
		if j < len(body) {
			return indent + displayWidth(body[:j])
		}
	}
	return indent
}

// displayWidth is how many columns s takes in a terminal: East Asian wide and full-width
// characters (CJK, most emoji) take two, combining marks and other zero-width characters
// none, every other character one. Bytes do not count.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		n += runeWidth(r)
	}
	return n
}

func runeWidth(r rune) int {
	switch {
	case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf) || unicode.IsControl(r):
		return 0
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}

// nbsp joins words that wrap keeps on one line (a command and its request id); it is
// printed as a space.
const nbsp = "\u00a0"

// wrapText wraps every whole line of text (see wrap); a last line without its newline (a
// prompt) is left as it is. No-break spaces come out as spaces.
func wrapText(text string, cols int) string {
	if cols <= 0 {
		return strings.ReplaceAll(text, nbsp, " ")
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(text, "\n") {
		body, whole := strings.CutSuffix(l, "\n")
		if !whole {
			b.WriteString(l)
			continue
		}
		b.WriteString(strings.Join(wrap(body, cols), "\n"))
		b.WriteString("\n")
	}
	return strings.ReplaceAll(b.String(), nbsp, " ")
}

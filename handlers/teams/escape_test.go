package teams

import "testing"

func TestEscapeMarkdown(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"prod-db-admins", "prod-db-admins"},
		{"Alice (alice@example.com)", "Alice (alice@example.com)"},
		{"[x](http://evil)", `\[x\](http://evil)`},
		{"**bold** _it_ `code` ~s~", `\*\*bold\*\* \_it\_ \` + "`" + `code\` + "`" + ` \~s\~`},
		{"- item", `\- item`},
		{"# title", `\# title`},
		{"> quote", `\> quote`},
		{"1. first", `1\. first`},
		{"v1.2", "v1.2"},
		{`back\slash`, `back\\slash`},
		{"<at>Bob</at>", "<\u2060at>Bob<\u2060/at>"},
		{"{{DATE(2026-01-01T00:00:00Z)}}", "{\u2060{DATE(2026-01-01T00:00:00Z)}}"},
		{"two\nlines", "two lines"},
		{"bell\a", "bell"},
	} {
		got := escapeMarkdown(tc.in, 100)
		if got != tc.want {
			t.Errorf("escapeMarkdown(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := escapeMarkdown("abcdef", 4); got != "abc…" {
		t.Errorf("truncation: %q", got)
	}
}

func TestPlainText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"[x](http://evil) **b**", "[x](http://evil) **b**"}, // a TextRun is never markdown
		{"<at>Bob</at>", "<\u2060at>Bob<\u2060/at>"},
		{"a\tb\r\nc", "a b\nc"},
		{"bad \xff utf8", "bad � utf8"},
	} {
		if got := plainText(tc.in, 100); got != tc.want {
			t.Errorf("plainText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

package shell

import (
	"slices"
	"strings"
	"testing"
)

func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		cols int
		want []string
	}{
		{"a line that fits is left alone", "Request R7KX2M9Q approved.", 80, []string{"Request R7KX2M9Q approved."}},
		{"no width: never wrapped", strings.Repeat("word ", 40), 0, []string{strings.Repeat("word ", 40)}},
		{"a sentence breaks at spaces, its continuation as indented as it is (not at all)",
			"Request R7KX2M9Q submitted: member of prod-db-admins for 2h from now, waiting for approval.", 40,
			[]string{
				"Request R7KX2M9Q submitted: member of",
				"prod-db-admins for 2h from now, waiting",
				"for approval.",
			}},
		{"a notification hangs under the text after its arrow",
			`  → to approvers bob@example.com: Alice asks for member of prod-db-admins for 2h from now. Reason: "fixing the outage".`, 50,
			[]string{
				"  → to approvers bob@example.com: Alice asks for",
				"    member of prod-db-admins for 2h from now.",
				`    Reason: "fixing the outage".`,
			}},
		{"a row of columns hangs under its second column, and keeps its own spacing",
			"  request R7KX2M9Q  active                 member of prod-db-admins for 2h, until 20:02 UTC  extend R7KX2M9Q | deactivate R7KX2M9Q", 80,
			[]string{
				"  request R7KX2M9Q  active                 member of prod-db-admins for 2h,",
				"                    until 20:02 UTC  extend R7KX2M9Q | deactivate R7KX2M9Q",
			}},
		{"a help line hangs under its description",
			"  verify <id>                     a fresh MFA sign-in link (or code) for your request waiting for MFA", 80,
			[]string{
				"  verify <id>                     a fresh MFA sign-in link (or code) for your",
				"                                  request waiting for MFA",
			}},
		{"an indented line with no columns goes on as indented",
			"                e.g. /activate prod-db-admins for 2h fixing the outage", 50,
			[]string{
				"                e.g. /activate prod-db-admins for",
				"                2h fixing the outage",
			}},
		{"a second column too far right: the line goes on as indented",
			"  x                                    the rest of a line that is too long for it", 50,
			[]string{
				"  x                                    the rest of",
				"  a line that is too long for it",
			}},
		{"a word wider than the line (a URL) is never cut",
			"  → to alice: Verify with Microsoft: https://login.example.com/authorize?state=0123456789abcdef0123456789", 40,
			[]string{
				"  → to alice: Verify with Microsoft:",
				"    https://login.example.com/authorize?state=0123456789abcdef0123456789",
			}},
		{"characters count, not bytes: accented letters take one column each",
			"Reason: réparer la base de données après l'échec", 20,
			[]string{
				"Reason: réparer la",
				"base de données",
				"après l'échec",
			}},
		{"wide characters take two columns",
			"理由 データベースの 移行 作業 のため", 14,
			[]string{
				"理由",
				"データベースの",
				"移行 作業",
				"のため",
			}},
		{"trailing spaces are dropped where the line breaks", "aaaa bbbb cccc   ", 9, []string{"aaaa bbbb", "cccc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := wrap(tc.line, tc.cols)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("wrap(%q, %d):\n got %q\nwant %q", tc.line, tc.cols, got, tc.want)
			}
			if tc.cols > 0 {
				for _, l := range got {
					if w := displayWidth(l); w > tc.cols && !strings.Contains(l, "https://") {
						t.Errorf("%q takes %d columns, more than %d", l, w, tc.cols)
					}
				}
			}
			if strings.Join(strings.Fields(strings.Join(got, " ")), " ") != strings.Join(strings.Fields(tc.line), " ") {
				t.Errorf("words lost or changed: %q", got)
			}
		})
	}
}

// A command and its request id stay together: their no-break spaces wrap as letters do and
// print as spaces; a prompt (no newline yet) is left alone.
func TestWrapText_KeepsCommandsWhole(t *testing.T) {
	in := "  → to alice: request R7KX2M9Q was approved by Bob; it starts now.  (cancel" + nbsp + "R7KX2M9Q)\n" +
		"alice> "
	want := "  → to alice: request R7KX2M9Q was approved by Bob; it starts now.\n" +
		"    (cancel R7KX2M9Q)\n" +
		"alice> "
	if got := wrapText(in, 76); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := wrapText(in, 0); got != strings.ReplaceAll(in, nbsp, " ") {
		t.Fatalf("without a width, only the no-break spaces change: %q", got)
	}
}

func TestDisplayWidth(t *testing.T) {
	for s, want := range map[string]int{
		"":         0,
		"alice":    5,
		"données":  7,
		"e\u0301":  1, // e and a combining acute accent
		"データ":      6,
		"→ ":       2,
		"🙂":        2,
		"a\u200db": 2, // a zero-width joiner takes no column
	} {
		if got := displayWidth(s); got != want {
			t.Errorf("displayWidth(%q) = %d, want %d", s, got, want)
		}
	}
}

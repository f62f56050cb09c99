package bot

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Near misses: what a person probably meant when a word is no group and no command.

// quickWords are the words that the shell's and Slack's /activate (or the shell's prompt)
// take as commands rather than group names; a near miss of one is worth a "did you mean".
var quickWords = map[string][]string{
	"shell": {"status", "help", "verify", "pending", "cancel"},
	"slack": {"status", "help", "verify", "pending", "cancel"},
}

// Suggest returns the candidate that word most likely misspells, or "" when none is near:
// within an edit distance (insertions, deletions, substitutions and swaps of two neighbouring
// letters, ignoring case) of 1 for words of up to 4 letters, 2 up to 8, 3 beyond; failing
// that, the only candidate that word is the start of (at least 3 letters). On a tie the
// earlier candidate wins.
func Suggest(word string, candidates []string) string {
	w := strings.ToLower(strings.TrimSpace(word))
	n := utf8.RuneCountInString(w)
	if n == 0 || n > 64 {
		return ""
	}
	limit := 3
	switch {
	case n <= 4:
		limit = 1
	case n <= 8:
		limit = 2
	}
	best, bestDist := "", limit+1
	prefixOf, prefixes := "", 0
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if d := editDistance(w, lc); d < bestDist {
			best, bestDist = c, d
		}
		if n >= 3 && strings.HasPrefix(lc, w) {
			prefixOf, prefixes = c, prefixes+1
		}
	}
	if best != "" {
		return best
	}
	if prefixes == 1 {
		return prefixOf
	}
	return ""
}

// editDistance is the optimal string alignment distance between a and b, in runes.
func editDistance(a, b string) int {
	s, t := []rune(a), []rune(b)
	if len(t) > 4*len(s)+8 {
		return len(t) // too far apart to be a typo; no need for the table
	}
	prev2 := make([]int, len(t)+1)
	prev := make([]int, len(t)+1)
	cur := make([]int, len(t)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(s); i++ {
		cur[0] = i
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(t)]
}

// NoSuchGroup refuses name as a group: it says that name was read as a group name and is
// none, suggests the group or command word it is a near miss of, and lists the groups the
// person may activate (groups; none when unknown).
func NoSuchGroup(name string, groups []string, words ...string) *FieldError {
	msg := fmt.Sprintf("there is no group %q", truncate(name, 64))
	if s := Suggest(name, append(append([]string(nil), groups...), words...)); s != "" {
		if slices.Contains(groups, s) {
			msg += " (did you mean " + s + "?)"
		} else {
			msg += " (did you mean the command " + s + "?)"
		}
	}
	if len(groups) > 0 {
		msg += "; you can activate: " + strings.Join(groups, ", ")
	}
	return &FieldError{Field: FieldGroup, Message: msg}
}

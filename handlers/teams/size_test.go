package teams

import (
	"testing"

	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
)

// Teams measures a message in UTF-16 code units: a character of the Basic Multilingual
// Plane counts 1 whatever its UTF-8 bytes, an emoji outside it 2.
func TestUTF16Len(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{{"abc", 3}, {"héllo", 5}, {"日本語", 3}, {"🔑", 2}, {"a🔑日", 4}} {
		if got := utf16Len([]byte(tc.in)); got != tc.want {
			t.Errorf("utf16Len(%q) = %d, want %d", tc.in, got, tc.want)
		}
		if got := teamsfake.UTF16Len([]byte(tc.in)); got != tc.want {
			t.Errorf("teamsfake.UTF16Len(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

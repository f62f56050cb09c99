package teams_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/teams"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
)

// However many groups a person may activate, the form stays under Teams' 28 KB card limit
// (counted in UTF-16, as Teams does), lists the terms of the first ten, and offers the
// groups in a searchable choice set; those beyond its budget are counted and named a way in.
func TestCard_FormWithManyGroupsStaysSmall(t *testing.T) {
	g := testGroups(t)[0]
	for _, n := range []int{300, 2000} {
		var groups []*bot.Group
		for i := range n {
			x := *g
			x.Name = fmt.Sprintf("%s-%04d-%s", "team", i, strings.Repeat("é", 4))
			groups = append(groups, &x)
		}
		card := teams.FormCard(view, groups, teams.Form{}, nil, "")
		b, err := json.Marshal(card)
		if err != nil {
			t.Fatal(err)
		}
		if size := teamsfake.UTF16Len(b); size > 28<<10 {
			t.Fatalf("%d groups: the form is %d UTF-16 units; Teams refuses cards over 28 KB", n, size)
		}
		text := teamsfake.Strings(card)
		if !strings.Contains(text, "filtered") || !strings.Contains(text, groups[0].Name) {
			t.Fatalf("%d groups: no searchable choice set with the first group", n)
		}
		switch {
		case n == 300 && !strings.Contains(text, groups[n-1].Name):
			t.Fatalf("300 groups: the last one is not offered")
		case n == 2000 && !strings.Contains(text, "more groups: ask for one by name"):
			t.Fatalf("2000 groups: the groups left out are not counted")
		}
		if strings.Count(text, "approval by") > 10 {
			t.Fatalf("%d groups: more than ten groups' terms listed", n)
		}
	}
}

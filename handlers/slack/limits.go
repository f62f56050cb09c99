package slack

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// Block Kit's limits, enforced in one place (fitMessage, fitView) on what is about to be
// sent, after escaping: long policy data (a hundred approvers, long group names, a reason
// full of "&") is cut with "…", never into a message Slack refuses, and never in the middle
// of an &amp; entity or a <link|label>.
// https://api.slack.com/reference/block-kit/blocks, .../composition-objects
const (
	limitMessageText  = 4000
	limitSectionText  = 3000
	limitFieldText    = 2000
	limitSectionField = 10
	limitContextElems = 10
	limitHeaderText   = 150
	limitOptionText   = 75
	limitOptionDesc   = 75
	limitBlockID      = 255
	limitMessageBlock = 50
	limitViewBlocks   = 100
	limitPlaceholder  = 150
	limitInputLabel   = 2000
	limitInputHint    = 2000
)

// cutText shortens s to at most n runes, ending with "…", without cutting an entity
// (&amp;, &lt;, &gt;) or a <link|label> in two.
func cutText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	cut := string(r[:max(n-1, 0)])
	if i := strings.LastIndexByte(cut, '&'); i >= 0 && i >= len(cut)-5 && !strings.Contains(cut[i:], ";") {
		cut = cut[:i]
	}
	if i := strings.LastIndexByte(cut, '<'); i >= 0 && !strings.Contains(cut[i:], ">") {
		cut = cut[:i]
	}
	return cut + "…"
}

func fitObject(t *slack.TextBlockObject, n int) {
	if t != nil {
		t.Text = cutText(t.Text, n)
	}
}

func fitOptions(opts []*slack.OptionBlockObject) {
	for _, o := range opts {
		if o == nil {
			continue
		}
		fitObject(o.Text, limitOptionText)
		fitObject(o.Description, limitOptionDesc)
	}
}

func fitOptionGroups(groups []*slack.OptionGroupBlockObject) {
	for _, g := range groups {
		if g != nil {
			fitObject(g.Label, limitOptionText)
			fitOptions(g.Options)
		}
	}
}

// fitElement applies the limits of an element's texts (buttons, selects, inputs).
func fitElement(el any) {
	switch e := el.(type) {
	case *slack.ButtonBlockElement:
		fitObject(e.Text, limitOptionText)
	case *slack.SelectBlockElement:
		fitObject(e.Placeholder, limitPlaceholder)
		fitOptions(e.Options)
		fitOptionGroups(e.OptionGroups)
		if e.InitialOption != nil {
			fitOptions([]*slack.OptionBlockObject{e.InitialOption})
		}
	case *slack.RadioButtonsBlockElement:
		fitOptions(e.Options)
		if e.InitialOption != nil {
			fitOptions([]*slack.OptionBlockObject{e.InitialOption})
		}
	case *slack.PlainTextInputBlockElement:
		fitObject(e.Placeholder, limitPlaceholder)
	}
}

// fitBlocks applies the limits to blocks (in place) and keeps at most n of them: when
// there are more, the last kept block says how many were left out.
func fitBlocks(blocks []slack.Block, n int) []slack.Block {
	for _, b := range blocks {
		switch x := b.(type) {
		case *slack.SectionBlock:
			fitObject(x.Text, limitSectionText)
			if len(x.Fields) > limitSectionField {
				x.Fields = x.Fields[:limitSectionField]
			}
			for _, f := range x.Fields {
				fitObject(f, limitFieldText)
			}
			if x.Accessory != nil {
				switch {
				case x.Accessory.ButtonElement != nil:
					fitElement(x.Accessory.ButtonElement)
				case x.Accessory.SelectElement != nil:
					fitElement(x.Accessory.SelectElement)
				}
			}
			x.BlockID = cutID(x.BlockID)
		case *slack.HeaderBlock:
			fitObject(x.Text, limitHeaderText)
			x.BlockID = cutID(x.BlockID)
		case *slack.ContextBlock:
			els := x.ContextElements.Elements
			if len(els) > limitContextElems {
				els = els[:limitContextElems]
			}
			for _, el := range els {
				if t, ok := el.(*slack.TextBlockObject); ok {
					fitObject(t, limitSectionText)
				}
			}
			x.ContextElements.Elements = els
			x.BlockID = cutID(x.BlockID)
		case *slack.ActionBlock:
			if x.Elements != nil {
				for _, el := range x.Elements.ElementSet {
					fitElement(el)
				}
			}
			x.BlockID = cutID(x.BlockID)
		case *slack.InputBlock:
			fitObject(x.Label, limitInputLabel)
			fitObject(x.Hint, limitInputHint)
			fitElement(x.Element)
			x.BlockID = cutID(x.BlockID)
		}
	}
	if len(blocks) > n {
		left := len(blocks) - (n - 1)
		blocks = append(blocks[:n-1:n-1], contextLine("…and "+itoa(left)+" more not shown here."))
	}
	return blocks
}

// cutID keeps a block id within Slack's 255 characters (ids the surface reads back are
// short; a long one comes only from a long group name, and stays unique by its start).
func cutID(id string) string {
	if len(id) <= limitBlockID {
		return id
	}
	r := []rune(id)
	for len(string(r)) > limitBlockID {
		r = r[:len(r)-1]
	}
	return string(r)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}

// fitMessage applies the limits to a message about to be sent.
func fitMessage(m msg) msg {
	m.Text = cutText(m.Text, limitMessageText)
	m.Blocks = fitBlocks(m.Blocks, limitMessageBlock)
	return m
}

// fitView applies the limits to a modal about to be opened or updated.
func fitView(v slack.ModalViewRequest) slack.ModalViewRequest {
	v.Blocks.BlockSet = fitBlocks(v.Blocks.BlockSet, limitViewBlocks)
	return v
}

// groupValue is a group's option value in the form: its name, or, for a name longer than
// an option value may be (150), a digest of it that groupByValue maps back.
func groupValue(name string) string {
	if utf8.RuneCountInString(name) <= 150 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return "~" + hex.EncodeToString(sum[:20])
}

// groupByValue maps an option value of the form back to a group name.
func (s *Surface) groupByValue(v string) string {
	if !strings.HasPrefix(v, "~") {
		return v
	}
	for _, g := range s.eng.Policy().Groups {
		if groupValue(g.Name) == v {
			return g.Name
		}
	}
	return v
}

package bot

import (
	"regexp"
	"strings"
	"time"
)

// Quick is the parsed quick form:
// <group> [member|owner] [for <duration>] [at <time>] [ticket <id>] [<reason...>]
type Quick struct {
	Group    string
	Access   Access
	Duration time.Duration
	Start    time.Time
	Ticket   string
	Reason   string
}

// QuickUsage is the quick form in words, for help texts.
const QuickUsage = "<group> [member|owner] [for <duration>] [at <time>] [ticket <id>] [<reason...>]"

var dateRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// ParseQuick parses the quick form. Every refusal is a FieldError naming the field.
//
// The options come in any order, each at most once. The reason is the rest of the line from
// the first word that is not an option, or from an option's second use, whatever that word
// is: "for 2h for the db migration" asks for 2h because of "for the db migration".
func ParseQuick(text string, now time.Time, loc *time.Location) (Quick, error) {
	var q Quick
	rest := strings.TrimSpace(text)
	if len(rest) > 4*MaxReasonLen {
		return q, fieldErr(FieldReason, "the text is too long (at most %d characters)", 4*MaxReasonLen)
	}
	word := func() string {
		rest = strings.TrimLeft(rest, " \t\r\n")
		i := strings.IndexAny(rest, " \t\r\n")
		if i < 0 {
			w := rest
			rest = ""
			return w
		}
		w := rest[:i]
		rest = rest[i:]
		return w
	}
	peek := func() string {
		save := rest
		w := word()
		rest = save
		return w
	}
	q.Group = word()
	if q.Group == "" {
		return q, fieldErr(FieldGroup, "name a group: "+QuickUsage)
	}
	used := map[string]bool{} // options given so far: access, for, at, ticket
	last := ""                // the option just read
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
		w := strings.ToLower(peek())
		option := w
		if w == "member" || w == "owner" {
			option = "access"
			if last == "access" && Access(w) != q.Access {
				return q, fieldErr(FieldAccess, "say member or owner, not both")
			}
		}
		if used[option] {
			q.Reason = rest // a second "for" (or at, ticket, member, owner) begins the reason
			break
		}
		switch option {
		case "access":
			word()
			q.Access, _ = ParseAccess(w)
		case "for":
			word()
			d := word()
			if u := strings.ToLower(peek()); u != "" {
				if _, isUnit := durationWords[u]; isUnit && !strings.ContainsAny(d, "hmsd") {
					d += " " + word()
				}
			}
			if d == "" {
				return q, fieldErr(FieldDuration, "say how long after for, e.g. for 2h")
			}
			v, err := ParseDuration(d)
			if err != nil {
				return q, fieldErr(FieldDuration, "%s", err.Error())
			}
			if v <= 0 {
				return q, fieldErr(FieldDuration, "the duration must be positive, not %s; say e.g. for 30m", truncate(d, 32))
			}
			q.Duration = v
		case "at":
			word()
			t := word()
			if dateRe.MatchString(t) {
				if nxt := peek(); len(nxt) == 5 && strings.Count(nxt, ":") == 1 {
					t += " " + word()
				}
			}
			if strings.EqualFold(t, "in") {
				t = "+" + word()
			}
			if t == "" || t == "+" {
				return q, fieldErr(FieldStart, "say when after at, e.g. at 14:30")
			}
			v, err := ParseTime(t, now, loc)
			if err != nil {
				return q, fieldErr(FieldStart, "%s", err.Error())
			}
			q.Start = v
		case "ticket":
			word()
			q.Ticket = word()
			if q.Ticket == "" {
				return q, fieldErr(FieldTicket, "say which ticket after ticket, e.g. ticket INC-1234")
			}
		default:
			q.Reason = rest // the first word that is no option begins the reason
			rest = ""
			continue
		}
		used[option] = true
		last = option
	}
	return q, nil
}

// Input turns a parsed quick form into the engine's submit input.
func (q Quick) Input() SubmitInput {
	return SubmitInput{Group: q.Group, Access: q.Access, Duration: q.Duration, Start: q.Start, Reason: q.Reason, Ticket: q.Ticket}
}

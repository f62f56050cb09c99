package bot

import (
	"fmt"
	"time"
)

// Plain-text phrases shared by every surface (each surface escapes them for its markup).

// What says what the request grants, e.g. "member of prod-db-admins for 2h".
func (r *Request) What() string {
	if r.Kind == KindExtend {
		return fmt.Sprintf("%s more as %s of %s (extends request %s)", FormatDuration(r.Duration), r.Access, r.Group, r.ParentID)
	}
	return fmt.Sprintf("%s of %s for %s", r.Access, r.Group, FormatDuration(r.Duration))
}

// When says when it starts or started and ends, in loc.
func (r *Request) When(now time.Time, loc *time.Location) string {
	switch {
	case r.State == StateActive:
		return "active until " + FormatTime(r.EndsAt, now, loc)
	case r.State == StateEnded:
		return "ended " + FormatTime(r.EndedAt, now, loc)
	case r.Kind == KindExtend:
		return ""
	case r.Start.IsZero() || !r.Start.After(now.Add(time.Minute)):
		return "from now"
	}
	return "from " + FormatTime(r.Start, now, loc)
}

// FormatTime prints a time briefly: "14:30 UTC" today, else "2026-11-29 14:30 UTC".
func FormatTime(t, now time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	t, now = t.In(loc), now.In(loc)
	if t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return t.Format("15:04 MST")
	}
	return t.Format("2006-01-02 15:04 MST")
}

// CachingCaveat is PIM's own advice, repeated in every "you are active" message.
const CachingCaveat = "Some apps cache group membership: if the access does not show, sign out and in again."

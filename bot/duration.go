package bot

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration accepts Go durations ("90m", "1h30m") plus days ("1d") and a few
// words people type ("2 hours", "30 minutes", "1 day").
func ParseDuration(s string) (time.Duration, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return 0, fmt.Errorf("empty duration; use e.g. 30m, 2h or 1d")
	}
	if len(t) > 32 {
		return 0, fmt.Errorf("%q is not a duration; use e.g. 30m, 2h or 1d", truncate(s, 32))
	}
	// "2 hours", "30 mins", "1 day"
	if f := strings.Fields(t); len(f) == 2 {
		if unit, ok := durationWords[f[1]]; ok {
			n, err := strconv.ParseFloat(f[0], 64)
			if err == nil && n >= 0 && n < 1e6 {
				return time.Duration(n * float64(unit)), nil
			}
		}
	}
	if strings.HasSuffix(t, "d") && !strings.ContainsAny(t[:len(t)-1], "hmsuµn") {
		n, err := strconv.ParseFloat(t[:len(t)-1], 64)
		if err == nil && n >= 0 && n < 1e5 {
			return time.Duration(n * 24 * float64(time.Hour)), nil
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; use e.g. 30m, 2h or 1d", s)
	}
	return d, nil
}

// ReadDuration reads a duration typed for g where one is asked: an empty answer is g's
// default; one that is no duration, zero, negative or outside g's range is refused with the
// range, in the words Submit uses.
func (g *Group) ReadDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return g.DefaultDuration, nil
	}
	d, err := ParseDuration(s)
	if err != nil {
		return 0, fieldErr(FieldDuration, "%s; %s allows %s", err.Error(), g.Name, g.DurationRange())
	}
	if d <= 0 || d < g.MinDuration || d > g.MaxDuration {
		return 0, fieldErr(FieldDuration, "%s is not allowed for %s; choose between %s and %s",
			truncate(s, 32), g.Name, FormatDuration(g.MinDuration), FormatDuration(g.MaxDuration))
	}
	return d, nil
}

// DurationRange is g's allowed range in words, e.g. "5m to 4h".
func (g *Group) DurationRange() string {
	return FormatDuration(g.MinDuration) + " to " + FormatDuration(g.MaxDuration)
}

var durationWords = map[string]time.Duration{
	"min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
}

// FormatDuration prints a duration the way people write it: 2h, 1h30m, 45m, 1d.
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0m"
	}
	d = d.Round(time.Second)
	var b strings.Builder
	if days := d / (24 * time.Hour); days > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", days)
	}
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
		d -= m * time.Minute
	}
	if s := d / time.Second; s > 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}

// ParseTime reads a start time: RFC 3339, "2026-12-01 14:30", "2026-12-01", "14:30" (today,
// or tomorrow if already past), "now", or "+30m" / "in 30m" (relative). Its refusals say what
// it reads in examples (TimeUsage), never in Go's layout strings.
func ParseTime(s string, now time.Time, loc *time.Location) (time.Time, error) {
	t := strings.TrimSpace(s)
	if loc == nil {
		loc = time.UTC
	}
	lower := strings.ToLower(t)
	switch {
	case lower == "" || lower == "now":
		return now, nil
	case strings.HasPrefix(lower, "+"), strings.HasPrefix(lower, "in "):
		d, err := ParseDuration(strings.TrimPrefix(strings.TrimPrefix(lower, "+"), "in "))
		if err != nil {
			return time.Time{}, notATime(s)
		}
		return now.Add(d), nil
	}
	if v, err := time.Parse(time.RFC3339, t); err == nil {
		return v, nil
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		if v, err := time.ParseInLocation(layout, t, loc); err == nil {
			return v, nil
		}
	}
	if v, err := time.ParseInLocation("15:04", t, loc); err == nil {
		n := now.In(loc)
		at := time.Date(n.Year(), n.Month(), n.Day(), v.Hour(), v.Minute(), 0, 0, loc)
		if at.Before(n.Add(-time.Minute)) {
			at = at.AddDate(0, 0, 1)
		}
		return at, nil
	}
	return time.Time{}, notATime(s)
}

// TimeUsage says in words which start times ParseTime reads (never Go's layout strings).
const TimeUsage = "use 14:30, 2026-12-01 14:30, +30m or an RFC 3339 time"

func notATime(s string) error {
	return fmt.Errorf("%q is not a time; %s", truncate(s, 40), TimeUsage)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

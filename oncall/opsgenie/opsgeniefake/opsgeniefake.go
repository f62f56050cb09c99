// Package opsgeniefake is a fake Opsgenie REST API on loopback for tests: the real
// opsgenie-go-sdk-v2 client is pointed at it and it answers the Who is On Call and schedule
// timeline calls the on-call provider makes, in Opsgenie's wire format, with Opsgenie's
// error bodies. It checks the API key, can be told to fail or to rate-limit the next calls,
// and counts the calls.
//
// The shapes follow Opsgenie's documentation and OpenAPI description:
//   - GET /v2/schedules/{identifier}/on-calls?scheduleIdentifierType=id|name&flat=true&date=…
//     (https://docs.opsgenie.com/docs/who-is-on-call-api; github.com/opsgenie/opsgenie-oas,
//     definitions/whoIsOnCall.yaml: {"data":{"_parent":{"id","name","enabled"},
//     "onCallRecipients":[…]},"took":…,"requestId":…}; the identifier type defaults to id);
//   - GET /v2/schedules/{identifier}/timeline?identifierType=…&interval=…&intervalUnit=…&date=…
//     (opsgenie-oas definitions/schedule.yaml: ScheduleTimeline, TimelinePeriod);
//   - errors {"message":…,"took":…,"requestId":…} (ErrorResponse in definitions/common.yaml),
//     401 for a bad key, 404 for an unknown entity, 429 when throttled with the
//     X-RateLimit-State / -Reason / -Period-In-Sec headers (responses/common.yaml;
//     https://docs.opsgenie.com/docs/response, https://docs.opsgenie.com/docs/api-rate-limiting);
//   - "Authorization: GenieKey <key>", as the SDK sends it (client.buildHttpRequest) and
//     Opsgenie's authentication documentation asks.
//
// Error messages are worded like Opsgenie's but not copied from a captured answer.
package opsgeniefake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/oncall/internal/fakefault"
)

// Schedule is an Opsgenie schedule.
type Schedule struct {
	ID   string // a UUID
	Name string
}

// Shift has a user (username: an e-mail address) on call for a schedule from Start to End
// (zero: unbounded).
type Shift struct {
	ScheduleID string
	Username   string
	Start, End time.Time
}

// Server is the fake.
type Server struct {
	APIKey string
	srv    *httptest.Server

	fakefault.Queue // Fail and RateLimit: the next calls fail

	mu        sync.Mutex
	schedules []Schedule
	shifts    []Shift
	calls     map[string]int
	seq       int
}

// New starts a fake that accepts apiKey; it stops when the test ends.
func New(t testing.TB, apiKey string) *Server {
	s := &Server{APIKey: apiKey, calls: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the API base (the provider's BaseURL).
func (s *Server) URL() string { return s.srv.URL }

// AddSchedule adds a schedule.
func (s *Server) AddSchedule(sc Schedule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.schedules = append(s.schedules, sc)
}

// AddShift puts a user on call for a schedule.
func (s *Server) AddShift(sh Shift) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shifts = append(s.shifts, sh)
}

// Calls counts the calls received (also refused ones): those to paths ending in suffix
// ("/on-calls", "/timeline") when given, else all.
func (s *Server) Calls(suffix ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, c := range s.calls {
		if len(suffix) == 0 || strings.HasSuffix(p, suffix[0]) {
			n += c
		}
	}
	return n
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[r.URL.Path]++
	s.seq++
	reqID := fmt.Sprintf("4f6a3c1e-0000-4000-8000-%012d", s.seq)
	w.Header().Set("X-Request-Id", reqID)
	w.Header().Set("X-Response-Time", "0.004")
	if r.Header.Get("Authorization") != "GenieKey "+s.APIKey {
		s.writeError(w, reqID, http.StatusUnauthorized, "Could not authenticate")
		return
	}
	if f, ok := s.Next(); ok {
		if f.Status == http.StatusTooManyRequests {
			secs := f.WaitSeconds()
			w.Header().Set("X-RateLimit-State", "THROTTLED")
			w.Header().Set("X-RateLimit-Reason", "ACCOUNT")
			w.Header().Set("X-RateLimit-Period-In-Sec", secs)
			w.Header().Set("Retry-After", secs)
			s.writeError(w, reqID, f.Status, "You are making too many requests! To avoid errors, we recommend you limit requests.")
			return
		}
		s.writeError(w, reqID, f.Status, "Internal Server Error")
		return
	}
	w.Header().Set("X-RateLimit-State", "OK")
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/schedules/")
	if !ok || r.Method != http.MethodGet {
		s.writeError(w, reqID, http.StatusNotFound, "Resource not found")
		return
	}
	q := r.URL.Query()
	switch {
	case strings.HasSuffix(rest, "/on-calls"):
		s.onCalls(w, reqID, strings.TrimSuffix(rest, "/on-calls"), q)
	case strings.HasSuffix(rest, "/timeline"):
		s.timeline(w, reqID, strings.TrimSuffix(rest, "/timeline"), q)
	default:
		s.writeError(w, reqID, http.StatusNotFound, "Resource not found")
	}
}

func (s *Server) writeError(w http.ResponseWriter, reqID string, status int, message string) {
	writeJSON(w, status, map[string]any{"message": message, "took": 0.001, "requestId": reqID})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// find resolves a schedule identifier of the given type (id by default, as Opsgenie's).
func (s *Server) find(ident, typ string) (Schedule, bool) {
	for _, sc := range s.schedules {
		if (typ == "name" && sc.Name == ident) || (typ != "name" && sc.ID == ident) {
			return sc, true
		}
	}
	return Schedule{}, false
}

// date reads the date parameter (yyyy-MM-dd'T'HH:mm:ssZ, with or without milliseconds);
// absent: now. A date that does not parse is a 422 as Opsgenie answers for bad parameters.
func date(q url.Values) (time.Time, bool) {
	v := q.Get("date")
	if v == "" {
		return time.Now(), true
	}
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil
}

func parent(sc Schedule) map[string]any {
	return map[string]any{"id": sc.ID, "name": sc.Name, "enabled": true}
}

func (s *Server) onCalls(w http.ResponseWriter, reqID, ident string, q url.Values) {
	sc, ok := s.find(ident, q.Get("scheduleIdentifierType"))
	if !ok {
		s.writeError(w, reqID, http.StatusNotFound, fmt.Sprintf("No schedule exists with %s [%s]", identWord(q.Get("scheduleIdentifierType")), ident))
		return
	}
	at, ok := date(q)
	if !ok {
		s.writeError(w, reqID, http.StatusUnprocessableEntity, "date is not valid")
		return
	}
	var users []string
	for _, sh := range s.shifts {
		if sh.ScheduleID == sc.ID && (sh.Start.IsZero() || !at.Before(sh.Start)) && (sh.End.IsZero() || at.Before(sh.End)) {
			users = append(users, sh.Username)
		}
	}
	data := map[string]any{"_parent": parent(sc)}
	if q.Get("flat") == "true" {
		data["onCallRecipients"] = nonNil(users)
	} else {
		var ps []map[string]any
		for _, u := range users {
			ps = append(ps, map[string]any{"name": u, "type": "user"})
		}
		data["onCallParticipants"] = ps
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "took": 0.004, "requestId": reqID})
}

func identWord(typ string) string {
	if typ == "name" {
		return "name"
	}
	return "id"
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// timeline answers the final timeline from date for interval × intervalUnit (days, weeks,
// months), one rotation whose periods are the shifts clipped to that span.
func (s *Server) timeline(w http.ResponseWriter, reqID, ident string, q url.Values) {
	sc, ok := s.find(ident, q.Get("identifierType"))
	if !ok {
		s.writeError(w, reqID, http.StatusNotFound, fmt.Sprintf("No schedule exists with %s [%s]", identWord(q.Get("identifierType")), ident))
		return
	}
	from, ok := date(q)
	if !ok {
		s.writeError(w, reqID, http.StatusUnprocessableEntity, "date is not valid")
		return
	}
	n := 1
	if v, err := strconv.Atoi(q.Get("interval")); err == nil && v > 0 {
		n = v
	}
	var to time.Time
	switch q.Get("intervalUnit") {
	case "days":
		to = from.AddDate(0, 0, n)
	case "weeks", "":
		to = from.AddDate(0, 0, 7*n)
	case "months":
		to = from.AddDate(0, n, 0)
	default:
		s.writeError(w, reqID, http.StatusUnprocessableEntity, "intervalUnit is not valid")
		return
	}
	periods := []map[string]any{}
	for _, sh := range s.shifts {
		start, end := sh.Start, sh.End
		if sh.ScheduleID != sc.ID || (!end.IsZero() && !end.After(from)) || (!start.IsZero() && !start.Before(to)) {
			continue
		}
		if start.IsZero() || start.Before(from) {
			start = from
		}
		if end.IsZero() || end.After(to) {
			end = to
		}
		periods = append(periods, map[string]any{"startDate": start.UTC().Format(time.RFC3339), "endDate": end.UTC().Format(time.RFC3339),
			"type": "default", "recipient": map[string]any{"id": "user-" + sh.Username, "type": "user", "name": sh.Username}})
	}
	tl := map[string]any{"rotations": []any{map[string]any{"id": "rot-1", "name": "Rota", "order": 1, "periods": periods}}}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"_parent": parent(sc),
		"startDate": from.UTC().Format(time.RFC3339), "endDate": to.UTC().Format(time.RFC3339),
		"finalTimeline": tl, "baseTimeline": tl, "overrideTimeline": map[string]any{"rotations": []any{}}},
		"took": 0.006, "requestId": reqID})
}

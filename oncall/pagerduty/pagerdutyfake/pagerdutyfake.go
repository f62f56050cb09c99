// Package pagerdutyfake is a fake PagerDuty REST API v2 on loopback for tests: the real
// go-pagerduty client is pointed at it (pagerduty.WithAPIEndpoint) and it answers the calls
// the on-call provider makes (GET /users, /schedules/{id}, /services/{id}, /oncalls,
// /incidents) in PagerDuty's wire format, with PagerDuty's error bodies. It checks the
// token, can be told to fail or to rate-limit the next calls, and counts the calls.
//
// The shapes follow PagerDuty's OpenAPI description (github.com/PagerDuty/api-schema,
// reference/REST/openapiv3.json: the examples of GET /oncalls, /users, /services/{id},
// /schedules/{id} and /incidents) and its developer documentation
// (github.com/PagerDuty/developer-docs, docs/REST-API/14-Errors.md for the error body and
// codes, 04-Rate-Limits.md for 429, 02-Authentication.md for the Authorization header).
package pagerdutyfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/oncall/internal/fakefault"
)

// User is a PagerDuty user.
type User struct{ ID, Name, Email string }

// Schedule is a PagerDuty schedule.
type Schedule struct{ ID, Name string }

// Service is a PagerDuty service and the escalation policy it pages.
type Service struct{ ID, Name, PolicyID, PolicyName string }

// OnCall is one on-call entry: a user on call for a schedule (and the escalation policy that
// uses it) or directly for an escalation policy, from Start to End (zero: open-ended, as
// PagerDuty answers null for a user named directly in an escalation rule).
type OnCall struct {
	UserID     string
	ScheduleID string // "" for a user named directly in the escalation rule
	PolicyID   string
	Level      int
	Start, End time.Time
}

// Incident is a PagerDuty incident.
type Incident struct {
	ID        string
	Number    int
	Title     string
	Status    string // triggered, acknowledged or resolved
	ServiceID string
}

// Server is the fake.
type Server struct {
	Token string
	srv   *httptest.Server

	fakefault.Queue // Fail and RateLimit: the next calls fail

	mu        sync.Mutex
	users     []User
	schedules map[string]Schedule
	services  map[string]Service
	policies  map[string]string // id -> name
	oncalls   []OnCall
	incidents []Incident
	calls     map[string]int // path -> count
}

// New starts a fake that accepts token; it stops when the test ends.
func New(t testing.TB, token string) *Server {
	s := &Server{Token: token, schedules: map[string]Schedule{}, services: map[string]Service{},
		policies: map[string]string{}, calls: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the API base for pagerduty.WithAPIEndpoint.
func (s *Server) URL() string { return s.srv.URL }

// AddUser adds a user.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users = append(s.users, u)
}

// AddSchedule adds a schedule.
func (s *Server) AddSchedule(sc Schedule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.schedules[sc.ID] = sc
}

// AddService adds a service and its escalation policy.
func (s *Server) AddService(sv Service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.services[sv.ID] = sv
	s.policies[sv.PolicyID] = sv.PolicyName
}

// AddOnCall adds an on-call entry.
func (s *Server) AddOnCall(o OnCall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oncalls = append(s.oncalls, o)
}

// AddIncident adds an incident.
func (s *Server) AddIncident(i Incident) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.incidents = append(s.incidents, i)
}

// Calls counts the calls received (all of them, also refused ones), per path when path is
// given ("/oncalls"), else in total.
func (s *Server) Calls(path ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(path) > 0 {
		return s.calls[path[0]]
	}
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

// PagerDuty's error codes (docs/REST-API/14-Errors.md, 04-Rate-Limits.md).
const (
	codeInternal     = 2000
	codeInvalidInput = 2001
	codeAuthFailed   = 2006
	codeNotFound     = 2100
	codeRateLimited  = 2020
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[r.URL.Path]++
	// "Authorization: Token token=<key>", exactly; anything else is a 401
	// (docs/REST-API/02-Authentication.md).
	if r.Header.Get("Authorization") != "Token token="+s.Token {
		writeError(w, http.StatusUnauthorized, codeAuthFailed, "Authentication failed")
		return
	}
	if f, ok := s.Next(); ok {
		if f.Status == http.StatusTooManyRequests {
			secs := f.WaitSeconds()
			w.Header().Set("ratelimit-limit", "960")
			w.Header().Set("ratelimit-remaining", "0")
			w.Header().Set("ratelimit-reset", secs)
			w.Header().Set("Retry-After", secs)
			writeError(w, f.Status, codeRateLimited, "Rate Limit Exceeded")
			return
		}
		writeError(w, f.Status, codeInternal, "An internal error has occurred. PagerDuty team has been notified.")
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, http.StatusNotFound, codeNotFound, "Not Found")
		return
	}
	q := r.URL.Query()
	switch path := r.URL.Path; {
	case path == "/users":
		s.listUsers(w, q)
	case path == "/oncalls":
		s.listOnCalls(w, q)
	case path == "/incidents":
		s.listIncidents(w, q)
	case strings.HasPrefix(path, "/schedules/"):
		s.getSchedule(w, strings.TrimPrefix(path, "/schedules/"))
	case strings.HasPrefix(path, "/services/"):
		s.getService(w, strings.TrimPrefix(path, "/services/"))
	default:
		writeError(w, http.StatusNotFound, codeNotFound, "Not Found")
	}
}

// writeError writes PagerDuty's error body: {"error":{"message":…,"code":…}}.
func writeError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": message, "code": code}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) ref(kind, id, summary string) map[string]any {
	path := map[string]string{"user": "users", "schedule": "schedules", "escalation_policy": "escalation_policies",
		"service": "services"}[kind]
	return map[string]any{"id": id, "type": kind + "_reference", "summary": summary,
		"self": s.srv.URL + "/" + path + "/" + id, "html_url": "https://example.pagerduty.com/" + path + "/" + id}
}

func (s *Server) userObject(u User) map[string]any {
	return map[string]any{"id": u.ID, "type": "user", "summary": u.Name, "self": s.srv.URL + "/users/" + u.ID,
		"html_url": "https://example.pagerduty.com/users/" + u.ID, "name": u.Name, "email": u.Email,
		"time_zone": "Etc/UTC", "role": "user", "contact_methods": []any{}, "notification_rules": []any{}, "teams": []any{}}
}

// page cuts list by limit (default 25, at most 100) and offset and writes it under key, with
// PagerDuty's classic pagination fields.
func page[T any](w http.ResponseWriter, q url.Values, key string, list []T) {
	limit, offset := 25, 0
	if v, err := strconv.Atoi(q.Get("limit")); err == nil && v > 0 {
		limit = min(v, 100)
	}
	if v, err := strconv.Atoi(q.Get("offset")); err == nil && v > 0 {
		offset = v
	}
	from, to := min(offset, len(list)), min(offset+limit, len(list))
	out := list[from:to]
	if out == nil {
		out = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{key: out, "limit": limit, "offset": offset, "more": to < len(list), "total": nil})
}

// listUsers: GET /users?query= matches names and e-mail addresses, case-insensitively.
func (s *Server) listUsers(w http.ResponseWriter, q url.Values) {
	query := strings.ToLower(q.Get("query"))
	var out []map[string]any
	for _, u := range s.users {
		if query == "" || strings.Contains(strings.ToLower(u.Name), query) || strings.Contains(strings.ToLower(u.Email), query) {
			out = append(out, s.userObject(u))
		}
	}
	page(w, q, "users", out)
}

func (s *Server) getSchedule(w http.ResponseWriter, id string) {
	sc, ok := s.schedules[id]
	if !ok {
		writeError(w, http.StatusNotFound, codeNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"schedule": map[string]any{
		"id": sc.ID, "type": "schedule", "summary": sc.Name, "self": s.srv.URL + "/schedules/" + sc.ID,
		"html_url": "https://example.pagerduty.com/schedules/" + sc.ID, "name": sc.Name, "time_zone": "Etc/UTC",
		"description": "", "escalation_policies": []any{}, "users": []any{}, "teams": []any{}, "schedule_layers": []any{}}})
}

func (s *Server) getService(w http.ResponseWriter, id string) {
	sv, ok := s.services[id]
	if !ok {
		writeError(w, http.StatusNotFound, codeNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"service": map[string]any{
		"id": sv.ID, "type": "service", "summary": sv.Name, "self": s.srv.URL + "/services/" + sv.ID,
		"html_url": "https://example.pagerduty.com/service-directory/" + sv.ID, "name": sv.Name, "status": "active",
		"escalation_policy": s.ref("escalation_policy", sv.PolicyID, sv.PolicyName), "teams": []any{}}})
}

// listOnCalls: GET /oncalls with schedule_ids[], escalation_policy_ids[], user_ids[] and a
// since/until range: the entries that overlap the range (until may not be before since:
// 400 "Invalid time values"). A user is a reference unless include[]=users asks for the
// user object (with the e-mail address).
func (s *Server) listOnCalls(w http.ResponseWriter, q url.Values) {
	now := time.Now()
	since, until := now, now
	var err error
	if v := q.Get("since"); v != "" {
		if since, err = time.Parse(time.RFC3339, v); err != nil {
			writeError(w, http.StatusBadRequest, 2004, "Invalid time values in 'since' and/or 'until' parameters")
			return
		}
	}
	if v := q.Get("until"); v != "" {
		if until, err = time.Parse(time.RFC3339, v); err != nil {
			writeError(w, http.StatusBadRequest, 2004, "Invalid time values in 'since' and/or 'until' parameters")
			return
		}
	}
	if until.Before(since) {
		writeError(w, http.StatusBadRequest, codeInvalidInput, "Invalid Input Provided")
		return
	}
	schedules, policies, users := q["schedule_ids[]"], q["escalation_policy_ids[]"], q["user_ids[]"]
	withUsers := slices.Contains(q["include[]"], "users")
	var out []map[string]any
	for _, o := range s.oncalls {
		if (len(schedules) > 0 && !slices.Contains(schedules, o.ScheduleID)) ||
			(len(policies) > 0 && !slices.Contains(policies, o.PolicyID)) ||
			(len(users) > 0 && !slices.Contains(users, o.UserID)) {
			continue
		}
		if (!o.End.IsZero() && !o.End.After(since)) || (!o.Start.IsZero() && o.Start.After(until)) {
			continue
		}
		u := User{ID: o.UserID}
		for _, x := range s.users {
			if x.ID == o.UserID {
				u = x
			}
		}
		e := map[string]any{"user": s.ref("user", u.ID, u.Name),
			"escalation_policy": s.ref("escalation_policy", o.PolicyID, s.policies[o.PolicyID]),
			"escalation_level":  max(o.Level, 1), "schedule": nil, "start": nil, "end": nil}
		if withUsers {
			e["user"] = s.userObject(u)
		}
		if o.ScheduleID != "" {
			e["schedule"] = s.ref("schedule", o.ScheduleID, s.schedules[o.ScheduleID].Name)
		}
		if !o.Start.IsZero() {
			e["start"] = o.Start.UTC().Format(time.RFC3339)
		}
		if !o.End.IsZero() {
			e["end"] = o.End.UTC().Format(time.RFC3339)
		}
		out = append(out, e)
	}
	page(w, q, "oncalls", out)
}

// listIncidents: GET /incidents with service_ids[] and statuses[] (triggered, acknowledged,
// resolved; anything else is a 400, as PagerDuty answers).
func (s *Server) listIncidents(w http.ResponseWriter, q url.Values) {
	services, statuses := q["service_ids[]"], q["statuses[]"]
	for _, st := range statuses {
		if st != "triggered" && st != "acknowledged" && st != "resolved" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"message": "Invalid Input Provided",
				"code": codeInvalidInput, "errors": []string{"Status must be a list of triggered, acknowledged, or resolved."}}})
			return
		}
	}
	var out []map[string]any
	for _, in := range s.incidents {
		if (len(services) > 0 && !slices.Contains(services, in.ServiceID)) ||
			(len(statuses) > 0 && !slices.Contains(statuses, in.Status)) {
			continue
		}
		out = append(out, map[string]any{"id": in.ID, "type": "incident",
			"summary": fmt.Sprintf("[#%d] %s", in.Number, in.Title), "self": s.srv.URL + "/incidents/" + in.ID,
			"incident_number": in.Number, "title": in.Title, "status": in.Status, "urgency": "high",
			"service": s.ref("service", in.ServiceID, s.services[in.ServiceID].Name)})
	}
	page(w, q, "incidents", out)
}

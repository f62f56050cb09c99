// Package graphfake is a fake Microsoft Graph on httptest that speaks the wire format pimbot
// uses: $ref bodies for adding members and owners, DELETE .../$ref, user and group lookups,
// checkMemberGroups (transitive), member listing, Graph's real error bodies and codes, and
// throttling (429 with Retry-After) or outages (503) on demand. It refuses a body labelled
// gzip that is not gzip, and records whether each request carried a bearer token.
package graphfake

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// User and Group are the fake tenant's objects.
type User struct{ ID, Mail, UPN, Name string }

type Group struct {
	ID, Mail, Name string
	Members        map[string]bool // user ids, or group ids of nested groups
	Owners         map[string]bool
}

// Call is one request the fake answered.
type Call struct {
	Method, Path string
	Status       int
	Auth         string // the Authorization header
	At           time.Time
}

// Server is the fake Graph. BaseURL() is what GRAPH_API_URL should be.
type Server struct {
	*httptest.Server
	Token string // the bearer token required; empty: any

	mu     sync.Mutex
	users  map[string]*User
	groups map[string]*Group
	calls  []Call
	fault  func(r *http.Request) (status int, retryAfter string)
}

// New starts an empty fake tenant.
func New() *Server {
	s := &Server{users: map[string]*User{}, groups: map[string]*Group{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// BaseURL is the Graph base (…/v1.0).
func (s *Server) BaseURL() string { return s.URL + "/v1.0" }

// AddUser and AddGroup populate the tenant.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = &u
}

func (s *Server) AddGroup(id, mail string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &Group{ID: id, Mail: mail, Name: mail, Members: map[string]bool{}, Owners: map[string]bool{}}
	for _, m := range members {
		g.Members[m] = true
	}
	s.groups[id] = g
}

// Fault makes matching requests fail: status 429 or 503 (with Retry-After), 0 to pass.
func (s *Server) Fault(f func(r *http.Request) (status int, retryAfter string)) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// Holds reports whether the user is a direct member (or owner) of the group.
func (s *Server) Holds(groupID, userID string, owner bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[groupID]
	if g == nil {
		return false
	}
	if owner {
		return g.Owners[userID]
	}
	return g.Members[userID]
}

// Calls returns the requests answered so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// graphError writes Graph's error body.
func graphError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("request-id", "fake-req-"+fmt.Sprint(time.Now().UnixNano()))
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": code, "message": msg,
		"innerError": map[string]any{"date": time.Now().UTC().Format("2006-01-02T15:04:05"), "request-id": "fake-req-1", "client-request-id": "fake-client-1"},
	}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	s.handle(rec, r)
	s.mu.Lock()
	s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Status: rec.status, Auth: r.Header.Get("Authorization"), At: time.Now()})
	s.mu.Unlock()
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }

func (s *Server) body(r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("body labelled gzip is not gzip: %w", err)
		}
		return io.ReadAll(zr)
	}
	return raw, nil
}

func userJSON(u *User) map[string]any {
	return map[string]any{"@odata.type": "#microsoft.graph.user", "id": u.ID, "mail": u.Mail, "userPrincipalName": u.UPN, "displayName": u.Name}
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer ") || (s.Token != "" && auth != "Bearer "+s.Token) {
		graphError(w, 401, "InvalidAuthenticationToken", "Access token is empty.")
		return
	}
	s.mu.Lock()
	fault := s.fault
	s.mu.Unlock()
	if fault != nil {
		if status, after := fault(r); status != 0 {
			if after != "" {
				w.Header().Set("Retry-After", after)
			}
			code := "TooManyRequests"
			if status == 503 {
				code = "serviceNotAvailable"
			}
			graphError(w, status, code, "Fake Graph is unavailable.")
			return
		}
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1.0")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method == "POST" && len(parts) == 4 && parts[0] == "groups" && parts[3] == "$ref":
		s.addRef(w, r, parts[1], parts[2])
	case r.Method == "DELETE" && len(parts) == 5 && parts[0] == "groups" && parts[4] == "$ref":
		g := s.groups[parts[1]]
		set := map[string]bool(nil)
		if g != nil {
			set = g.Members
			if parts[2] == "owners" {
				set = g.Owners
			}
		}
		if g == nil || !set[parts[3]] {
			graphError(w, 404, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", parts[3]))
			return
		}
		if parts[2] == "owners" && len(g.Owners) == 1 {
			graphError(w, 400, "Request_BadRequest", "The group must have at least one owner, hence this owner cannot be removed.")
			return
		}
		delete(set, parts[3])
		w.WriteHeader(204)
	case r.Method == "GET" && len(parts) == 2 && parts[0] == "users":
		if u := s.findUser(parts[1]); u != nil {
			writeJSON(w, userJSON(u))
			return
		}
		graphError(w, 404, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", parts[1]))
	case r.Method == "GET" && len(parts) == 1 && parts[0] == "users":
		mail := filterValue(r, "mail")
		var out []any
		for _, u := range s.users {
			if strings.EqualFold(u.Mail, mail) {
				out = append(out, userJSON(u))
			}
		}
		writeJSON(w, map[string]any{"value": out})
	case r.Method == "GET" && len(parts) == 1 && parts[0] == "groups":
		mail := filterValue(r, "mail")
		var out []any
		for _, g := range s.groups {
			if strings.EqualFold(g.Mail, mail) {
				out = append(out, map[string]any{"id": g.ID})
			}
		}
		writeJSON(w, map[string]any{"value": out})
	case r.Method == "GET" && len(parts) == 2 && parts[0] == "groups":
		g := s.groups[parts[1]]
		if g == nil {
			graphError(w, 404, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", parts[1]))
			return
		}
		writeJSON(w, map[string]any{"id": g.ID, "displayName": g.Name, "isAssignableToRole": false})
	case r.Method == "GET" && len(parts) == 3 && parts[0] == "groups" && (parts[2] == "members" || parts[2] == "owners"):
		g := s.groups[parts[1]]
		if g == nil {
			graphError(w, 404, "Request_ResourceNotFound", "Resource does not exist.")
			return
		}
		set := g.Members
		if parts[2] == "owners" {
			set = g.Owners
		}
		var out []any
		for id := range set {
			if u := s.users[id]; u != nil {
				out = append(out, userJSON(u))
			}
		}
		writeJSON(w, map[string]any{"value": out})
	case r.Method == "POST" && len(parts) == 3 && parts[0] == "users" && parts[2] == "checkMemberGroups":
		s.checkMemberGroups(w, r, parts[1])
	default:
		graphError(w, 400, "BadRequest", "Resource not found for the segment '"+path+"'.")
	}
}

func filterValue(r *http.Request, field string) string {
	f := r.URL.Query().Get("$filter")
	v, ok := strings.CutPrefix(f, field+" eq '")
	if !ok {
		return "\x00"
	}
	return strings.ReplaceAll(strings.TrimSuffix(v, "'"), "''", "'")
}

func (s *Server) findUser(ref string) *User {
	for _, u := range s.users {
		if strings.EqualFold(u.ID, ref) || strings.EqualFold(u.UPN, ref) {
			return u
		}
	}
	return nil
}

func (s *Server) addRef(w http.ResponseWriter, r *http.Request, groupID, rel string) {
	raw, err := s.body(r)
	if err != nil {
		graphError(w, 400, "BadRequest", err.Error())
		return
	}
	var body map[string]string
	if err := json.Unmarshal(raw, &body); err != nil {
		graphError(w, 400, "BadRequest", "Invalid request body: "+err.Error())
		return
	}
	ref := body["@odata.id"]
	i := strings.LastIndex(ref, "/directoryObjects/")
	if i < 0 {
		graphError(w, 400, "Request_BadRequest", "Invalid object identifier '"+ref+"'.")
		return
	}
	uid := ref[i+len("/directoryObjects/"):]
	g := s.groups[groupID]
	if g == nil {
		graphError(w, 404, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", groupID))
		return
	}
	if s.users[uid] == nil {
		graphError(w, 404, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", uid))
		return
	}
	set := g.Members
	if rel == "owners" {
		set = g.Owners
	}
	if set[uid] {
		graphError(w, 400, "Request_BadRequest", "One or more added object references already exist for the following modified properties: '"+rel+"'.")
		return
	}
	set[uid] = true
	w.WriteHeader(204)
}

func (s *Server) checkMemberGroups(w http.ResponseWriter, r *http.Request, userID string) {
	raw, err := s.body(r)
	if err != nil {
		graphError(w, 400, "BadRequest", err.Error())
		return
	}
	var body struct {
		GroupIDs []string `json:"groupIds"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || len(body.GroupIDs) > 20 {
		graphError(w, 400, "Request_BadRequest", "Invalid groupIds (at most 20).")
		return
	}
	u := s.findUser(userID)
	if u == nil {
		graphError(w, 404, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", userID))
		return
	}
	var out []string
	for _, gid := range body.GroupIDs {
		if s.inGroup(u.ID, gid, map[string]bool{}) {
			out = append(out, gid)
		}
	}
	writeJSON(w, map[string]any{"value": out})
}

func (s *Server) inGroup(uid, gid string, seen map[string]bool) bool {
	g := s.groups[gid]
	if g == nil || seen[gid] {
		return false
	}
	seen[gid] = true
	if g.Members[uid] {
		return true
	}
	for m := range g.Members {
		if s.groups[m] != nil && s.inGroup(uid, m, seen) {
			return true
		}
	}
	return false
}

// Package graphfake is a fake Microsoft Graph on httptest that speaks the wire format pimbot
// uses: $ref bodies for adding members and owners, DELETE .../$ref, user and group lookups,
// checkMemberGroups (transitive), paged member and owner listings, Graph's real error bodies
// and codes, application permissions read from the token's roles claim (403
// Authorization_RequestDenied when one is missing, RoleManagement.ReadWrite.Directory for
// role-assignable groups), and throttling (429 with Retry-After) or outages (503) on demand.
// It keeps Entra's rules: adding a holder again is a 400 "already exist", removing a
// non-holder a 404, removing the last owner a 400; mail-enabled security groups, distribution
// lists, dynamic and on-premises synced groups, and groups in a restricted management
// administrative unit refuse changes with Graph's own answers (refuseWrite); disabled accounts
// answer accountEnabled: false; users are found by UPN, mail or an alias in proxyAddresses;
// and replication lag (SetLag) makes fresh $refs invisible to reads and deletes.
//
// It gunzips request bodies labelled gzip and fails loudly (a 400 and a recorded violation)
// when a body claims gzip but is not; it records every request with whether an
// Authorization header arrived. Other packages' tests use it with the real SDK client
// pointed at BaseURL() through GRAPH_API_URL.
package graphfake

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// User is a user of the fake tenant.
type User struct {
	ID, Mail, UPN, Name string
	Disabled            bool // accountEnabled: false
	// ProxyAddresses are the user's addresses as Exchange keeps them: "SMTP:primary@…" and
	// "smtp:alias@…" (found with $filter=proxyAddresses/any(p:p eq 'smtp:alias@…')).
	ProxyAddresses []string
}

// Group is a group of the fake tenant. The zero value is an assigned cloud security group
// (mailEnabled false, securityEnabled true), the only kind besides Microsoft 365 groups whose
// members an app may change; the other fields make the kinds Graph will not let an app change
// (see refuseWrite).
type Group struct {
	ID, Mail, Name string
	RoleAssignable bool            // isAssignableToRole: changes need RoleManagement.ReadWrite.Directory
	Dynamic        bool            // groupTypes contains DynamicMembership
	MembershipRule string          // the rule of a dynamic group
	Synced         bool            // onPremisesSyncEnabled
	Unified        bool            // a Microsoft 365 group: groupTypes contains Unified, mailEnabled true
	MailEnabled    bool            // with securityEnabled: a mail-enabled security group
	Distribution   bool            // a distribution list: mailEnabled true, securityEnabled false
	Restricted     bool            // isManagementRestricted: in a restricted management administrative unit
	Members        map[string]bool // user ids, or group ids of nested groups
	Owners         map[string]bool
}

// Call is one request the fake answered.
type Call struct {
	Method, Path, Query string
	Status              int
	Auth                string // the Authorization header as it arrived ("" when none did)
	Gzip                bool   // the body was labelled Content-Encoding: gzip
	Body                string // the request body, gunzipped
	At                  time.Time
}

// Authorized reports whether an Authorization header arrived.
func (c Call) Authorized() bool { return c.Auth != "" }

// Server is the fake Graph. BaseURL() is what GRAPH_API_URL should be.
type Server struct {
	*httptest.Server
	// Token, when set, is a bearer token accepted with every permission. Tokens made by
	// Mint are accepted with the roles they carry. Anything else answers 401. With no Token
	// set, any bearer token is accepted with every permission.
	Token string
	// PageSize is the page of member and owner listings without $top (Graph: 100), and
	// MaxPage the most a page holds whatever $top asks (Graph: 999).
	PageSize, MaxPage int
	// Latency is added to every answer (a Graph round trip), 0 by default.
	Latency time.Duration

	mu         sync.Mutex
	users      map[string]*User
	groups     map[string]*Group
	calls      []Call
	violations []string
	fault      func(r *http.Request) (status int, retryAfter string)
	minted     map[string][]string
	mintedWids map[string][]string
	addedAt    map[string]time.Time // group|rel|user -> when the $ref was added (for lag)
	lag        time.Duration
	pim        pimState // PIM for Groups assignments (pim.go)

	ent entitlementState // access packages and their assignments (accesspackages.go)

	inFlight, peak atomic.Int64
	seq            atomic.Int64
}

// New starts an empty fake tenant. Close it when done (Start does that for a test).
func New() *Server {
	s := &Server{users: map[string]*User{}, groups: map[string]*Group{}, minted: map[string][]string{}, mintedWids: map[string][]string{}, addedAt: map[string]time.Time{}, PageSize: 100, MaxPage: 999}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Start is New for a test: the server closes when the test ends, and the test fails if any
// request broke the wire format (see Violations).
func Start(t testing.TB) *Server {
	s := New()
	t.Cleanup(func() {
		s.Close()
		for _, v := range s.Violations() {
			t.Errorf("fake Graph: %s", v)
		}
	})
	return s
}

// BaseURL is the Graph base (…/v1.0).
func (s *Server) BaseURL() string { return s.URL + "/v1.0" }

// Mint makes a bearer token that carries the given application permissions in its roles
// claim, shaped like Entra's (a JWT; the signature is not real).
func (s *Server) Mint(roles ...string) string { return s.MintWithDirectoryRoles(nil, roles...) }

// MintWithDirectoryRoles is Mint for an app that also holds Entra directory roles: their
// role template ids go in the token's wids claim. The fake takes a group-managing role in
// wids as assigned at the scope of every restricted management administrative unit (Entra
// honours only an assignment scoped to the unit, which a token does not show).
func (s *Server) MintWithDirectoryRoles(wids []string, roles ...string) string {
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"RS256"}`))
	c := map[string]any{"aud": "https://graph.microsoft.com", "appid": "fake-app",
		"roles": roles, "jti": strconv.FormatInt(s.seq.Add(1), 10)}
	if len(wids) > 0 {
		c["wids"] = wids
	}
	claims, _ := json.Marshal(c)
	tok := hdr + "." + base64.RawURLEncoding.EncodeToString(claims) + ".fake-signature"
	s.mu.Lock()
	s.minted[tok] = append([]string(nil), roles...)
	s.mintedWids[tok] = append([]string(nil), wids...)
	s.mu.Unlock()
	return tok
}

// Directory role template ids (the same in every tenant) that may change a group's members
// when assigned at the scope of a restricted management administrative unit.
const (
	RoleGroupsAdministrator = "fdd7a751-b60b-444a-984c-02652fe8fa1c"
	RoleUserAdministrator   = "fe930be7-5e62-47db-91af-98c3a49a38b1"
)

// AddUser adds a user.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.ID = strings.ToLower(u.ID)
	s.users[u.ID] = &u
}

// AddGroup adds a group with direct members (user ids, or ids of nested groups).
func (s *Server) AddGroup(id, mail string, members ...string) {
	s.PutGroup(Group{ID: id, Mail: mail, Name: mail}, members...)
}

// PutGroup adds (or replaces) a group described in full.
func (s *Server) PutGroup(g Group, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g.ID = strings.ToLower(g.ID)
	if g.Members == nil {
		g.Members = map[string]bool{}
	}
	if g.Owners == nil {
		g.Owners = map[string]bool{}
	}
	for _, m := range members {
		g.Members[strings.ToLower(m)] = true
	}
	s.groups[g.ID] = &g
}

// Grant makes a user a member (or owner) directly, as an admin in the portal would.
func (s *Server) Grant(groupID, userID string, owner bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.groups[strings.ToLower(groupID)]; g != nil {
		if owner {
			g.Owners[strings.ToLower(userID)] = true
		} else {
			g.Members[strings.ToLower(userID)] = true
		}
	}
}

// Fault makes matching requests fail with status (429, 500, 503, 504, 403) and a
// Retry-After header when retryAfter is set; status 0 lets the request through.
func (s *Server) Fault(f func(r *http.Request) (status int, retryAfter string)) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// Holds reports whether the user is a direct member (or owner) of the group.
func (s *Server) Holds(groupID, userID string, owner bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expirePIM() // Entra ends PIM assignments at their expiration by itself
	g := s.groups[strings.ToLower(groupID)]
	if g == nil {
		return false
	}
	if owner {
		return g.Owners[strings.ToLower(userID)]
	}
	return g.Members[strings.ToLower(userID)]
}

// SetDisabled disables (or enables) a user's account, as an administrator does.
func (s *Server) SetDisabled(userID string, disabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[strings.ToLower(userID)]; u != nil {
		u.Disabled = disabled
	}
}

// DeleteGroup deletes a group, as an administrator does.
func (s *Server) DeleteGroup(groupID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.groups, strings.ToLower(groupID))
}

// SetLag sets Entra's replication lag: for this long after a $ref is added, a read of it
// (GET .../members/{id}/graph.user) and a DELETE of it answer 404 as a lagging replica
// does, and the holder stays ("Designing for eventual consistency for Microsoft Entra").
// 0 (the default) makes every write visible at once.
func (s *Server) SetLag(d time.Duration) {
	s.mu.Lock()
	s.lag = d
	s.mu.Unlock()
}

// lagging reports whether a $ref added at most Lag ago is still unseen by the replica
// that answers.
func (s *Server) lagging(groupID, rel, uid string) bool {
	at, ok := s.addedAt[groupID+"|"+rel+"|"+uid]
	return ok && s.lag > 0 && time.Since(at) < s.lag
}

// Calls returns the requests answered so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Violations lists requests that broke Graph's wire format (a body labelled gzip that is
// not gzip, a JSON body without its content type, a malformed $ref body, an unknown path).
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// PeakInFlight is the most requests the fake was answering at once.
func (s *Server) PeakInFlight() int { return int(s.peak.Load()) }

func (s *Server) violate(format string, args ...any) {
	s.mu.Lock()
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// graphError writes Graph's error body.
func (s *Server) graphError(w http.ResponseWriter, status int, code, msg string) {
	rid := fmt.Sprintf("00000000-fa4e-4000-8000-%012d", s.seq.Add(1))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("request-id", rid)
	w.Header().Set("client-request-id", rid)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": code, "message": msg,
		"innerError": map[string]any{"date": time.Now().UTC().Format("2006-01-02T15:04:05"), "request-id": rid, "client-request-id": rid},
	}})
}

func guidShaped(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case !strings.ContainsRune("0123456789abcdefABCDEF", c):
			return false
		}
	}
	return true
}

func notFoundMsg(id string) string {
	return fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	body, berr := s.body(r) // first: the server notices a client that gives up only once the body is read
	if s.Latency > 0 {
		t := time.NewTimer(s.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done(): // the client gave up
			t.Stop()
		}
	}
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	s.handle(rec, r, body, berr)
	s.mu.Lock()
	s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: rec.status,
		Auth: r.Header.Get("Authorization"), Gzip: r.Header.Get("Content-Encoding") == "gzip", Body: string(body), At: time.Now()})
	s.mu.Unlock()
}

// body reads the request body, gunzipping it when it is labelled gzip.
func (s *Server) body(r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			s.violate("%s %s: body labelled Content-Encoding: gzip is not gzip (%d bytes: %.40q)", r.Method, r.URL.Path, len(raw), raw)
			return raw, fmt.Errorf("the request body is labelled gzip but is not gzip: %w", err)
		}
		return io.ReadAll(zr)
	}
	return raw, nil
}

// Permissions each kind of call needs: any one of a set.
var (
	readUsers   = []string{"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	readGroups  = []string{"GroupMember.Read.All", "GroupMember.ReadWrite.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	writeMember = []string{"GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"}
	writeOwner  = []string{"Group.ReadWrite.All", "Directory.ReadWrite.All"}
	roleMgmt    = []string{"RoleManagement.ReadWrite.Directory"}
)

// authorize answers 401 for a missing or unknown token and returns the token's roles (nil: all)
// and directory roles (wids).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (roles, wids []string, all, ok bool) {
	auth := r.Header.Get("Authorization")
	tok, isBearer := strings.CutPrefix(auth, "Bearer ")
	if !isBearer || tok == "" {
		s.graphError(w, 401, "InvalidAuthenticationToken", "Access token is empty.")
		return nil, nil, false, false
	}
	s.mu.Lock()
	roles, minted := s.minted[tok]
	wids = s.mintedWids[tok]
	s.mu.Unlock()
	switch {
	case minted:
		return roles, wids, false, true
	case s.Token == "" || tok == s.Token:
		return nil, nil, true, true
	}
	s.graphError(w, 401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed, there are no dots (.).")
	return nil, nil, false, false
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request, body []byte, bodyErr error) {
	roles, wids, all, ok := s.authorize(w, r)
	if !ok {
		return
	}
	if bodyErr != nil {
		s.graphError(w, 400, "BadRequest", bodyErr.Error())
		return
	}
	s.mu.Lock()
	fault := s.fault
	s.mu.Unlock()
	if fault != nil {
		if status, after := fault(r); status != 0 {
			s.faultAnswer(w, status, after)
			return
		}
	}
	if r.Method == http.MethodPost && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		s.violate("%s %s: a JSON body sent as Content-Type %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		s.graphError(w, 415, "UnsupportedMediaType", "Content-Type must be application/json.")
		return
	}
	need := func(sets ...[]string) bool {
		if all {
			return true
		}
		for _, set := range sets {
			if !slices.ContainsFunc(set, func(p string) bool { return slices.Contains(roles, p) }) {
				s.graphError(w, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
				return false
			}
		}
		return true
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1.0")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := range parts {
		if parts[0] != "users" || i != 1 { // user refs may be UPNs; everything else is an id
			parts[i] = strings.ToLower(parts[i])
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expirePIM()
	switch {
	case len(parts) >= 4 && parts[0] == "identitygovernance" && parts[1] == "privilegedaccess" && parts[2] == "group":
		s.pimHandle(w, r, parts, body, need)
	case len(parts) >= 3 && parts[0] == "identitygovernance" && parts[1] == "entitlementmanagement":
		s.entitlementHandle(w, r, parts, need)
	case r.Method == "GET" && len(parts) == 2 && parts[0] == "policies" && parts[1] == "rolemanagementpolicyassignments":
		if need(pimPolicyRead) {
			s.pimPolicies(w, r)
		}
	case r.Method == "POST" && len(parts) == 4 && parts[0] == "groups" && parts[3] == "$ref" && (parts[2] == "members" || parts[2] == "owners"):
		g := s.groups[parts[1]]
		perms := [][]string{writeMember}
		if parts[2] == "owners" {
			perms = [][]string{writeOwner}
		}
		if g != nil && g.RoleAssignable {
			perms = append(perms, roleMgmt)
		}
		if need(perms...) && !s.refuseWrite(w, g, wids) {
			s.addRef(w, r, g, parts[1], parts[2], body)
		}
	case r.Method == "DELETE" && len(parts) == 5 && parts[0] == "groups" && parts[4] == "$ref" && (parts[2] == "members" || parts[2] == "owners"):
		g := s.groups[parts[1]]
		perms := [][]string{writeMember}
		if parts[2] == "owners" {
			perms = [][]string{writeOwner}
		}
		if g != nil && g.RoleAssignable {
			perms = append(perms, roleMgmt)
		}
		if need(perms...) && !s.refuseWrite(w, g, wids) {
			s.deleteRef(w, g, parts[1], parts[2], parts[3])
		}
	case r.Method == "GET" && len(parts) == 2 && parts[0] == "users":
		if !need(readUsers) {
			return
		}
		if strings.HasPrefix(parts[1], "$") {
			// A UPN that starts with $ must be addressed as /users('$…') (user-get: "If your
			// userPrincipalName begins with a $ character, remove the slash (/) after /users
			// and enclose the userPrincipalName in parentheses and single quotes").
			s.graphError(w, 400, "Request_BadRequest", "Invalid object identifier '"+parts[1]+"'.")
			return
		}
		if u := s.findUser(parts[1]); u != nil {
			writeJSON(w, userJSON(u))
			return
		}
		if !guidShaped(parts[1]) && strings.Count(parts[1], "@") != 1 {
			s.graphError(w, 400, "Request_BadRequest", "Invalid object identifier '"+parts[1]+"'.")
			return
		}
		s.graphError(w, 404, "Request_ResourceNotFound", notFoundMsg(parts[1]))
	case r.Method == "GET" && len(parts) == 1 && parts[0] == "users":
		if !need(readUsers) {
			return
		}
		field, value, ok := s.userFilter(w, r)
		if !ok {
			return
		}
		out := []any{}
		for _, u := range s.sortedUsers() {
			// Graph compares strings in $filter without regard to case.
			match := false
			switch field {
			case "mail":
				match = strings.EqualFold(u.Mail, value)
			case "userPrincipalName":
				match = strings.EqualFold(u.UPN, value)
			case "proxyAddresses":
				match = slices.ContainsFunc(u.ProxyAddresses, func(p string) bool { return strings.EqualFold(p, value) })
			}
			if match {
				out = append(out, userJSON(u))
			}
		}
		writeJSON(w, map[string]any{"@odata.context": s.BaseURL() + "/$metadata#users", "value": out})
	case r.Method == "GET" && len(parts) == 1 && parts[0] == "groups":
		if !need(readGroups) {
			return
		}
		mail, ok := s.filterValue(w, r, "mail")
		if !ok {
			return
		}
		out := []any{}
		for _, g := range s.groups {
			if strings.EqualFold(g.Mail, mail) {
				out = append(out, map[string]any{"@odata.type": "#microsoft.graph.group", "id": g.ID})
			}
		}
		writeJSON(w, map[string]any{"value": out})
	case r.Method == "GET" && len(parts) == 2 && parts[0] == "groups":
		if !need(readGroups) {
			return
		}
		g := s.groups[parts[1]]
		if g == nil {
			s.graphError(w, 404, "Request_ResourceNotFound", notFoundMsg(parts[1]))
			return
		}
		writeJSON(w, groupJSON(g))
	case r.Method == "GET" && len(parts) == 5 && parts[0] == "groups" && (parts[2] == "members" || parts[2] == "owners") && parts[4] == "graph.user":
		if !need(readGroups) {
			return
		}
		g := s.groups[parts[1]]
		if g == nil {
			s.graphError(w, 404, "Request_ResourceNotFound", notFoundMsg(parts[1]))
			return
		}
		set := g.Members
		if parts[2] == "owners" {
			set = g.Owners
		}
		u := s.users[parts[3]]
		if !set[parts[3]] || u == nil || s.lagging(parts[1], parts[2], parts[3]) {
			s.graphError(w, 404, "Request_ResourceNotFound", notFoundMsg(parts[3]))
			return
		}
		writeJSON(w, userJSON(u))
	case r.Method == "GET" && len(parts) == 3 && parts[0] == "groups" && (parts[2] == "members" || parts[2] == "owners"):
		if need(readGroups) {
			s.list(w, r, parts[1], parts[2])
		}
	case r.Method == "POST" && len(parts) == 3 && parts[0] == "users" && parts[2] == "checkmembergroups":
		if need(readUsers, readGroups) {
			s.checkMemberGroups(w, parts[1], body)
		}
	default:
		s.violate("%s %s: no such Graph call", r.Method, r.URL.Path)
		s.graphError(w, 400, "BadRequest", "Resource not found for the segment '"+path+"'.")
	}
}

func (s *Server) faultAnswer(w http.ResponseWriter, status int, after string) {
	if after != "" {
		w.Header().Set("Retry-After", after)
	}
	switch status {
	case 429:
		s.graphError(w, 429, "TooManyRequests", "Too many requests. Please retry after the time in the Retry-After header.")
	case 403:
		s.graphError(w, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
	case 503:
		s.graphError(w, 503, "serviceNotAvailable", "Service unavailable. Please retry after the time in the Retry-After header.")
	case 504:
		s.graphError(w, 504, "GatewayTimeout", "The gateway timed out.")
	default:
		s.graphError(w, status, "UnknownError", "An internal server error occurred.")
	}
}

// groupJSON is a group as GET /groups/{id} answers it. Kinds (groups-overview): Microsoft 365
// groups are groupTypes ["Unified"], mailEnabled true; security groups groupTypes [],
// mailEnabled false, securityEnabled true; mail-enabled security groups mailEnabled true,
// securityEnabled true; distribution lists mailEnabled true, securityEnabled false.
func groupJSON(g *Group) map[string]any {
	types := []string{}
	if g.Unified {
		types = append(types, "Unified")
	}
	var rule any
	if g.Dynamic {
		types = append(types, "DynamicMembership")
		rule = g.MembershipRule
		if g.MembershipRule == "" {
			rule = `user.department -eq "Engineering"`
		}
	}
	var synced any // Graph: null for a group never synced from on-premises
	if g.Synced {
		synced = true
	}
	return map[string]any{"id": g.ID, "displayName": g.Name, "mail": nullable(g.Mail), "isAssignableToRole": g.RoleAssignable,
		"groupTypes": types, "onPremisesSyncEnabled": synced, "membershipRule": rule,
		"mailEnabled": g.Unified || g.MailEnabled || g.Distribution, "securityEnabled": !g.Distribution,
		"isManagementRestricted": g.Restricted}
}

// refuseWrite answers as Graph does a change of members or owners of a group that an app may
// not change, and reports whether it did. The rules, from Microsoft's documentation:
//   - Mail-enabled security groups and distribution lists are read-only through Graph
//     ("Working with groups in Microsoft Graph", learn.microsoft.com/graph/api/resources/groups-overview:
//     "Mail-enabled security groups ... No; read-only through Microsoft Graph"); Graph answers
//     400 "Cannot Update a mail-enabled security groups and or distribution list."
//   - Groups synced from on-premises are mastered there (group resource, onPremisesSyncEnabled;
//     learn.microsoft.com/entra/identity/hybrid/connect/how-to-connect-sync-whatis): 400
//     "Unable to update the specified properties for on-premises mastered Directory Sync objects
//     or objects currently undergoing migration."
//   - Dynamic groups have no assignable members: the rule decides ("Manage rules for dynamic
//     membership groups", learn.microsoft.com/entra/identity/users/groups-dynamic-membership);
//     Graph answers 403 Authorization_RequestDenied.
//   - A group in a restricted management administrative unit can be changed only by a
//     principal holding a role assigned at the scope of that unit, whatever its tenant-wide
//     permissions ("Restricted management administrative units in Microsoft Entra ID",
//     learn.microsoft.com/entra/identity/role-based-access-control/admin-units-restricted-management):
//     403 Authorization_RequestDenied.
//
// The tests' all-powerful token (Token, or no Token set) is refused like any app: these are
// not permissions an admin can consent to.
func (s *Server) refuseWrite(w http.ResponseWriter, g *Group, wids []string) bool {
	if g == nil {
		return false
	}
	switch {
	case g.Synced:
		s.graphError(w, 400, "Request_BadRequest", "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.")
	case g.Distribution || (g.MailEnabled && !g.Unified):
		s.graphError(w, 400, "Request_BadRequest", "Cannot Update a mail-enabled security groups and or distribution list.")
	case g.Dynamic:
		s.graphError(w, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
	case g.Restricted && !slices.ContainsFunc(wids, func(id string) bool {
		return strings.EqualFold(id, RoleGroupsAdministrator) || strings.EqualFold(id, RoleUserAdministrator)
	}):
		s.graphError(w, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
	default:
		return false
	}
	return true
}

func userJSON(u *User) map[string]any {
	return map[string]any{"@odata.type": "#microsoft.graph.user", "id": u.ID, "mail": nullable(u.Mail),
		"userPrincipalName": u.UPN, "displayName": u.Name, "accountEnabled": !u.Disabled}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Server) sortedUsers() []*User {
	out := make([]*User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// filterValue reads `$filter=<field> eq '<value>'`; anything else is a 400, as Graph answers
// a filter it does not support.
func (s *Server) filterValue(w http.ResponseWriter, r *http.Request, field string) (string, bool) {
	f := r.URL.Query().Get("$filter")
	v, ok := strings.CutPrefix(f, field+" eq '")
	if ok {
		v, ok = strings.CutSuffix(v, "'")
	}
	if !ok || strings.Contains(strings.ReplaceAll(v, "''", ""), "'") {
		s.graphError(w, 400, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified for property '"+field+"'.")
		return "", false
	}
	return strings.ReplaceAll(v, "''", "'"), true
}

// userFilter reads the user lookups pimbot makes: `mail eq '…'`, `userPrincipalName eq '…'`
// and `proxyAddresses/any(p:p eq '…')` (a lambda on a multi-valued property, which Graph
// supports without advanced query parameters). Anything else is a 400, as Graph answers a
// filter it does not support.
func (s *Server) userFilter(w http.ResponseWriter, r *http.Request) (field, value string, ok bool) {
	f := r.URL.Query().Get("$filter")
	if rest, isAny := strings.CutPrefix(f, "proxyAddresses/any("); isAny {
		v, _, found := strings.Cut(rest, ":")
		if found && v != "" {
			lit, ok := strings.CutPrefix(strings.TrimPrefix(rest, v+":"), v+" eq '")
			if ok {
				lit, ok = strings.CutSuffix(lit, "')")
			}
			if ok && !strings.Contains(strings.ReplaceAll(lit, "''", ""), "'") {
				return "proxyAddresses", strings.ReplaceAll(lit, "''", "'"), true
			}
		}
		s.graphError(w, 400, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified for property 'proxyAddresses'.")
		return "", "", false
	}
	if strings.HasPrefix(f, "userPrincipalName ") {
		v, ok := s.filterValue(w, r, "userPrincipalName")
		return "userPrincipalName", v, ok
	}
	v, ok := s.filterValue(w, r, "mail")
	return "mail", v, ok
}

func (s *Server) findUser(ref string) *User {
	ref = strings.ToLower(ref)
	if u := s.users[ref]; u != nil {
		return u
	}
	for _, u := range s.users {
		if strings.EqualFold(u.UPN, ref) {
			return u
		}
	}
	return nil
}

func (s *Server) addRef(w http.ResponseWriter, r *http.Request, g *Group, groupID, rel string, raw []byte) {
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		s.violate("POST %s: $ref body is not JSON: %.60q", r.URL.Path, raw)
		s.graphError(w, 400, "BadRequest", "Invalid request body: "+err.Error())
		return
	}
	ref, _ := body["@odata.id"].(string)
	i := strings.LastIndex(ref, "/directoryObjects/")
	if len(body) != 1 || i < 0 || !strings.HasPrefix(ref, "http") {
		s.violate("POST %s: $ref body must be {\"@odata.id\": \"<graph>/directoryObjects/{id}\"}, got %.100s", r.URL.Path, raw)
		s.graphError(w, 400, "Request_BadRequest", "Invalid object identifier '"+ref+"'.")
		return
	}
	uid := strings.ToLower(ref[i+len("/directoryObjects/"):])
	if g == nil {
		s.graphError(w, 404, "Request_ResourceNotFound", notFoundMsg(groupID))
		return
	}
	if s.users[uid] == nil {
		s.graphError(w, 404, "Request_ResourceNotFound", notFoundMsg(uid))
		return
	}
	set := g.Members
	if rel == "owners" {
		set = g.Owners
	}
	if set[uid] {
		s.graphError(w, 400, "Request_BadRequest", "One or more added object references already exist for the following modified properties: '"+rel+"'.")
		return
	}
	set[uid] = true
	s.addedAt[groupID+"|"+rel+"|"+uid] = time.Now()
	w.WriteHeader(204)
}

func (s *Server) deleteRef(w http.ResponseWriter, g *Group, groupID, rel, uid string) {
	if g == nil {
		s.graphError(w, 404, "Request_ResourceNotFound", notFoundMsg(groupID))
		return
	}
	set := g.Members
	if rel == "owners" {
		set = g.Owners
	}
	if !set[uid] || s.lagging(groupID, rel, uid) {
		// Graph's answer for a non-holder, and a lagging replica's for a fresh holder.
		s.graphError(w, 404, "Request_ResourceNotFound", notFoundMsg(groupID))
		return
	}
	// Graph counts every owner here, service principals included.
	if rel == "owners" && len(g.Owners) == 1 {
		s.graphError(w, 400, "Request_BadRequest", "The group must have at least one owner, hence this owner cannot be removed.")
		return
	}
	delete(set, uid)
	w.WriteHeader(204)
}

// list answers a page of members or owners, with @odata.nextLink while more remain.
func (s *Server) list(w http.ResponseWriter, r *http.Request, groupID, rel string) {
	g := s.groups[groupID]
	if g == nil {
		s.graphError(w, 404, "Request_ResourceNotFound", notFoundMsg(groupID))
		return
	}
	set := g.Members
	if rel == "owners" {
		set = g.Owners
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	q := r.URL.Query()
	size := s.PageSize
	if t, err := strconv.Atoi(q.Get("$top")); err == nil && t > 0 {
		size = t
	}
	size = max(min(size, s.MaxPage), 1)
	skip, _ := strconv.Atoi(q.Get("$skiptoken"))
	out := []any{}
	end := min(skip+size, len(ids))
	for _, id := range ids[min(skip, len(ids)):end] {
		if u := s.users[id]; u != nil {
			out = append(out, userJSON(u))
		} else if ng := s.groups[id]; ng != nil {
			out = append(out, map[string]any{"@odata.type": "#microsoft.graph.group", "id": ng.ID, "displayName": ng.Name})
		} else {
			// Owners may be service principals (an app that owns the group).
			out = append(out, map[string]any{"@odata.type": "#microsoft.graph.servicePrincipal", "id": id, "displayName": "app " + id})
		}
	}
	resp := map[string]any{"@odata.context": s.BaseURL() + "/$metadata#directoryObjects", "value": out}
	if end < len(ids) {
		next := *r.URL
		nq := next.Query()
		nq.Set("$skiptoken", strconv.Itoa(end))
		nq.Set("$top", strconv.Itoa(size))
		next.RawQuery = nq.Encode()
		resp["@odata.nextLink"] = s.URL + next.RequestURI()
	}
	writeJSON(w, resp)
}

func (s *Server) checkMemberGroups(w http.ResponseWriter, userID string, raw []byte) {
	var body struct {
		GroupIDs []string `json:"groupIds"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || len(body.GroupIDs) == 0 || len(body.GroupIDs) > 20 {
		s.graphError(w, 400, "Request_BadRequest", "Invalid value for 'groupIds': between 1 and 20 group ids are allowed.")
		return
	}
	u := s.findUser(userID)
	if u == nil {
		s.graphError(w, 404, "Request_ResourceNotFound", notFoundMsg(userID))
		return
	}
	// An id that names no group refuses the whole call. [UNVERIFIED] Graph's documentation
	// does not say what checkMemberGroups answers for such an id; the fake takes the unkind
	// reading (the 400 Graph gives an object id it cannot use), so that pimbot is tested
	// against one bad id spoiling a batch of 20.
	for _, gid := range body.GroupIDs {
		if s.groups[strings.ToLower(gid)] == nil {
			s.graphError(w, 400, "Request_BadRequest", "Invalid object identifier '"+gid+"'.")
			return
		}
	}
	out := []string{}
	for _, gid := range body.GroupIDs {
		if s.inGroup(u.ID, strings.ToLower(gid), map[string]bool{}) {
			out = append(out, gid)
		}
	}
	writeJSON(w, map[string]any{"@odata.context": s.BaseURL() + "/$metadata#Collection(Edm.String)", "value": out})
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

package graphfake

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Entitlement management access packages, as Graph answers them (read-only in the fake; tests
// set them with PutAccessPackage and AssignAccessPackage):
//   - GET /identityGovernance/entitlementManagement/assignments?$filter=target/objectId eq '…'
//     and state eq 'delivered'&$expand=accessPackage: accessPackageAssignment objects (id, state,
//     status, and the expanded accessPackage)
//     (https://learn.microsoft.com/graph/api/entitlementmanagement-list-assignments). The fake
//     filters on target/objectId, state and accessPackage/id (enum values without regard to
//     case: the reference writes both 'Delivered' and "delivered").
//   - GET /identityGovernance/entitlementManagement/accessPackages/{id}?$expand=resourceRoleScopes($expand=role,scope):
//     the access package with its resource role scopes; for a group the role is originSystem
//     AadGroup, originId "Member_<group id>" or "Owner_<group id>", and the scope's originId is
//     the group id (https://learn.microsoft.com/graph/api/accesspackage-list-resourcerolescopes,
//     https://learn.microsoft.com/graph/api/accesspackage-post-resourcerolescopes).
//   - Application permission: EntitlementManagement.Read.All (or its ReadWrite); without it 403.
//   - A delivered assignment gives its user the membership (or ownership) of each group of the
//     package, as Entra does; one set to expired takes it away.

var entitlementRead = []string{"EntitlementManagement.Read.All", "EntitlementManagement.ReadWrite.All"}

// AccessPackageRole is one group role an access package delivers.
type AccessPackageRole struct {
	GroupID string
	Owner   bool // Owner_<group id>; false: Member_<group id>
}

// AccessPackage is an access package of the fake tenant.
type AccessPackage struct {
	ID, Name string
	Roles    []AccessPackageRole
}

// AccessPackageAssignment is an access package assignment of the fake tenant.
type AccessPackageAssignment struct {
	ID, PackageID, UserID string
	State                 string // delivering, partiallyDelivered, delivered, expired, deliveryFailed
}

type entitlementState struct {
	packages    map[string]*AccessPackage           // id
	assignments map[string]*AccessPackageAssignment // package|user
}

// PutAccessPackage adds (or replaces) an access package.
func (s *Server) PutAccessPackage(p AccessPackage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ent.packages == nil {
		s.ent.packages = map[string]*AccessPackage{}
		s.ent.assignments = map[string]*AccessPackageAssignment{}
	}
	p.ID = strings.ToLower(p.ID)
	p.Roles = append([]AccessPackageRole(nil), p.Roles...)
	s.ent.packages[p.ID] = &p
}

// AssignAccessPackage sets the user's assignment of an access package to state ("" is
// delivered) and returns its id. Delivered applies the package's group roles to the user;
// expired removes them.
func (s *Server) AssignAccessPackage(packageID, userID, state string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	pid, uid := strings.ToLower(packageID), strings.ToLower(userID)
	p := s.ent.packages[pid]
	if p == nil {
		panic("graphfake: AssignAccessPackage of an unknown access package " + packageID)
	}
	if state == "" {
		state = "delivered"
	}
	a := s.ent.assignments[pid+"|"+uid]
	if a == nil {
		a = &AccessPackageAssignment{ID: fmt.Sprintf("%08d-0000-4000-a000-%012d", s.seq.Add(1), s.seq.Load()), PackageID: pid, UserID: uid}
		s.ent.assignments[pid+"|"+uid] = a
	}
	a.State = state
	for _, r := range p.Roles {
		g := s.groups[strings.ToLower(r.GroupID)]
		if g == nil {
			continue
		}
		set := g.Members
		if r.Owner {
			set = g.Owners
		}
		switch state {
		case "delivered":
			set[uid] = true
		case "expired":
			delete(set, uid)
		}
	}
	return a.ID
}

var entFilterRe = regexp.MustCompile(`(?i)(target/objectId|state|accessPackage/id)\s+eq\s+'([^']*)'`)

// entitlementHandle (under s.mu) answers /identityGovernance/entitlementManagement/….
func (s *Server) entitlementHandle(w http.ResponseWriter, r *http.Request, parts []string, need func(...[]string) bool) {
	switch {
	case r.Method == "GET" && len(parts) == 3 && parts[2] == "assignments":
		if need(entitlementRead) {
			s.entAssignments(w, r)
		}
	case r.Method == "GET" && len(parts) == 4 && parts[2] == "accesspackages":
		if need(entitlementRead) {
			s.entPackage(w, r, parts[3])
		}
	default:
		s.violations = append(s.violations, fmt.Sprintf("%s %s: no such entitlement management call in the fake", r.Method, r.URL.Path))
		s.graphError(w, 400, "BadRequest", "Resource not found for the segment '"+r.URL.Path+"'.")
	}
}

func (s *Server) entAssignments(w http.ResponseWriter, r *http.Request) {
	filter := r.URL.Query().Get("$filter")
	want := map[string]string{}
	for _, m := range entFilterRe.FindAllStringSubmatch(filter, -1) {
		want[strings.ToLower(m[1])] = strings.ToLower(m[2])
	}
	if filter != "" && len(want) == 0 {
		s.violations = append(s.violations, fmt.Sprintf("GET %s: a $filter the fake cannot read: %q", r.URL.Path, filter))
		s.graphError(w, 400, "BadRequest", "Invalid filter clause.")
		return
	}
	expand := strings.ToLower(strings.ReplaceAll(r.URL.Query().Get("$expand"), " ", ""))
	out := []map[string]any{}
	for _, a := range s.ent.assignments {
		if (want["target/objectid"] != "" && a.UserID != want["target/objectid"]) || (want["state"] != "" && strings.ToLower(a.State) != want["state"]) ||
			(want["accesspackage/id"] != "" && a.PackageID != want["accesspackage/id"]) {
			continue
		}
		status := map[string]string{"delivered": "Delivered", "delivering": "Delivering", "expired": "Expired", "deliveryfailed": "DeliveryFailed",
			"partiallydelivered": "PartiallyDelivered"}[strings.ToLower(a.State)]
		js := map[string]any{"id": a.ID, "state": a.State, "status": status, "expiredDateTime": nil,
			"schedule": map[string]any{"@odata.type": "microsoft.graph.entitlementManagementSchedule", "startDateTime": time.Unix(0, 0).UTC().Format(time.RFC3339)}}
		if strings.Contains(expand, "accesspackage") {
			p := s.ent.packages[a.PackageID]
			js["accessPackage"] = map[string]any{"id": p.ID, "displayName": p.Name, "description": p.Name, "isHidden": false}
		}
		if strings.Contains(expand, "target") {
			js["target"] = map[string]any{"objectId": a.UserID, "subjectType": "user"}
		}
		out = append(out, js)
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["id"].(string) < out[j]["id"].(string) })
	writeJSON(w, map[string]any{"value": out})
}

func (s *Server) entPackage(w http.ResponseWriter, r *http.Request, id string) {
	p := s.ent.packages[id]
	if p == nil {
		s.graphError(w, 404, "ResourceNotFound", notFoundMsg(id))
		return
	}
	js := map[string]any{"id": p.ID, "displayName": p.Name, "description": p.Name, "isHidden": false}
	expand := strings.ToLower(strings.ReplaceAll(r.URL.Query().Get("$expand"), " ", ""))
	if strings.HasPrefix(expand, "resourcerolescopes") {
		nested := strings.TrimPrefix(expand, "resourcerolescopes")
		scopes := []map[string]any{}
		for i, ro := range p.Roles {
			gid := strings.ToLower(ro.GroupID)
			name := "Member"
			if ro.Owner {
				name = "Owner"
			}
			roleID := fmt.Sprintf("%08x-0000-4000-b000-%012d", i+1, len(gid))
			scopeID := fmt.Sprintf("%08x-0000-4000-c000-%012d", i+1, len(gid))
			rs := map[string]any{"id": roleID + "_" + scopeID, "createdDateTime": "2024-01-01T00:00:00Z"}
			if strings.Contains(nested, "role") {
				rs["role"] = map[string]any{"id": roleID, "displayName": name, "description": nil, "originSystem": "AadGroup", "originId": name + "_" + gid}
			}
			if strings.Contains(nested, "scope") {
				rs["scope"] = map[string]any{"id": scopeID, "displayName": "Root", "description": "Root Scope", "originId": gid, "originSystem": "AadGroup", "isRootScope": true}
			}
			scopes = append(scopes, rs)
		}
		js["resourceRoleScopes"] = scopes
	}
	writeJSON(w, js)
}

package graphfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PIM for Groups, as Graph answers it:
//   - POST /identityGovernance/privilegedAccess/group/assignmentScheduleRequests with action
//     adminAssign, adminExtend, adminUpdate or adminRemove, accessId member|owner, principalId,
//     groupId, justification and scheduleInfo {startDateTime, expiration {type: afterDateTime,
//     endDateTime | afterDuration, duration}}: 201 with the request and its status (Provisioned,
//     PendingProvisioning, Granted for a future start, Revoked for a removal)
//     (https://learn.microsoft.com/graph/api/privilegedaccessgroup-post-assignmentschedulerequests).
//   - GET …/assignmentScheduleInstances?$filter=groupId eq '…' and principalId eq '…': the active
//     assignments; the $filter is required ("This method requires the $filter (eq) query
//     parameter to scope the request to a principalId or a groupId").
//   - Entra's rules: an assignment shorter than 5 minutes, and a removal within 5 minutes of the
//     assignment, answer 400 ActiveDurationTooShort ("The Active duration is too short. Miniumum
//     Required is 5 minutes.", Graph's spelling) (groups-assign-member-owner: "Can't be assigned
//     for a duration of less than five minutes; can't be removed within five minutes of it being
//     assigned"); assigning what is assigned answers 400 RoleAssignmentExists, removing or
//     extending what is not 400 RoleAssignmentDoesNotExist, an unknown principal 400
//     SubjectNotFound (as PIM clients report them). Dynamic and on-premises synced groups
//     "cannot be managed in PIM for Groups" (groups-discover-groups); the fake answers 400
//     InvalidResource for them [UNVERIFIED code], and 403 for a restricted administrative unit.
//   - The membership (or ownership) is applied when the assignment starts and removed at its
//     expiration by Entra itself, whoever else is running: the fake does that on every request
//     it answers, on Holds and ExpireDue, and with a real timer for the real clock.
//   - The first request for a group onboards it into PIM (Onboarded), which cannot be undone.

// PIM permissions: assignments need PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup.
var (
	pimWrite = []string{"PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup"}
	pimRead  = []string{"PrivilegedAssignmentSchedule.Read.AzureADGroup", "PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup"}
)

// PIMMinimum is PIM's shortest assignment, and how long an assignment must stay before it
// can be removed.
const PIMMinimum = 5 * time.Minute

// Assignment is an active (or scheduled) PIM for Groups assignment of the fake tenant.
type Assignment struct {
	ID, GroupID, PrincipalID, AccessID string
	Start, End                         time.Time // End zero: no expiration
	Created                            time.Time
	Justification                      string
	provisioned                        bool // the membership was applied
}

type pimState struct {
	now          func() time.Time
	assignments  map[string]*Assignment // group|access|principal
	onboarded    map[string]bool
	requests     []map[string]any // every schedule request body, as sent
	provisioning time.Duration
	policies     map[string]PIMPolicy // group|access (pimpolicy.go)
}

// SetClock makes the fake's PIM clock f (tests move it); nil is the wall clock.
func (s *Server) SetClock(f func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pim.now = f
}

// SetProvisioning makes a new assignment answer PendingProvisioning and reach the membership
// only d after it was made (0, the default: Provisioned at once).
func (s *Server) SetProvisioning(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pim.provisioning = d
}

func (s *Server) clock() time.Time {
	if s.pim.now != nil {
		return s.pim.now()
	}
	return time.Now()
}

// ExpireDue applies what Entra does on its own at the fake's clock's time: starts scheduled
// assignments and ends expired ones (removing the membership or ownership).
func (s *Server) ExpireDue() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expirePIM()
}

// Assignments lists the PIM assignments (active or scheduled) of a group.
func (s *Server) Assignments(groupID string) []Assignment {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expirePIM()
	var out []Assignment
	for _, a := range s.pim.assignments {
		if a.GroupID == strings.ToLower(groupID) {
			out = append(out, *a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PrincipalID+out[i].AccessID < out[j].PrincipalID+out[j].AccessID })
	return out
}

// Onboarded reports whether a group was brought under PIM management (by its first request).
func (s *Server) Onboarded(groupID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pim.onboarded[strings.ToLower(groupID)]
}

// PIMRequests returns the bodies of the assignment schedule requests received so far.
func (s *Server) PIMRequests() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.pim.requests...)
}

// expirePIM (under s.mu) provisions started assignments and removes expired ones.
func (s *Server) expirePIM() {
	now := s.clock()
	for k, a := range s.pim.assignments {
		g := s.groups[a.GroupID]
		set := map[string]bool{}
		if g != nil {
			set = g.Members
			if a.AccessID == "owner" {
				set = g.Owners
			}
		}
		switch {
		case !a.End.IsZero() && !now.Before(a.End):
			delete(set, a.PrincipalID)
			delete(s.pim.assignments, k)
		case !a.provisioned && !now.Before(a.Start.Add(s.pim.provisioning)):
			set[a.PrincipalID] = true
			a.provisioned = true
		}
	}
}

// wake sweeps again at t on the wall clock (for the real clock; a test clock uses ExpireDue).
func (s *Server) wake(t time.Time) {
	if s.pim.now != nil {
		return
	}
	time.AfterFunc(time.Until(t)+time.Millisecond, s.ExpireDue)
}

var pimFilterRe = regexp.MustCompile(`(?i)(groupId|principalId|accessId)\s+eq\s+'([^']*)'`)

func (s *Server) pimHandle(w http.ResponseWriter, r *http.Request, parts []string, body []byte, need func(...[]string) bool) {
	switch {
	case r.Method == "POST" && len(parts) == 4 && parts[3] == "assignmentschedulerequests":
		if need(pimWrite) {
			s.pimRequest(w, r, body)
		}
	case r.Method == "GET" && len(parts) == 4 && parts[3] == "assignmentscheduleinstances":
		if need(pimRead) {
			s.pimInstances(w, r)
		}
	default:
		s.violations = append(s.violations, fmt.Sprintf("%s %s: no such PIM for Groups call in the fake", r.Method, r.URL.Path))
		s.graphError(w, 400, "BadRequest", "Resource not found for the segment '"+r.URL.Path+"'.")
	}
}

func tooShort(s *Server, w http.ResponseWriter) {
	s.graphError(w, 400, "ActiveDurationTooShort", "The Active duration is too short. Miniumum Required is 5 minutes.")
}

func (s *Server) pimRequest(w http.ResponseWriter, r *http.Request, raw []byte) {
	var req struct {
		AccessID      string `json:"accessId"`
		Action        string `json:"action"`
		GroupID       string `json:"groupId"`
		PrincipalID   string `json:"principalId"`
		Justification string `json:"justification"`
		ScheduleInfo  *struct {
			StartDateTime string `json:"startDateTime"`
			Expiration    *struct {
				Type        string `json:"type"`
				EndDateTime string `json:"endDateTime"`
				Duration    string `json:"duration"`
			} `json:"expiration"`
		} `json:"scheduleInfo"`
	}
	var asMap map[string]any
	if err := json.Unmarshal(raw, &req); err != nil || json.Unmarshal(raw, &asMap) != nil {
		s.violations = append(s.violations, fmt.Sprintf("POST %s: body is not JSON: %.60q", r.URL.Path, raw))
		s.graphError(w, 400, "BadRequest", "Invalid request body.")
		return
	}
	s.pim.requests = append(s.pim.requests, asMap)
	now := s.clock()
	gid, uid := strings.ToLower(req.GroupID), strings.ToLower(req.PrincipalID)
	if req.AccessID != "member" && req.AccessID != "owner" {
		s.graphError(w, 400, "InvalidRequest", "accessId must be member or owner.")
		return
	}
	g := s.groups[gid]
	switch {
	case g == nil:
		s.graphError(w, 404, "ResourceNotFound", notFoundMsg(gid))
		return
	case g.Dynamic || g.Synced:
		s.graphError(w, 400, "InvalidResource", "Dynamic groups and groups synchronized from on-premises cannot be managed in PIM for Groups.")
		return
	case g.Restricted:
		s.graphError(w, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return
	case s.users[uid] == nil:
		s.graphError(w, 400, "SubjectNotFound", "The subject is not found.")
		return
	}
	if s.pim.onboarded == nil {
		s.pim.onboarded = map[string]bool{}
		s.pim.assignments = map[string]*Assignment{}
	}
	s.pim.onboarded[gid] = true // onboarding is automatic on the first request, and final
	key := gid + "|" + req.AccessID + "|" + uid
	cur := s.pim.assignments[key]
	start, end := now, time.Time{}
	if si := req.ScheduleInfo; si != nil {
		if si.StartDateTime != "" {
			t, err := time.Parse(time.RFC3339Nano, si.StartDateTime)
			if err != nil {
				s.graphError(w, 400, "InvalidScheduleRequest", "startDateTime is not a date and time.")
				return
			}
			start = t
		}
		if ex := si.Expiration; ex != nil {
			switch strings.ToLower(ex.Type) {
			case "afterdatetime":
				t, err := time.Parse(time.RFC3339Nano, ex.EndDateTime)
				if err != nil {
					s.graphError(w, 400, "InvalidScheduleRequest", "endDateTime is not a date and time.")
					return
				}
				end = t
			case "afterduration":
				d, ok := isoDuration(ex.Duration)
				if !ok {
					s.graphError(w, 400, "InvalidScheduleRequest", "duration is not an ISO 8601 duration.")
					return
				}
				end = start.Add(d)
			case "noexpiration", "":
			default:
				s.graphError(w, 400, "InvalidScheduleRequest", "Unknown expiration type.")
				return
			}
		}
	}
	status := "Provisioned"
	switch req.Action {
	case "adminAssign":
		if cur != nil {
			s.graphError(w, 400, "RoleAssignmentExists", "The Role assignment already exists.")
			return
		}
		if !end.IsZero() && end.Sub(start) < PIMMinimum {
			tooShort(s, w)
			return
		}
		if rule := s.policyRefusal(gid, req.AccessID, start, end, req.Justification); rule != "" {
			policyFailed(s, w, rule)
			return
		}
		a := &Assignment{ID: fmt.Sprintf("%s_%s_%d", gid, req.AccessID, s.seq.Add(1)), GroupID: gid, PrincipalID: uid, AccessID: req.AccessID,
			Start: start, End: end, Created: now, Justification: req.Justification}
		s.pim.assignments[key] = a
		s.expirePIM()
		switch {
		case start.After(now):
			status = "Granted"
		case !a.provisioned:
			status = "PendingProvisioning"
		}
		if !end.IsZero() {
			s.wake(end)
		}
		if !a.provisioned {
			s.wake(start.Add(s.pim.provisioning))
		}
	case "adminExtend", "adminUpdate":
		if cur == nil {
			s.graphError(w, 400, "RoleAssignmentDoesNotExist", "The Role assignment does not exist.")
			return
		}
		if !end.IsZero() && end.Sub(cur.Start) < PIMMinimum {
			tooShort(s, w)
			return
		}
		if rule := s.policyRefusal(gid, req.AccessID, cur.Start, end, req.Justification); rule != "" {
			policyFailed(s, w, rule)
			return
		}
		cur.End = end
		if !end.IsZero() {
			s.wake(end)
		}
	case "adminRemove":
		if cur == nil {
			s.graphError(w, 400, "RoleAssignmentDoesNotExist", "The Role assignment does not exist.")
			return
		}
		if now.Sub(cur.Created) < PIMMinimum {
			tooShort(s, w)
			return
		}
		cur.End = now
		s.expirePIM()
		status = "Revoked"
	default:
		s.graphError(w, 400, "InvalidRequest", "The action "+strconv.Quote(req.Action)+" is not supported here.")
		return
	}
	resp := map[string]any{"id": fmt.Sprintf("%08d-0000-4000-8000-%012d", s.seq.Add(1), s.seq.Load()), "status": status,
		"action": req.Action, "accessId": req.AccessID, "groupId": gid, "principalId": uid, "justification": req.Justification,
		"createdDateTime": now.UTC().Format(time.RFC3339Nano), "isValidationOnly": false}
	if si, ok := asMap["scheduleInfo"]; ok {
		resp["scheduleInfo"] = si
	}
	if req.Action != "adminRemove" {
		resp["completedDateTime"] = now.UTC().Format(time.RFC3339Nano)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(201)
	json.NewEncoder(w).Encode(resp)
}

func (s *Server) pimInstances(w http.ResponseWriter, r *http.Request) {
	filter := r.URL.Query().Get("$filter")
	want := map[string]string{}
	for _, m := range pimFilterRe.FindAllStringSubmatch(filter, -1) {
		want[strings.ToLower(m[1])] = strings.ToLower(m[2])
	}
	if want["groupid"] == "" && want["principalid"] == "" {
		s.graphError(w, 400, "BadRequest", "The $filter must scope the request to a principalId or a groupId.")
		return
	}
	now := s.clock()
	var out []map[string]any
	for _, a := range s.pim.assignments {
		if (want["groupid"] != "" && a.GroupID != want["groupid"]) || (want["principalid"] != "" && a.PrincipalID != want["principalid"]) ||
			(want["accessid"] != "" && a.AccessID != want["accessid"]) || !a.provisioned || a.Start.After(now) {
			continue
		}
		in := map[string]any{"id": a.ID, "groupId": a.GroupID, "principalId": a.PrincipalID, "accessId": a.AccessID,
			"assignmentType": "assigned", "memberType": "direct", "assignmentScheduleId": a.ID,
			"startDateTime": a.Start.UTC().Format(time.RFC3339Nano), "endDateTime": nil}
		if !a.End.IsZero() {
			in["endDateTime"] = a.End.UTC().Format(time.RFC3339Nano)
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["id"].(string) < out[j]["id"].(string) })
	writeJSON(w, map[string]any{"value": out})
}

// isoDuration reads the ISO 8601 durations PIM uses (PT2H, PT1H30M, P1D, PT300S).
func isoDuration(s string) (time.Duration, bool) {
	m := regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$`).FindStringSubmatch(s)
	if m == nil || s == "P" || s == "PT" {
		return 0, false
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+1] != "" {
			n, _ := strconv.Atoi(m[i+1])
			d += time.Duration(n) * unit
		}
	}
	return d, true
}

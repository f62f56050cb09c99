package graphfake

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// PIM for Groups policies, as Graph answers them:
//   - GET /policies/roleManagementPolicyAssignments?$filter=scopeId eq '<group id>' and
//     scopeType eq 'Group'&$expand=policy($expand=rules): one unifiedRoleManagementPolicyAssignment
//     per access, roleDefinitionId "member" or "owner" ("For PIM for Groups membership and
//     ownership, it's either member or owner"), with its policy and the policy's rules
//     (https://learn.microsoft.com/graph/api/resources/unifiedrolemanagementpolicyassignment,
//     https://learn.microsoft.com/graph/api/policyroot-list-rolemanagementpolicyassignments).
//     Application permission: RoleManagementPolicy.Read.AzureADGroup (or its ReadWrite).
//   - Rules are told apart by "@odata.type" and their id, e.g. Expiration_Admin_Assignment
//     (#microsoft.graph.unifiedRoleManagementPolicyExpirationRule: isExpirationRequired,
//     maximumDuration as an ISO 8601 duration,
//     https://learn.microsoft.com/graph/api/resources/unifiedrolemanagementpolicyexpirationrule) and
//     Enablement_Admin_Assignment (#microsoft.graph.unifiedRoleManagementPolicyEnablementRule:
//     enabledRules, "For example, MultiFactorAuthentication, Ticketing, and Justification",
//     https://learn.microsoft.com/graph/api/resources/unifiedrolemanagementpolicyenablementrule).
//   - A group gets its policies when it is onboarded; the fake answers an empty list for a group
//     without SetPIMPolicy.
//   - The fake enforces the rules on adminAssign and adminExtend: 400
//     RoleAssignmentRequestPolicyValidationFailed "The following policy rules failed:
//     [\"ExpirationRule\"]" (or MfaRule, JustificationRule, TicketingRule) [UNVERIFIED: as PIM
//     clients report it, not from Microsoft's reference].

var pimPolicyRead = []string{"RoleManagementPolicy.Read.AzureADGroup", "RoleManagementPolicy.ReadWrite.AzureADGroup"}

// PIMPolicy is what a group's PIM policy says about active assignments made by an administrator
// (or an app) for one access: the rules Expiration_Admin_Assignment and Enablement_Admin_Assignment.
type PIMPolicy struct {
	ExpirationRequired bool          // isExpirationRequired: no permanent active assignment
	MaxDuration        time.Duration // maximumDuration of an active assignment; 0: not stated
	EnabledRules       []string      // Justification, MultiFactorAuthentication, Ticketing
}

// SetPIMPolicy sets the PIM policy of a group's access ("member" or "owner").
func (s *Server) SetPIMPolicy(groupID, access string, p PIMPolicy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pim.policies == nil {
		s.pim.policies = map[string]PIMPolicy{}
	}
	s.pim.policies[strings.ToLower(groupID)+"|"+access] = p
}

var policyFilterRe = regexp.MustCompile(`(?i)(scopeId|scopeType|roleDefinitionId)\s+eq\s+'([^']*)'`)

func (s *Server) pimPolicies(w http.ResponseWriter, r *http.Request) {
	want := map[string]string{}
	for _, m := range policyFilterRe.FindAllStringSubmatch(r.URL.Query().Get("$filter"), -1) {
		want[strings.ToLower(m[1])] = m[2]
	}
	if want["scopeid"] == "" || want["scopetype"] == "" {
		s.graphError(w, 400, "BadRequest", "The $filter must name a scopeId and a scopeType.")
		return
	}
	expand := strings.ReplaceAll(r.URL.Query().Get("$expand"), " ", "")
	out := []map[string]any{}
	gid := strings.ToLower(want["scopeid"])
	for _, access := range []string{"member", "owner"} {
		p, ok := s.pim.policies[gid+"|"+access]
		if !ok || want["scopetype"] != "Group" || (want["roledefinitionid"] != "" && want["roledefinitionid"] != access) {
			continue
		}
		policyID := fmt.Sprintf("Group_%s_%s", gid, access)
		a := map[string]any{"id": policyID + "_" + access, "policyId": policyID, "scopeId": gid, "scopeType": "Group", "roleDefinitionId": access}
		if strings.HasPrefix(expand, "policy") {
			pol := map[string]any{"id": policyID, "displayName": "Group", "isOrganizationDefault": false, "scopeId": gid, "scopeType": "Group"}
			if strings.Contains(expand, "rules") {
				pol["rules"] = policyRules(p)
			}
			a["policy"] = pol
		}
		out = append(out, a)
	}
	writeJSON(w, map[string]any{"value": out})
}

func ruleTarget(caller, level string) map[string]any {
	return map[string]any{"caller": caller, "operations": []string{"All"}, "level": level,
		"inheritableSettings": []string{}, "enforcedSettings": []string{}}
}

// policyRules is the rules of a policy as Graph lists them, the admin-assignment ones from p
// and a few others with PIM's defaults, so that a client must pick by id.
func policyRules(p PIMPolicy) []map[string]any {
	exp := map[string]any{"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyExpirationRule", "id": "Expiration_Admin_Assignment",
		"isExpirationRequired": p.ExpirationRequired, "maximumDuration": isoFormat(p.MaxDuration), "target": ruleTarget("Admin", "Assignment")}
	return []map[string]any{
		{"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyExpirationRule", "id": "Expiration_Admin_Eligibility",
			"isExpirationRequired": true, "maximumDuration": "P365D", "target": ruleTarget("Admin", "Eligibility")},
		{"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyEnablementRule", "id": "Enablement_EndUser_Assignment",
			"enabledRules": []string{"MultiFactorAuthentication", "Justification"}, "target": ruleTarget("EndUser", "Assignment")},
		exp,
		{"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyEnablementRule", "id": "Enablement_Admin_Assignment",
			"enabledRules": append([]string{}, p.EnabledRules...), "target": ruleTarget("Admin", "Assignment")},
	}
}

// isoFormat writes d as an ISO 8601 duration (P1D, PT8H, PT1H30M); 0 is PT0S.
func isoFormat(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("P%dD", d/(24*time.Hour))
	}
	out := "PT"
	if h := d / time.Hour; h > 0 {
		out += fmt.Sprintf("%dH", h)
	}
	if m := d % time.Hour / time.Minute; m > 0 {
		out += fmt.Sprintf("%dM", m)
	}
	if s := d % time.Minute / time.Second; s > 0 || out == "PT" {
		out += fmt.Sprintf("%dS", s)
	}
	return out
}

// policyRefusal (under s.mu) is the rule a new or extended assignment from start to end breaks
// in the group's policy, or "".
func (s *Server) policyRefusal(gid, access string, start, end time.Time, justification string) string {
	p, ok := s.pim.policies[gid+"|"+access]
	switch {
	case !ok:
		return ""
	case slices.Contains(p.EnabledRules, "MultiFactorAuthentication"):
		return "MfaRule" // an app has no MFA claim to show
	case slices.Contains(p.EnabledRules, "Justification") && strings.TrimSpace(justification) == "":
		return "JustificationRule"
	case slices.Contains(p.EnabledRules, "Ticketing"):
		return "TicketingRule" // pimbot sends no ticketInfo
	case p.ExpirationRequired && end.IsZero(), p.MaxDuration > 0 && !end.IsZero() && end.Sub(start) > p.MaxDuration:
		return "ExpirationRule"
	}
	return ""
}

func policyFailed(s *Server, w http.ResponseWriter, rule string) {
	s.graphError(w, 400, "RoleAssignmentRequestPolicyValidationFailed", `The following policy rules failed: ["`+rule+`"]`)
}

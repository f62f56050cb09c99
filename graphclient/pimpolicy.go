package graphclient

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/policies"
	"github.com/pimbot/pimbot/bot"
)

// A group's PIM for Groups policy, read for `pimbot check`. Microsoft's references:
//   - List roleManagementPolicyAssignments: GET /policies/roleManagementPolicyAssignments with
//     $filter=scopeId eq '<group id>' and scopeType eq 'Group' and $expand=policy($expand=rules);
//     for PIM for Groups the application permission is RoleManagementPolicy.Read.AzureADGroup (or
//     RoleManagementPolicy.ReadWrite.AzureADGroup)
//     (https://learn.microsoft.com/graph/api/policyroot-list-rolemanagementpolicyassignments).
//   - unifiedRoleManagementPolicyAssignment.roleDefinitionId: "For PIM for Groups membership and
//     ownership, it's either member or owner"; scopeType "One of Directory, DirectoryRole, Group"
//     (https://learn.microsoft.com/graph/api/resources/unifiedrolemanagementpolicyassignment).
//   - The rules that govern an active assignment made by an administrator (pimbot's app) carry the
//     ids Expiration_Admin_Assignment and Enablement_Admin_Assignment (the PIM rules mapping,
//     https://learn.microsoft.com/graph/identity-governance-pim-rules-overview):
//     unifiedRoleManagementPolicyExpirationRule: isExpirationRequired, maximumDuration ("The
//     maximum duration allowed for eligibility or assignment that isn't permanent")
//     (https://learn.microsoft.com/graph/api/resources/unifiedrolemanagementpolicyexpirationrule);
//     unifiedRoleManagementPolicyEnablementRule: enabledRules ("For example,
//     MultiFactorAuthentication, Ticketing, and Justification")
//     (https://learn.microsoft.com/graph/api/resources/unifiedrolemanagementpolicyenablementrule).

// PermPIMPolicyRead is the application permission that reads PIM for Groups policies (check only).
const PermPIMPolicyRead = "RoleManagementPolicy.Read.AzureADGroup"

// PermPIMPolicyReadWrite also reads them (and more: pimbot never changes a PIM policy).
const PermPIMPolicyReadWrite = "RoleManagementPolicy.ReadWrite.AzureADGroup"

// Rule ids of a PIM policy that govern an administrator's active assignment.
const (
	RuleExpirationAdminAssignment = "Expiration_Admin_Assignment"
	RuleEnablementAdminAssignment = "Enablement_Admin_Assignment"
)

// codePolicyFailed: an assignment schedule request broke a rule of the group's PIM policy
// ("The following policy rules failed: [\"ExpirationRule\"]", as PIM clients report it).
const codePolicyFailed = "RoleAssignmentRequestPolicyValidationFailed"

// PIMPolicy is what a group's PIM policy says about active assignments of one access made by
// an administrator or an app.
type PIMPolicy struct {
	Access             bot.Access
	PolicyID           string
	ExpirationRequired bool          // Expiration_Admin_Assignment.isExpirationRequired
	MaxDuration        time.Duration // Expiration_Admin_Assignment.maximumDuration; 0: not stated
	EnabledRules       []string      // Enablement_Admin_Assignment.enabledRules
}

// Requires reports whether the policy's Enablement_Admin_Assignment enables a rule
// (Justification, MultiFactorAuthentication, Ticketing).
func (p PIMPolicy) Requires(rule string) bool {
	for _, r := range p.EnabledRules {
		if strings.EqualFold(r, rule) {
			return true
		}
	}
	return false
}

// PIMPolicies reads the PIM for Groups policies of a group, one per access it has a policy for
// (none: the group is not onboarded into PIM yet).
func (d *Directory) PIMPolicies(ctx context.Context, groupID string) (map[bot.Access]PIMPolicy, error) {
	if !IsObjectID(groupID) {
		return nil, fmt.Errorf("group id %q is not an Entra object id (a GUID): %w", groupID, bot.ErrNotFound)
	}
	filter := "scopeId eq " + odataQuote(groupID) + " and scopeType eq 'Group'"
	var resp models.UnifiedRoleManagementPolicyAssignmentCollectionResponseable
	err := d.call(ctx, func(ctx context.Context) (err error) {
		resp, err = d.client.Policies().RoleManagementPolicyAssignments().Get(ctx, &policies.RoleManagementPolicyAssignmentsRequestBuilderGetRequestConfiguration{
			QueryParameters: &policies.RoleManagementPolicyAssignmentsRequestBuilderGetQueryParameters{
				Filter: &filter, Expand: []string{"policy($expand=rules)"}}})
		return wrap("read the PIM policy of a group", PermPIMPolicyRead, err)
	})
	if err != nil {
		return nil, err
	}
	out := map[bot.Access]PIMPolicy{}
	for _, a := range resp.GetValue() {
		var access bot.Access
		switch strings.ToLower(deref(a.GetRoleDefinitionId())) {
		case "member":
			access = bot.Member
		case "owner":
			access = bot.Owner
		default:
			continue
		}
		p := PIMPolicy{Access: access, PolicyID: deref(a.GetPolicyId())}
		if pol := a.GetPolicy(); pol != nil {
			for _, r := range pol.GetRules() {
				switch r := r.(type) {
				case models.UnifiedRoleManagementPolicyExpirationRuleable:
					if deref(r.GetId()) != RuleExpirationAdminAssignment {
						continue
					}
					p.ExpirationRequired = r.GetIsExpirationRequired() != nil && *r.GetIsExpirationRequired()
					if md := r.GetMaximumDuration(); md != nil {
						if dur, err := md.ToDuration(); err == nil {
							p.MaxDuration = dur
						}
					}
				case models.UnifiedRoleManagementPolicyEnablementRuleable:
					if deref(r.GetId()) == RuleEnablementAdminAssignment {
						p.EnabledRules = r.GetEnabledRules()
					}
				}
			}
		}
		out[access] = p
	}
	return out, nil
}

package graphclient

import (
	"context"
	"strings"

	"github.com/microsoftgraph/msgraph-sdk-go/identitygovernance"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/pimbot/pimbot/bot"
)

// Entitlement management access packages (drift of direct groups: a holder whose membership or
// ownership an access package delivers is managed elsewhere). Microsoft's references:
//   - List assignments: GET /identityGovernance/entitlementManagement/assignments, with
//     "$expand=accessPackage,target" and filters such as "$filter=state eq 'Delivered'" and
//     "target/objectid eq '<user id>'" (the documented scenarios;
//     https://learn.microsoft.com/graph/api/entitlementmanagement-list-assignments). The
//     assignment's state is delivering, partiallyDelivered, delivered, expired or deliveryFailed
//     (https://learn.microsoft.com/graph/api/resources/accesspackageassignment).
//   - List resourceRoleScopes: GET /identityGovernance/entitlementManagement/accessPackages/{id}?$expand=resourceRoleScopes($expand=role,scope):
//     the resource roles an access package assigns to each subject
//     (https://learn.microsoft.com/graph/api/accesspackage-list-resourcerolescopes). For a group,
//     the role's originSystem is AadGroup and its originId "Member_<group id>" (or
//     "Owner_<group id>"), and the scope's originId is the group id
//     (https://learn.microsoft.com/graph/api/accesspackage-post-resourcerolescopes, example 3;
//     https://learn.microsoft.com/graph/api/resources/accesspackageresourcescope: "If a Microsoft
//     Entra group, originId is the identifier of the group").
//   - Permission: EntitlementManagement.Read.All (application). Without it, or without an ID
//     Governance licence, Graph answers 403: bot.ErrForbidden, and drift behaves as before.

// PermEntitlementRead is the application permission reading access package assignments needs.
const PermEntitlementRead = "EntitlementManagement.Read.All"

var _ bot.AccessPackageReader = (*Directory)(nil)

// AccessPackages reports whether the user holds the group's access through a delivered access
// package assignment, and the access package's name: the user's delivered assignments (with
// their access package), then each package's resource role scopes, looking for the group's
// Member (or Owner) role.
func (d *Directory) AccessPackages(ctx context.Context, groupID, userID string, a bot.Access) (string, bool, error) {
	if err := checkIDs(groupID, userID); err != nil {
		return "", false, nil
	}
	filter := "target/objectId eq " + odataQuote(userID) + " and state eq 'delivered'"
	b := d.client.IdentityGovernance().EntitlementManagement().Assignments()
	var pkgs []models.AccessPackageable
	seen := map[string]bool{}
	next := ""
	for {
		var resp models.AccessPackageAssignmentCollectionResponseable
		err := d.call(ctx, func(ctx context.Context) (err error) {
			if next != "" {
				resp, err = b.WithUrl(next).Get(ctx, nil)
			} else {
				resp, err = b.Get(ctx, &identitygovernance.EntitlementManagementAssignmentsRequestBuilderGetRequestConfiguration{
					QueryParameters: &identitygovernance.EntitlementManagementAssignmentsRequestBuilderGetQueryParameters{
						Filter: &filter, Expand: []string{"accessPackage"}}})
			}
			return wrap("read access package assignments", PermEntitlementRead, err)
		})
		if err != nil {
			return "", false, err
		}
		for _, as := range resp.GetValue() {
			p := as.GetAccessPackage()
			if st := as.GetState(); st == nil || *st != models.DELIVERED_ACCESSPACKAGEASSIGNMENTSTATE || p == nil || p.GetId() == nil {
				continue // the filter already asks for delivered ones; an answer that ignored it is read right anyway
			}
			if id := strings.ToLower(*p.GetId()); !seen[id] {
				seen[id] = true
				pkgs = append(pkgs, p)
			}
		}
		if resp.GetOdataNextLink() == nil || *resp.GetOdataNextLink() == "" {
			break
		}
		next = *resp.GetOdataNextLink()
	}
	role := "Member_" + groupID
	if a == bot.Owner {
		role = "Owner_" + groupID
	}
	for _, p := range pkgs {
		var full models.AccessPackageable
		err := d.call(ctx, func(ctx context.Context) (err error) {
			full, err = d.client.IdentityGovernance().EntitlementManagement().AccessPackages().ByAccessPackageId(*p.GetId()).Get(ctx,
				&identitygovernance.EntitlementManagementAccessPackagesAccessPackageItemRequestBuilderGetRequestConfiguration{
					QueryParameters: &identitygovernance.EntitlementManagementAccessPackagesAccessPackageItemRequestBuilderGetQueryParameters{
						Expand: []string{"resourceRoleScopes($expand=role,scope)"}}})
			return wrap("read an access package's resource roles", PermEntitlementRead, err)
		})
		if err != nil {
			return "", false, err
		}
		for _, rs := range full.GetResourceRoleScopes() {
			r, s := rs.GetRole(), rs.GetScope()
			if r == nil || !strings.EqualFold(deref(r.GetOriginId()), role) {
				continue
			}
			if sys := deref(r.GetOriginSystem()); sys != "" && !strings.EqualFold(sys, "AadGroup") {
				continue
			}
			if s != nil && s.GetOriginId() != nil && !strings.EqualFold(*s.GetOriginId(), groupID) {
				continue
			}
			name := deref(full.GetDisplayName())
			if name == "" {
				name = deref(p.GetDisplayName())
			}
			if name == "" {
				name = *p.GetId()
			}
			return name, true, nil
		}
	}
	return "", false, nil
}

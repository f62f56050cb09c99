package graphclient

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
	"github.com/pimbot/pimbot/bot"
)

// groupID turns a group's mail or id into its object id. Mail lookups are cached for
// GroupIDTTL, and a known id is kept when Graph fails (a group's id never changes).
func (d *Directory) groupID(ctx context.Context, ref string) (string, error) {
	ref = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(ref), "group:")))
	if IsObjectID(ref) {
		return ref, nil
	}
	if ref == "" || len(ref) > 256 || strings.ContainsAny(ref, "\x00\r\n") {
		return "", fmt.Errorf("no directory group %q: %w", ref, bot.ErrNotFound)
	}
	id, err := d.groups.do(ctx, ref, func(err error) time.Duration {
		switch {
		case err == nil:
			return GroupIDTTL
		case errors.Is(err, bot.ErrNotFound):
			return NegativeTTL
		}
		return 0
	}, func(ctx context.Context) (string, error) {
		filter := "mail eq " + odataQuote(ref)
		var list models.GroupCollectionResponseable
		err := d.call(ctx, func(ctx context.Context) (err error) {
			list, err = d.client.Groups().Get(ctx, &groups.GroupsRequestBuilderGetRequestConfiguration{
				QueryParameters: &groups.GroupsRequestBuilderGetQueryParameters{Filter: &filter, Select: []string{"id"}}})
			return wrap("look up group by mail", PermGroupMemberReadWrite, err)
		})
		if err != nil {
			return "", err
		}
		if vs := list.GetValue(); len(vs) == 1 {
			return strings.ToLower(deref(vs[0].GetId())), nil
		}
		return "", fmt.Errorf("no directory group with mail %q: %w", ref, bot.ErrNotFound)
	})
	if err != nil && !errors.Is(err, bot.ErrNotFound) {
		if old, ok := d.groups.stale(ref); ok {
			d.log.Warn("graph: group lookup failed; using the id known before", "group", ref, "err", err)
			return old, nil
		}
	}
	return id, err
}

// InGroup reports whether the user is a member of the group (by mail or id), transitively
// (nested groups count), with checkMemberGroups. A miss asks about the other groups seen
// before in the same call (up to 20), so the eligibility of a whole policy for one person
// costs one Graph call per MemberTTL. A group or user that does not exist answers false, and
// so does a group id Graph refuses to check (see checkBatch), which is reported rather than
// allowed to spoil the answers for the other groups.
func (d *Directory) InGroup(ctx context.Context, userID, groupRef string) (bool, error) {
	if userID == "" || strings.ContainsAny(userID, "/?#%\\") {
		return false, nil
	}
	gid, err := d.groupID(ctx, groupRef)
	if errors.Is(err, bot.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	d.remember(gid)
	return d.members.do(ctx, userID+"|"+gid, func(err error) time.Duration {
		if err == nil {
			return MemberTTL
		}
		return 0
	}, func(ctx context.Context) (bool, error) {
		ids := d.batchFor(userID, gid)
		in, err := d.checkBatch(ctx, userID, ids)
		if err != nil {
			return false, err
		}
		for _, id := range ids[1:] {
			if _, answered := in[id]; answered {
				d.members.put(userID+"|"+id, in[id], nil, MemberTTL)
			}
		}
		return in[gid], nil
	})
}

func (d *Directory) remember(gid string) {
	d.knownMu.Lock()
	defer d.knownMu.Unlock()
	if len(d.known) < 1000 {
		d.known[gid] = true
	}
}

// batchFor is gid first, then other known groups with no fresh answer for the user. A group
// Graph refused to check is asked about alone, and never batched with the others.
func (d *Directory) batchFor(userID, gid string) []string {
	ids := []string{gid}
	d.knownMu.Lock()
	if _, bad := d.refused[gid]; bad {
		d.knownMu.Unlock()
		return ids
	}
	others := make([]string, 0, len(d.known))
	for id := range d.known {
		if _, bad := d.refused[id]; id != gid && !bad {
			others = append(others, id)
		}
	}
	d.knownMu.Unlock()
	slices.Sort(others)
	for _, id := range others {
		if len(ids) == maxCheckGroups {
			break
		}
		if _, _, fresh := d.members.get(userID + "|" + id); !fresh {
			ids = append(ids, id)
		}
	}
	return ids
}

// checkBatch asks checkMemberGroups about ids (ids[0] is the group the caller wants) and
// returns an answer for each id it could check. Graph answers a batch as a whole, so one id
// it will not check (a deleted group, the id of a user or a role, a group the app may not
// read) fails the batch with a 4xx, which must neither fail nor falsify the answers for the
// other groups: the ids are then checked one by one, and each one Graph refuses on its own
// is answered "not a member", dropped from later batches and reported (a warning in the log,
// and RefusedGroups for `pimbot check`). When the first two answers alone are the batch's
// refusal, the refusal is not about one id (a missing permission, say) and is returned.
func (d *Directory) checkBatch(ctx context.Context, userID string, ids []string) (map[string]bool, error) {
	in, err := d.checkMemberGroups(ctx, userID, ids)
	if err == nil || !refusedAsAWhole(err) {
		return in, err
	}
	if len(ids) == 1 {
		switch {
		case notFound(err):
			return map[string]bool{}, nil // no such user: a member of nothing
		case statusOf(err) == http.StatusBadRequest || d.isRefused(ids[0]):
			d.refuse(ids[0], err)
			return map[string]bool{ids[0]: false}, nil
		}
		return nil, err
	}
	batchErr := err
	out := map[string]bool{}
	refused := map[string]error{}
	for i, id := range ids {
		one, err := d.checkMemberGroups(ctx, userID, []string{id})
		switch {
		case err == nil:
			out[id] = one[id]
			d.accept(id)
		case refusedAsAWhole(err):
			refused[id] = err
		case i == 0:
			return nil, err // the group asked about cannot be checked now: the caller retries
		}
		if i == 1 && len(refused) == 2 && statusOf(refused[ids[0]]) == statusOf(batchErr) && statusOf(err) == statusOf(batchErr) {
			break // the first two alone are refused as the batch was: not one bad id
		}
	}
	if len(out) == 0 { // nothing could be checked: the refusal is not about one id
		if notFound(batchErr) {
			return map[string]bool{}, nil // no such user
		}
		return nil, batchErr
	}
	for id, err := range refused {
		d.refuse(id, err)
		out[id] = false
	}
	return out, nil
}

// refusedAsAWhole reports a 4xx that names no transient condition: what one bad id does.
func refusedAsAWhole(err error) bool {
	s := statusOf(err)
	return s >= 400 && s < 500 && s != http.StatusUnauthorized && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests
}

func (d *Directory) isRefused(id string) bool {
	d.knownMu.Lock()
	defer d.knownMu.Unlock()
	_, ok := d.refused[id]
	return ok
}

// refuse drops id from the batches and reports it once.
func (d *Directory) refuse(id string, err error) {
	d.knownMu.Lock()
	_, seen := d.refused[id]
	d.refused[id] = err
	delete(d.known, id)
	d.knownMu.Unlock()
	if !seen {
		d.log.Warn("graph: checkMemberGroups refuses this group id; it is dropped from the batches, and nobody is a member of it for pimbot (run pimbot check)",
			"group", id, "err", err)
	}
}

// accept forgets a refusal that no longer holds (the group is back, or readable now).
func (d *Directory) accept(id string) {
	d.knownMu.Lock()
	defer d.knownMu.Unlock()
	delete(d.refused, id)
}

// RefusedGroups are the group ids checkMemberGroups refused on their own, with Graph's answer.
func (d *Directory) RefusedGroups() map[string]error {
	d.knownMu.Lock()
	defer d.knownMu.Unlock()
	return maps.Clone(d.refused)
}

// checkMemberGroups: POST /users/{id}/checkMemberGroups {"groupIds": [...]} answers the
// subset the user belongs to, transitively.
func (d *Directory) checkMemberGroups(ctx context.Context, userID string, ids []string) (map[string]bool, error) {
	body := users.NewItemCheckMemberGroupsPostRequestBody()
	body.SetGroupIds(ids)
	var resp users.ItemCheckMemberGroupsPostResponseable
	err := d.call(ctx, func(ctx context.Context) (err error) {
		resp, err = d.client.Users().ByUserId(userID).CheckMemberGroups().PostAsCheckMemberGroupsPostResponse(ctx, body, nil)
		return wrap("check group membership", PermGroupMemberReadWrite+" and "+PermUserRead, err)
	})
	if err != nil {
		return nil, err
	}
	in := map[string]bool{}
	for _, id := range ids {
		in[id] = false
	}
	for _, id := range resp.GetValue() {
		in[strings.ToLower(id)] = true
	}
	return in, nil
}

// GroupInfo is what `pimbot check` wants to know about a group.
type GroupInfo struct {
	ID, Name, Mail  string
	RoleAssignable  bool   // changes need RoleManagement.ReadWrite.Directory as well
	Dynamic         bool   // membership is computed by a rule: nobody can add or remove members
	MembershipRule  string // the rule of a dynamic group
	Synced          bool   // synced from on-premises: membership is changed there, not in Entra
	Unified         bool   // a Microsoft 365 group (groupTypes contains Unified)
	MailEnabled     bool
	SecurityEnabled bool
	Restricted      bool // isManagementRestricted: in a restricted management administrative unit
}

// Kind names the group's kind as the Entra admin center does.
func (g GroupInfo) Kind() string {
	switch {
	case g.Unified:
		return "Microsoft 365 group"
	case g.MailEnabled && g.SecurityEnabled:
		return "mail-enabled security group"
	case g.MailEnabled:
		return "distribution list"
	}
	return "security group"
}

// ReadOnly says why Graph will not let an app change the group's members or owners at all,
// whatever permissions it holds; "" when it may. Each rule is Microsoft's:
//   - Mail-enabled security groups and distribution lists are read-only through Graph: "Only
//     Microsoft 365 and security groups can be managed through the Microsoft Graph groups API.
//     Mail-enabled and distribution groups are read-only through Microsoft Graph." ("Working
//     with groups in Microsoft Graph", https://learn.microsoft.com/graph/api/resources/groups-overview).
//     Graph answers 400 "Cannot Update a mail-enabled security groups and or distribution list.";
//     they are managed in Exchange Online.
//   - A group synced from on-premises (onPremisesSyncEnabled) is mastered in Active Directory
//     and only read in Entra (group resource, https://learn.microsoft.com/graph/api/resources/group,
//     onPremisesSyncEnabled; Entra Connect Sync,
//     https://learn.microsoft.com/entra/identity/hybrid/connect/how-to-connect-sync-whatis).
//   - A dynamic group (groupTypes contains DynamicMembership) takes its members from its
//     membershipRule; none can be added or removed by hand ("Manage rules for dynamic
//     membership groups", https://learn.microsoft.com/entra/identity/users/groups-dynamic-membership).
//
// A group in a restricted management administrative unit is not read-only for everyone: see
// RestrictedReason.
func (g GroupInfo) ReadOnly() string {
	switch {
	case g.Synced:
		return "is synced from on-premises Active Directory: its membership is mastered there and cannot be changed in Entra"
	case g.MailEnabled && !g.Unified:
		return "is a " + g.Kind() + ": Graph cannot change the members of mail-enabled security groups and distribution lists (they are managed in Exchange Online); manage a security or Microsoft 365 group instead"
	case g.Dynamic:
		rule := ""
		if g.MembershipRule != "" {
			rule = " (" + g.MembershipRule + ")"
		}
		return "has dynamic membership" + rule + ": its members come from the rule, and nobody can add or remove them; manage an assigned group instead"
	}
	return ""
}

// RestrictedReason explains a group in a restricted management administrative unit
// (isManagementRestricted): "Even Global Administrators won't be allowed to modify the
// objects unless they assign themselves explicitly to a role scoped to the restricted
// management administrative unit" ("Restricted management administrative units in Microsoft
// Entra ID", https://learn.microsoft.com/entra/identity/role-based-access-control/admin-units-restricted-management).
// Application permissions such as GroupMember.ReadWrite.All do not reach such a group either:
// the app's service principal needs a role such as Groups Administrator assigned at the
// scope of that unit. A token's wids claim lists the directory roles of the app but not their
// scope, so a role there is a hint, not a proof.
const RestrictedReason = "is in a restricted management administrative unit: Graph refuses changes by apps unless the app's service principal holds a role such as Groups Administrator assigned at the scope of that unit (application permissions and tenant-wide roles do not count)"

// Group reads a group by id.
func (d *Directory) Group(ctx context.Context, groupID string) (GroupInfo, error) {
	if !IsObjectID(groupID) {
		return GroupInfo{}, fmt.Errorf("group id %q is not an Entra object id (a GUID): %w", groupID, bot.ErrNotFound)
	}
	var g models.Groupable
	err := d.call(ctx, func(ctx context.Context) (err error) {
		g, err = d.client.Groups().ByGroupId(groupID).Get(ctx, &groups.GroupItemRequestBuilderGetRequestConfiguration{
			QueryParameters: &groups.GroupItemRequestBuilderGetQueryParameters{
				Select: []string{"id", "displayName", "mail", "isAssignableToRole", "groupTypes", "membershipRule",
					"onPremisesSyncEnabled", "mailEnabled", "securityEnabled", "isManagementRestricted"}}})
		return wrap("read group", PermGroupMemberReadWrite, err)
	})
	if err != nil {
		return GroupInfo{}, err
	}
	is := func(b *bool) bool { return b != nil && *b }
	info := GroupInfo{ID: deref(g.GetId()), Name: deref(g.GetDisplayName()), Mail: deref(g.GetMail()),
		RoleAssignable: is(g.GetIsAssignableToRole()), Synced: is(g.GetOnPremisesSyncEnabled()),
		Dynamic: slices.Contains(g.GetGroupTypes(), "DynamicMembership"), MembershipRule: deref(g.GetMembershipRule()),
		Unified: slices.Contains(g.GetGroupTypes(), "Unified"), MailEnabled: is(g.GetMailEnabled()),
		SecurityEnabled: is(g.GetSecurityEnabled()), Restricted: is(g.GetIsManagementRestricted())}
	return info, nil
}

// ResolveGroup finds the group a policy's group:<mail|id> names, and reads it: an error
// wrapping bot.ErrNotFound when no group has that mail or id.
func (d *Directory) ResolveGroup(ctx context.Context, ref string) (GroupInfo, error) {
	id, err := d.groupID(ctx, ref)
	if err != nil {
		return GroupInfo{}, err
	}
	info, err := d.Group(ctx, id)
	if errors.Is(err, bot.ErrNotFound) {
		return GroupInfo{}, fmt.Errorf("no directory group with id %s: %w", id, err)
	}
	return info, err
}

// Holders lists the direct members or owners of a group that are users, following pages.
func (d *Directory) Holders(ctx context.Context, groupID string, access bot.Access) ([]bot.User, error) {
	if !IsObjectID(groupID) {
		return nil, fmt.Errorf("group id %q is not an Entra object id (a GUID): %w", groupID, bot.ErrNotFound)
	}
	var out []bot.User
	top := int32(999)
	perm := PermGroupMemberReadWrite
	next := ""
	for page := 0; ; page++ {
		if page == 1000 {
			return out, fmt.Errorf("graph: list %ss of %s: more than 1000 pages", access, groupID)
		}
		var resp models.DirectoryObjectCollectionResponseable
		err := d.call(ctx, func(ctx context.Context) (err error) {
			g := d.client.Groups().ByGroupId(groupID)
			if access == bot.Owner {
				b := g.Owners()
				if next != "" {
					resp, err = b.WithUrl(next).Get(ctx, nil)
				} else {
					resp, err = b.Get(ctx, &groups.ItemOwnersRequestBuilderGetRequestConfiguration{
						QueryParameters: &groups.ItemOwnersRequestBuilderGetQueryParameters{Select: userSelect, Top: &top}})
				}
			} else {
				b := g.Members()
				if next != "" {
					resp, err = b.WithUrl(next).Get(ctx, nil)
				} else {
					resp, err = b.Get(ctx, &groups.ItemMembersRequestBuilderGetRequestConfiguration{
						QueryParameters: &groups.ItemMembersRequestBuilderGetQueryParameters{Select: userSelect, Top: &top}})
				}
			}
			return wrap("list "+string(access)+"s", perm, err)
		})
		if err != nil {
			return nil, err
		}
		for _, o := range resp.GetValue() {
			if u, ok := o.(models.Userable); ok {
				out = append(out, toUser(u))
			}
		}
		if resp.GetOdataNextLink() == nil || *resp.GetOdataNextLink() == "" {
			return out, nil
		}
		next = *resp.GetOdataNextLink()
	}
}

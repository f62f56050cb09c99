package graphclient

import (
	"context"
	"errors"
	"fmt"
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
// costs one Graph call per MemberTTL. A group or user that does not exist answers false.
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
		in, err := d.checkMemberGroups(ctx, userID, ids)
		if err != nil {
			return false, err
		}
		for _, id := range ids[1:] {
			d.members.put(userID+"|"+id, in[id], nil, MemberTTL)
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

// batchFor is gid first, then other known groups with no fresh answer for the user.
func (d *Directory) batchFor(userID, gid string) []string {
	ids := []string{gid}
	d.knownMu.Lock()
	others := make([]string, 0, len(d.known))
	for id := range d.known {
		if id != gid {
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
	in := map[string]bool{}
	if notFound(err) {
		return in, nil // no such user: a member of nothing
	}
	if err != nil {
		return nil, err
	}
	for _, id := range resp.GetValue() {
		in[strings.ToLower(id)] = true
	}
	return in, nil
}

// GroupInfo is what `pimbot check` wants to know about a managed group.
type GroupInfo struct {
	ID, Name, Mail string
	RoleAssignable bool // changes need RoleManagement.ReadWrite.Directory as well
	Dynamic        bool // membership is computed by a rule: nobody can add or remove members
	Synced         bool // synced from on-premises: membership is changed there, not in Entra
}

// Group reads a group by id.
func (d *Directory) Group(ctx context.Context, groupID string) (GroupInfo, error) {
	if !IsObjectID(groupID) {
		return GroupInfo{}, fmt.Errorf("group id %q is not an Entra object id (a GUID): %w", groupID, bot.ErrNotFound)
	}
	var g models.Groupable
	err := d.call(ctx, func(ctx context.Context) (err error) {
		g, err = d.client.Groups().ByGroupId(groupID).Get(ctx, &groups.GroupItemRequestBuilderGetRequestConfiguration{
			QueryParameters: &groups.GroupItemRequestBuilderGetQueryParameters{
				Select: []string{"id", "displayName", "mail", "isAssignableToRole", "groupTypes", "onPremisesSyncEnabled"}}})
		return wrap("read group", PermGroupMemberReadWrite, err)
	})
	if err != nil {
		return GroupInfo{}, err
	}
	info := GroupInfo{ID: deref(g.GetId()), Name: deref(g.GetDisplayName()), Mail: deref(g.GetMail())}
	info.RoleAssignable = g.GetIsAssignableToRole() != nil && *g.GetIsAssignableToRole()
	info.Synced = g.GetOnPremisesSyncEnabled() != nil && *g.GetOnPremisesSyncEnabled()
	info.Dynamic = slices.Contains(g.GetGroupTypes(), "DynamicMembership")
	return info, nil
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

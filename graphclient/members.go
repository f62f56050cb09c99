package graphclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/pimbot/pimbot/bot"
)

// permFor is the application permission a membership (or ownership) change needs.
// Role-assignable groups also need RoleManagement.ReadWrite.Directory.
func permFor(access bot.Access) string {
	if access == bot.Owner {
		return PermGroupReadWrite + " (owners; and " + PermRoleManagement + " if the group is role-assignable)"
	}
	return PermGroupMemberReadWrite + " (and " + PermRoleManagement + " if the group is role-assignable)"
}

func checkIDs(groupID, userID string) error {
	if !IsObjectID(groupID) {
		return fmt.Errorf("group id %q is not an Entra object id (a GUID): %w", groupID, bot.ErrNotFound)
	}
	if !IsObjectID(userID) {
		return fmt.Errorf("user id %q is not an Entra object id (a GUID): %w", userID, bot.ErrNotFound)
	}
	return nil
}

// Add makes the user a member or owner: POST /groups/{id}/members/$ref (or owners) with
// {"@odata.id": "<base>/directoryObjects/{user id}"}. "Already there" is success.
func (d *Directory) Add(ctx context.Context, groupID, userID string, access bot.Access) error {
	if err := checkIDs(groupID, userID); err != nil {
		return err
	}
	ref := models.NewReferenceCreate()
	odataID := d.base + "/directoryObjects/" + userID
	ref.SetOdataId(&odataID)
	op, perm := "add "+string(access), permFor(access)
	err := d.call(ctx, func(ctx context.Context) error {
		g := d.client.Groups().ByGroupId(groupID)
		if access == bot.Owner {
			return wrap(op, perm, g.Owners().Ref().Post(ctx, ref, nil))
		}
		return wrap(op, perm, g.Members().Ref().Post(ctx, ref, nil))
	})
	if alreadyExists(err) {
		return nil
	}
	return err
}

// Remove ends the membership or ownership: DELETE /groups/{id}/members/{user id}/$ref (or
// owners). Graph's 404 ("not there", or a replica that has not seen the add yet) wraps
// bot.ErrNotHeld; its 400 for the last owner wraps bot.ErrLastOwner.
func (d *Directory) Remove(ctx context.Context, groupID, userID string, access bot.Access) error {
	if err := checkIDs(groupID, userID); err != nil {
		// Nothing that is not an object id can hold anything in Entra.
		return fmt.Errorf("%w: %w", bot.ErrNotHeld, err)
	}
	op, perm := "remove "+string(access), permFor(access)
	err := d.call(ctx, func(ctx context.Context) error {
		g := d.client.Groups().ByGroupId(groupID)
		if access == bot.Owner {
			return wrap(op, perm, g.Owners().ByDirectoryObjectId(userID).Ref().Delete(ctx, nil))
		}
		return wrap(op, perm, g.Members().ByDirectoryObjectId(userID).Ref().Delete(ctx, nil))
	})
	var e *Error
	switch {
	case notFound(err) && errors.As(err, &e):
		e.kind = bot.ErrNotHeld
	case lastOwner(err) && errors.As(err, &e):
		e.kind = bot.ErrLastOwner
	}
	return err
}

// Holds reports whether the user holds the access directly: GET
// /groups/{id}/members/{user id}/graph.user (or owners) answers the user, or 404.
func (d *Directory) Holds(ctx context.Context, groupID, userID string, access bot.Access) (bool, error) {
	if err := checkIDs(groupID, userID); err != nil {
		return false, nil
	}
	cfg := &groups.ItemMembersItemGraphUserRequestBuilderGetRequestConfiguration{
		QueryParameters: &groups.ItemMembersItemGraphUserRequestBuilderGetQueryParameters{Select: []string{"id"}}}
	ocfg := &groups.ItemOwnersItemGraphUserRequestBuilderGetRequestConfiguration{
		QueryParameters: &groups.ItemOwnersItemGraphUserRequestBuilderGetQueryParameters{Select: []string{"id"}}}
	err := d.call(ctx, func(ctx context.Context) (err error) {
		g := d.client.Groups().ByGroupId(groupID)
		if access == bot.Owner {
			_, err = g.Owners().ByDirectoryObjectId(userID).GraphUser().Get(ctx, ocfg)
		} else {
			_, err = g.Members().ByDirectoryObjectId(userID).GraphUser().Get(ctx, cfg)
		}
		return wrap("read "+string(access), PermGroupMemberReadWrite, err)
	})
	if notFound(err) {
		return false, nil
	}
	return err == nil, err
}

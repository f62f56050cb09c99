package graphclient

import (
	"context"
	"fmt"

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
// owners). "Not there" (404) is success.
func (d *Directory) Remove(ctx context.Context, groupID, userID string, access bot.Access) error {
	if err := checkIDs(groupID, userID); err != nil {
		// Nothing that is not an object id can hold anything in Entra: nothing to remove.
		d.log.Warn("graph: nothing to remove", "group", groupID, "user", userID, "err", err)
		return nil
	}
	op, perm := "remove "+string(access), permFor(access)
	err := d.call(ctx, func(ctx context.Context) error {
		g := d.client.Groups().ByGroupId(groupID)
		if access == bot.Owner {
			return wrap(op, perm, g.Owners().ByDirectoryObjectId(userID).Ref().Delete(ctx, nil))
		}
		return wrap(op, perm, g.Members().ByDirectoryObjectId(userID).Ref().Delete(ctx, nil))
	})
	if notFound(err) {
		return nil
	}
	return err
}

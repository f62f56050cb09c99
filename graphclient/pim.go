package graphclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/identitygovernance"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/pimbot/pimbot/bot"
)

// PIM for Groups (a group's mode: pim): active assignments with an expiration that Entra
// enforces itself. Microsoft's references:
//   - Create assignmentScheduleRequest: POST /identityGovernance/privilegedAccess/group/assignmentScheduleRequests
//     with accessId (member|owner), principalId, groupId, action, justification and scheduleInfo
//     {startDateTime, expiration {type, endDateTime}}; 201 with the request and its status
//     (https://learn.microsoft.com/graph/api/privilegedaccessgroup-post-assignmentschedulerequests).
//     Actions: adminAssign ("for administrators to assign group membership or ownership"),
//     adminRemove ("to remove principals from group membership or ownership"), adminExtend ("to
//     extend expiring assignments"), adminUpdate ("to change existing … assignments"), adminRenew
//     ("to renew expired assignments"). pimbot extends with adminExtend: every assignment it makes
//     expires within hours, which is what "expiring" means in PIM (the portal offers Extend to
//     assignments that expire within 14 days); adminUpdate is documented for changing an assignment
//     in general, and is not what the PIM portal uses to move an end. [UNVERIFIED against a tenant]
//   - List assignmentScheduleInstances: the active assignments now, filtered by groupId and
//     principalId (https://learn.microsoft.com/graph/api/privilegedaccessgroup-list-assignmentscheduleinstances).
//   - Permission: PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup (application).
//   - "The assignment can't be assigned for a duration of less than five minutes [and] can't be
//     removed within five minutes of it being assigned"
//     (https://learn.microsoft.com/entra/id-governance/privileged-identity-management/groups-assign-member-owner);
//     Graph answers 400 ActiveDurationTooShort to both (as PIM clients report it).
//   - Dynamic groups and groups synced from on-premises "cannot be managed in PIM for Groups"
//     (https://learn.microsoft.com/entra/id-governance/privileged-identity-management/groups-discover-groups).
//   - The first request for a group brings it under PIM management (onboarding), which cannot be
//     undone; every user eligible for it needs an Entra ID P2 or ID Governance licence.

// PermPIMGroups is the application permission PIM for Groups assignments need.
const PermPIMGroups = "PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup"

// Graph's error codes for PIM schedule requests.
const (
	codeTooShort    = "ActiveDurationTooShort"     // shorter than 5 minutes, or removed within 5 minutes
	codeExists      = "RoleAssignmentExists"       // adminAssign of an active assignment
	codeDoesntExist = "RoleAssignmentDoesNotExist" // adminRemove/adminExtend of nothing
)

var _ bot.Scheduler = (*Directory)(nil)

func pimAccess(a bot.Access) *models.PrivilegedAccessGroupRelationships {
	r := models.MEMBER_PRIVILEGEDACCESSGROUPRELATIONSHIPS
	if a == bot.Owner {
		r = models.OWNER_PRIVILEGEDACCESSGROUPRELATIONSHIPS
	}
	return &r
}

// scheduleRequest posts one assignment schedule request and reads its status.
func (d *Directory) scheduleRequest(ctx context.Context, action models.ScheduleRequestActions, groupID, userID string, a bot.Access, start, end time.Time, justification string) error {
	if err := checkIDs(groupID, userID); err != nil {
		return err
	}
	body := models.NewPrivilegedAccessGroupAssignmentScheduleRequest()
	body.SetAccessId(pimAccess(a))
	body.SetAction(&action)
	body.SetGroupId(&groupID)
	body.SetPrincipalId(&userID)
	if justification != "" {
		body.SetJustification(&justification)
	}
	if !end.IsZero() {
		sched := models.NewRequestSchedule()
		if !start.IsZero() {
			s := start.UTC()
			sched.SetStartDateTime(&s)
		}
		exp := models.NewExpirationPattern()
		typ := models.AFTERDATETIME_EXPIRATIONPATTERNTYPE
		e := end.UTC()
		exp.SetTypeEscaped(&typ)
		exp.SetEndDateTime(&e)
		sched.SetExpiration(exp)
		body.SetScheduleInfo(sched)
	}
	op := "PIM " + action.String() + " " + string(a)
	var resp models.PrivilegedAccessGroupAssignmentScheduleRequestable
	err := d.call(ctx, func(ctx context.Context) (err error) {
		resp, err = d.client.IdentityGovernance().PrivilegedAccess().Group().AssignmentScheduleRequests().Post(ctx, body, nil)
		return wrap(op, PermPIMGroups, err)
	})
	var ge *Error
	if errors.As(err, &ge) {
		switch ge.Code {
		case codeTooShort:
			ge.kind = bot.ErrPIMTooSoon
		case codeDoesntExist:
			ge.kind = bot.ErrNotHeld
		case codePolicyFailed:
			// A rule of the group's PIM policy (maximum duration, MFA, ticket): retrying
			// does not help; `pimbot check` explains the conflict.
			ge.kind = bot.ErrForbidden
		case codeExists:
			if action == models.ADMINASSIGN_SCHEDULEREQUESTACTIONS {
				return nil // assigned already: a retried activation
			}
		}
	}
	if err != nil {
		return err
	}
	switch st := deref(resp.GetStatus()); st {
	case "Canceled", "Denied", "Failed", "Revoked":
		if action == models.ADMINREMOVE_SCHEDULEREQUESTACTIONS && st == "Revoked" {
			return nil
		}
		return &Error{Op: op, Status: 201, Code: st, Message: "PIM answered the request with status " + st, RetryAfter: -1, kind: bot.ErrForbidden}
	case "PendingApproval", "PendingAdminDecision":
		return &Error{Op: op, Status: 201, Code: st, Message: "the group's PIM policy asks for an approval of this assignment, which pimbot cannot give; change the group's PIM settings (Assignment: require approval off)", RetryAfter: -1, kind: bot.ErrForbidden}
	}
	// Provisioned, Granted, PendingProvisioning, PendingScheduleCreation, ScheduleCreated: done,
	// or under way (Entra provisions the membership within moments).
	return nil
}

// AssignUntil makes an active PIM assignment from start until end (adminAssign).
func (d *Directory) AssignUntil(ctx context.Context, groupID, userID string, a bot.Access, start, end time.Time, justification string) error {
	return d.scheduleRequest(ctx, models.ADMINASSIGN_SCHEDULEREQUESTACTIONS, groupID, userID, a, start, end, justification)
}

// ExtendUntil moves the expiration of an active PIM assignment to end (adminExtend).
func (d *Directory) ExtendUntil(ctx context.Context, groupID, userID string, a bot.Access, end time.Time, justification string) error {
	return d.scheduleRequest(ctx, models.ADMINEXTEND_SCHEDULEREQUESTACTIONS, groupID, userID, a, time.Time{}, end, justification)
}

// Unassign removes the active PIM assignment (adminRemove). Nothing to remove wraps
// bot.ErrNotHeld; within 5 minutes of the assignment, bot.ErrPIMTooSoon.
func (d *Directory) Unassign(ctx context.Context, groupID, userID string, a bot.Access) error {
	if err := checkIDs(groupID, userID); err != nil {
		return fmt.Errorf("%w: %w", bot.ErrNotHeld, err)
	}
	return d.scheduleRequest(ctx, models.ADMINREMOVE_SCHEDULEREQUESTACTIONS, groupID, userID, a, time.Time{}, time.Time{}, "")
}

// Assigned reports whether the user holds the access through an active PIM assignment now,
// read from assignmentScheduleInstances.
func (d *Directory) Assigned(ctx context.Context, groupID, userID string, a bot.Access) (bool, error) {
	if err := checkIDs(groupID, userID); err != nil {
		return false, nil
	}
	filter := "groupId eq " + odataQuote(groupID) + " and principalId eq " + odataQuote(userID)
	var resp models.PrivilegedAccessGroupAssignmentScheduleInstanceCollectionResponseable
	err := d.call(ctx, func(ctx context.Context) (err error) {
		resp, err = d.client.IdentityGovernance().PrivilegedAccess().Group().AssignmentScheduleInstances().Get(ctx,
			&identitygovernance.PrivilegedAccessGroupAssignmentScheduleInstancesRequestBuilderGetRequestConfiguration{
				QueryParameters: &identitygovernance.PrivilegedAccessGroupAssignmentScheduleInstancesRequestBuilderGetQueryParameters{Filter: &filter}})
		return wrap("read PIM assignments", PermPIMGroups, err)
	})
	if err != nil {
		return false, err
	}
	now := time.Now()
	for _, in := range resp.GetValue() {
		if in.GetAccessId() == nil || !strings.EqualFold(in.GetAccessId().String(), string(a)) {
			continue
		}
		if s := in.GetStartDateTime(); s != nil && s.After(now) {
			continue
		}
		if e := in.GetEndDateTime(); e != nil && !e.After(now) {
			continue
		}
		return true, nil
	}
	return false, nil
}

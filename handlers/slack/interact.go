package slack

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/slack-go/slack"
)

// interaction handles block actions, view submissions and options loads. It returns the
// immediate answer (nil: an empty ack). A click or submission seen already (a replayed
// request, a retried envelope) is acknowledged and does nothing (replay.go).
func (s *Surface) interaction(ctx context.Context, cb slack.InteractionCallback) any {
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		s.blockActions(ctx, cb)
	case slack.InteractionTypeViewSubmission:
		return s.viewSubmission(ctx, cb)
	case slack.InteractionTypeBlockSuggestion:
		return slack.OptionsResponse{Options: []*slack.OptionBlockObject{}}
	}
	return nil
}

func clickOrigin(cb slack.InteractionCallback) origin {
	ch := cb.Channel.ID
	if ch == "" {
		ch = cb.Container.ChannelID
	}
	return origin{UserID: cb.User.ID, ChannelID: ch, ResponseURL: cb.ResponseURL}
}

// blockActions queues the work of a click, once per click; Slack gets its ack at once.
func (s *Surface) blockActions(ctx context.Context, cb slack.InteractionCallback) {
	received := time.Now()
	o := clickOrigin(cb)
	t := trig{ID: cb.TriggerID, Received: received, Origin: o, Again: "click the button again"}
	type work struct {
		name string
		f    func(ctx context.Context)
		tf   func(ctx context.Context, t trig) // trigger-bound work (trigger.go), instead of f
	}
	var todo []work
	for _, a := range cb.ActionCallback.BlockActions {
		id := bot.NormalizeID(a.Value)
		var name string
		var f func(ctx context.Context)
		var tf func(ctx context.Context, t trig)
		switch a.ActionID {
		case actApprove:
			fromInbox := strings.HasPrefix(a.BlockID, blockInbox)
			name, f = "approve", func(ctx context.Context) { s.approve(ctx, o, id, fromInbox) }
		case actDeny:
			name, tf = "deny form", func(ctx context.Context, t trig) { s.openDeny(ctx, t, id) }
		case actCancel:
			name, f = "cancel", func(ctx context.Context) { s.act(ctx, o, id, s.eng.Cancel) }
		case actDeactivate:
			name, f = "deactivate", func(ctx context.Context) { s.act(ctx, o, id, s.eng.Deactivate) }
		case actRevoke:
			name, f = "revoke", func(ctx context.Context) { s.act(ctx, o, id, s.eng.Revoke) }
		case actLooksGood:
			fromInbox := strings.HasPrefix(a.BlockID, blockInbox)
			name, f = "review", func(ctx context.Context) { s.looksGood(ctx, o, id, fromInbox) }
		case actExtend:
			name, tf = "extend form", func(ctx context.Context, t trig) { s.openExtend(ctx, t, id) }
		case actVerifyAgain:
			name, f = "verify again", func(ctx context.Context) { s.verifyAgain(ctx, o, dmOf(o.UserID), id) }
		case actGroup:
			view, group := cb.View, s.groupByValue(a.SelectedOption.Value)
			name, f = "form group", func(ctx context.Context) { s.regroup(ctx, cb.User.ID, view, group) }
		case actHomeActivate:
			group := a.Value
			name, tf = "open activation form", func(ctx context.Context, t trig) { s.openActivate(ctx, t, cb.User.ID, group) }
		default:
			continue // inputs that do not dispatch
		}
		todo = append(todo, work{name, f, tf})
	}
	if len(todo) == 0 {
		return
	}
	fresh, err := s.firstTime(ctx, "click", cb.User.ID, interactionID(cb))
	if err != nil {
		s.later("say unavailable", func(ctx context.Context) { s.tellErr(ctx, o, err) })
		return
	}
	if !fresh {
		return
	}
	for _, w := range todo {
		if w.tf != nil {
			if !s.onTrigger(w.name, t, w.tf) {
				s.later("say busy", func(ctx context.Context) { s.tellText(ctx, o, ":warning: "+busyText) })
			}
			continue
		}
		size := int64(0)
		if w.name == "form group" { // carries the view
			size = int64(len(cb.View.PrivateMetadata)) + 16<<10
		}
		if !s.laterSized(w.name, size, w.f) {
			s.log.Warn("slack click dropped: no room in the work queue", "task", w.name, "user", cb.User.ID)
		}
	}
}

// approve records the clicking person's approval; the engine decides whether they may.
// fromInbox: the click was on the person's inbox message (or App Home section), which is
// redrawn without the request.
func (s *Surface) approve(ctx context.Context, o origin, id string, fromInbox bool) {
	u, err := s.identify(ctx, o.UserID)
	if err != nil {
		s.tellErr(ctx, o, err)
		return
	}
	r, err := s.eng.Approve(ctx, s.actor(u), id)
	if err != nil {
		s.tellErr(ctx, o, err)
		return
	}
	// The approval message is updated by the notification that follows.
	s.refreshOwnHome(ctx, u, o.UserID)
	if fromInbox {
		s.redrawInbox(ctx, o, u, decidedNote(r))
	}
}

// looksGood records the clicking approver's review of an automatic approval; the engine
// decides whether they may. The approvers' message is updated by the notification that
// follows; a click on the inbox redraws it without the request.
func (s *Surface) looksGood(ctx context.Context, o origin, id string, fromInbox bool) {
	u, err := s.identify(ctx, o.UserID)
	if err != nil {
		s.tellErr(ctx, o, err)
		return
	}
	if _, err := s.eng.LooksGood(ctx, s.actor(u), id); err != nil {
		s.tellErr(ctx, o, err)
		return
	}
	s.refreshOwnHome(ctx, u, o.UserID)
	if fromInbox {
		s.redrawInbox(ctx, o, u, "Reviewed request "+id+": looks good.")
	}
}

// act runs cancel, deactivate or revoke for the clicking person.
func (s *Surface) act(ctx context.Context, o origin, id string, f func(context.Context, bot.Actor, string) (*bot.Request, error)) {
	u, err := s.identify(ctx, o.UserID)
	if err != nil {
		s.tellErr(ctx, o, err)
		return
	}
	if _, err := f(ctx, s.actor(u), id); err != nil {
		s.tellErr(ctx, o, err)
	}
}

// openDeny opens the deny-reason modal for an approver (on the trigger lane), if the
// engine says they may deny; see openChecked.
func (s *Surface) openDeny(ctx context.Context, t trig, id string) {
	s.openChecked(ctx, t, id, bot.ActDeny, "deny form", "Deny request", func(r *bot.Request) slack.ModalViewRequest {
		return denyModal(id, r, s.now(), s.loc())
	})
}

// openExtend opens the extension modal for the requester of an active grant (on the
// trigger lane), if the engine says they may extend it; the modal offers the room the
// engine leaves.
func (s *Surface) openExtend(ctx context.Context, t trig, id string) {
	s.openChecked(ctx, t, id, bot.ActExtend, "extension form", "Extend access", func(r *bot.Request) slack.ModalViewRequest {
		var ext *extension
		if r != nil {
			if g := s.groupOf(r); g != nil {
				room, _ := s.eng.ExtensionRoom(r)
				ext = &extension{Group: g, Room: room, Default: s.eng.ExtensionDefault(r)}
			}
		}
		return extendModal(id, r, ext, s.now(), s.loc())
	})
}

// openChecked opens the form of an action on a request once the engine said the person may
// take it. The check gets fastPathBudget: answered in time, a refusal is told privately
// and no form opens, else the form opens. Not answered in time (a slow directory), a
// loading view opens while the trigger lives, and the slow lane fills it with the form, or
// with the refusal, once the engine answered.
func (s *Surface) openChecked(ctx context.Context, t trig, id string, act bot.Action, what, title string, form func(*bot.Request) slack.ModalViewRequest) {
	fctx, cancel := context.WithTimeout(ctx, fastPathBudget)
	r, refusal, decided := s.precheck(fctx, t.Origin.UserID, id, act)
	cancel()
	if decided {
		if refusal != "" {
			s.later("say refusal", func(ctx context.Context) { s.tellText(ctx, t.Origin, ":no_entry: "+refusal) })
			return
		}
		s.openView(ctx, t, what, form(r))
		return
	}
	v := s.openView(ctx, t, what, loadingView(title, "Checking the request…"))
	if v == nil {
		return
	}
	fill := func(ctx context.Context) {
		pctx, cancel := context.WithTimeout(ctx, precheckBudget)
		r, refusal, _ := s.precheck(pctx, t.Origin.UserID, id, act)
		cancel()
		if refusal != "" {
			s.fillView(ctx, v, infoModal(title, ":no_entry: "+refusal))
			return
		}
		s.fillView(ctx, v, form(r)) // no answer at all: the form with what is known; the engine decides on submit
	}
	if !s.later("fill "+what, fill) {
		s.fillView(ctx, v, infoModal(title, ":warning: "+busyText))
	}
}

// precheck asks the engine whether the person may take the action whose form is about to
// open. A refusal is in words (told privately; no form opens). decided is false when no
// answer came (ctx ended, or something did not answer): then r is nil and the engine
// decides on submit.
func (s *Surface) precheck(ctx context.Context, slackID, id string, act bot.Action) (r *bot.Request, refusal string, decided bool) {
	u, err := s.identify(ctx, slackID)
	if err == nil {
		r, err = s.eng.Precheck(ctx, s.actor(u), id, act)
	}
	var pe *personError
	var perm *bot.PermissionError
	var se *bot.StateError
	var fe *bot.FieldError
	switch {
	case err == nil:
		return r, "", true
	case errors.As(err, &pe), errors.As(err, &perm), errors.As(err, &se), errors.As(err, &fe), errors.Is(err, bot.ErrNotFound):
		return nil, say(err), true
	}
	return nil, "", false
}

// regroup redraws the activation form for the group just chosen.
func (s *Surface) regroup(ctx context.Context, slackID string, view slack.View, group string) {
	var out slack.ModalViewRequest
	if u, err := s.identify(ctx, slackID); err != nil {
		out = infoModal("Activate access", ":warning: "+say(err))
	} else if groups, err := s.eligible(ctx, u); err != nil {
		out = infoModal("Activate access", ":warning: "+say(err))
	} else {
		opened := s.now()
		if m := parseMeta(view.PrivateMetadata); m.Opened > 0 {
			opened = time.Unix(m.Opened, 0)
		}
		out = activateModal(activateForm{Groups: groups, Selected: pick(groups, group), Opened: opened})
	}
	if _, err := s.api.UpdateViewContext(ctx, fitView(out), "", view.Hash, view.ID); err != nil {
		s.log.Info("slack views.update of the form failed (closed or changed meanwhile)", "err", err)
	}
}

// viewSubmission answers a modal's submit within Slack's 3 s: refusals go next to the field.
// A submission seen already gets an empty answer (the modal closes) and does nothing.
func (s *Surface) viewSubmission(ctx context.Context, cb slack.InteractionCallback) any {
	ctx, cancel := context.WithTimeout(ctx, submitBudget)
	defer cancel()
	var submit func(context.Context, slack.InteractionCallback) any
	var field string // where a refusal about no field in particular is shown
	switch cb.View.CallbackID {
	case cbActivate:
		submit, field = s.submitForm, actGroup
	case cbDeny:
		submit, field = s.submitDeny, actReason
	case cbExtend:
		submit, field = s.submitExtend, actDuration
	default:
		return nil // an info view: closing is all there is
	}
	fresh, err := s.firstTime(ctx, "view submission", cb.User.ID, interactionID(cb))
	if err != nil {
		return refusal(cb.View, err, field)
	}
	if !fresh {
		return nil
	}
	return submit(ctx, cb)
}

// state finds the value of a form field (block ids are the field, or field.<group>).
func state(v slack.View, field string) (slack.BlockAction, bool) {
	if v.State == nil {
		return slack.BlockAction{}, false
	}
	for bid, actions := range v.State.Values {
		if bid == field || strings.HasPrefix(bid, field+".") {
			a, ok := actions[field]
			return a, ok
		}
	}
	return slack.BlockAction{}, false
}

// blockFor is the input block where an error about field is shown (Slack shows errors
// only next to input blocks); fallback when the view has no such input.
func blockFor(v slack.View, field, fallback string) string {
	for _, b := range v.Blocks.BlockSet {
		if ib, ok := b.(*slack.InputBlock); ok && (ib.BlockID == field || strings.HasPrefix(ib.BlockID, field+".")) {
			return ib.BlockID
		}
	}
	if v.State != nil {
		for bid := range v.State.Values {
			if bid == field || strings.HasPrefix(bid, field+".") {
				return bid
			}
		}
	}
	return fallback
}

// refusal puts an error next to the field it concerns (or next to fallback).
func refusal(v slack.View, err error, fallback string) *slack.ViewSubmissionResponse {
	block := fallback
	var fe *bot.FieldError
	if errors.As(err, &fe) {
		block = blockFor(v, fe.Field, fallback)
	}
	return slack.NewErrorsViewSubmissionResponse(map[string]string{block: truncate(describe(err), 300)})
}

// formInput reads the activation form.
func formInput(v slack.View) (bot.SubmitInput, error) {
	var in bot.SubmitInput
	if a, ok := state(v, actGroup); ok {
		in.Group = a.SelectedOption.Value
	}
	if a, ok := state(v, actAccess); ok && a.SelectedOption.Value != "" {
		acc, ok := bot.ParseAccess(a.SelectedOption.Value)
		if !ok {
			return in, &bot.FieldError{Field: bot.FieldAccess, Message: "choose member or owner"}
		}
		in.Access = acc
	}
	if a, ok := state(v, actDuration); ok && a.SelectedOption.Value != "" {
		secs, err := strconv.ParseInt(a.SelectedOption.Value, 10, 64)
		if err != nil || secs <= 0 {
			return in, &bot.FieldError{Field: bot.FieldDuration, Message: "choose a duration from the list"}
		}
		in.Duration = time.Duration(secs) * time.Second
	}
	if a, ok := state(v, actStart); ok && a.SelectedDateTime > 0 {
		opened := parseMeta(v.PrivateMetadata).Opened
		chosen := time.Unix(a.SelectedDateTime, 0)
		// Left at the default the form showed: as soon as possible, however long the form stayed open.
		if opened == 0 || chosen.Sub(time.Unix(opened, 0).Truncate(time.Minute)).Abs() >= time.Minute {
			in.Start = chosen
		}
	}
	if a, ok := state(v, actReason); ok {
		in.Reason = a.Value
	}
	if a, ok := state(v, actTicket); ok {
		in.Ticket = a.Value
	}
	if in.Group == "" {
		return in, &bot.FieldError{Field: bot.FieldGroup, Message: "choose a group"}
	}
	return in, nil
}

func (s *Surface) submitForm(ctx context.Context, cb slack.InteractionCallback) any {
	u, err := s.identify(ctx, cb.User.ID)
	if err != nil {
		return refusal(cb.View, err, actGroup)
	}
	in, err := formInput(cb.View)
	if err != nil {
		return refusal(cb.View, err, actGroup)
	}
	in.Group = s.groupByValue(in.Group)
	r, err := s.eng.Submit(ctx, s.actor(u), in)
	if err != nil {
		return refusal(cb.View, err, actGroup)
	}
	v := fitView(submittedModal(r, s.groupOf(r), s.now(), s.loc()))
	return slack.NewUpdateViewSubmissionResponse(&v)
}

func (s *Surface) submitDeny(ctx context.Context, cb slack.InteractionCallback) any {
	u, err := s.identify(ctx, cb.User.ID)
	if err != nil {
		return refusal(cb.View, err, actReason)
	}
	reason := ""
	if a, ok := state(cb.View, actReason); ok {
		reason = a.Value
	}
	if _, err := s.eng.Deny(ctx, s.actor(u), cb.View.PrivateMetadata, reason); err != nil {
		return refusal(cb.View, err, actReason)
	}
	s.refreshOwnHome(ctx, u, cb.User.ID)
	return nil
}

func (s *Surface) submitExtend(ctx context.Context, cb slack.InteractionCallback) any {
	u, err := s.identify(ctx, cb.User.ID)
	if err != nil {
		return refusal(cb.View, err, actDuration)
	}
	var d time.Duration
	if a, ok := state(cb.View, actDuration); ok && strings.TrimSpace(a.Value) != "" {
		if d, err = bot.ParseDuration(a.Value); err != nil {
			return refusal(cb.View, &bot.FieldError{Field: bot.FieldDuration, Message: err.Error()}, actDuration)
		}
		if d <= 0 { // "0m" is not "the default": nothing to extend by
			return refusal(cb.View, &bot.FieldError{Field: bot.FieldDuration,
				Message: strings.TrimSpace(a.Value) + " is no extension; extend by at least 1m (or leave it empty for the default)"}, actDuration)
		}
	}
	reason := ""
	if a, ok := state(cb.View, actReason); ok {
		reason = a.Value
	}
	if _, err := s.eng.Extend(ctx, s.actor(u), cb.View.PrivateMetadata, d, reason); err != nil {
		return refusal(cb.View, err, actDuration)
	}
	return nil
}

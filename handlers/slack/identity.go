package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pimbot/pimbot/bot"
	"github.com/slack-go/slack"
)

// personError is a refusal to map a Slack user to a directory user. md is mrkdwn (what
// it quotes is escaped; it may hold a sign-in link), plain the same in plain text for modals.
type personError struct{ md, plain string }

func (e *personError) Error() string { return e.plain }

func refuse(plain string) *personError { return &personError{md: esc(plain), plain: plain} }

// describe turns any error into plain words for the person who acted.
func describe(err error) string {
	var pe *personError
	if errors.As(err, &pe) {
		return pe.plain
	}
	return bot.Describe(err)
}

// say turns any error into mrkdwn for the person who acted, escaped.
func say(err error) string {
	var pe *personError
	if errors.As(err, &pe) {
		return pe.md
	}
	return esc(bot.Describe(err))
}

// KV keys. Slack user ids are unique within a workspace (and an Enterprise Grid).
func keyUser(slackID string) string   { return "slack:user:" + slackID } // -> bot.User JSON (e-mail binding)
func keySlackID(dirID string) string  { return "slack:uid:" + dirID }    // -> Slack user id
func keyEmail(email string) string    { return "slack:email:" + strings.ToLower(email) }
func keyEligible(dirID string) string { return "slack:eligible:" + dirID } // -> group names JSON
func keyApproval(reqID string) string { return "slack:approval:" + reqID } // -> approvalRef JSON
func keyEvent(eventID string) string  { return "slack:event:" + eventID }
func keySent(parts ...string) string  { return "slack:sent:" + strings.Join(parts, ":") }

// userKey is where the directory user of a Slack user is cached. Each identity_binding mode
// has its own keys, so a change of mode never serves an answer of the other.
func (s *Surface) userKey(slackID string) string {
	if s.eng.Policy().Settings.IdentityBinding == bindingSignin {
		return "slack:user:" + bindingSignin + ":" + slackID
	}
	return keyUser(slackID)
}

// cachedUser is the directory user of a Slack user if the cache knows it (no remote call).
func (s *Surface) cachedUser(ctx context.Context, slackID string) (bot.User, bool) {
	v, ok, err := s.kv.GetValue(ctx, s.userKey(slackID))
	if err != nil || !ok {
		return bot.User{}, false
	}
	var u bot.User
	if json.Unmarshal([]byte(v), &u) != nil || u.ID == "" {
		return bot.User{}, false
	}
	return u, true
}

// identify maps a Slack user to a directory user by the e-mail on their Slack profile
// (users.info, scope users:read.email), cached with a TTL. It also remembers the Slack id
// of the directory user, so that DMs can reach them later.
func (s *Surface) identify(ctx context.Context, slackID string) (bot.User, error) {
	if slackID == "" {
		return bot.User{}, refuse("Slack did not say who you are; please try again.")
	}
	if u, ok := s.cachedUser(ctx, slackID); ok {
		return u, nil
	}
	email, err := s.profileEmail(ctx, slackID)
	if err != nil {
		return bot.User{}, err
	}
	if s.eng.Policy().Settings.IdentityBinding == bindingSignin {
		return s.identifyBound(ctx, slackID, email)
	}
	u, err := s.eng.Directory().ResolveUser(ctx, email)
	if errors.Is(err, bot.ErrNotFound) {
		return bot.User{}, refuse(fmt.Sprintf("Your Slack e-mail address (%s) matches no one in the directory, so pimbot cannot act for you. Ask your administrators to check your account.", email))
	}
	if err != nil {
		return bot.User{}, fmt.Errorf("resolve %s: %w", email, bot.Unavailable("the directory", err))
	}
	s.cache(ctx, slackID, u)
	return u, nil
}

// profileEmail is the e-mail Slack vouches for on a person's profile (users.info, scope
// users:read.email); bots and deactivated accounts are refused.
func (s *Surface) profileEmail(ctx context.Context, slackID string) (string, error) {
	info, err := s.api.GetUserInfoContext(ctx, slackID)
	if err != nil {
		return "", fmt.Errorf("slack users.info %s: %w", slackID, bot.Unavailable("Slack (users.info)", err))
	}
	if info.IsBot || info.Deleted {
		return "", refuse("Bots and deactivated accounts cannot use pimbot.")
	}
	email := strings.TrimSpace(info.Profile.Email)
	if email == "" {
		return "", refuse("Your Slack profile shows no e-mail address to pimbot, so it cannot tell who you are in the directory. Ask your Slack administrators to let apps read e-mail addresses (scope users:read.email).")
	}
	return email, nil
}

func (s *Surface) cache(ctx context.Context, slackID string, u bot.User) {
	if b, err := json.Marshal(u); err == nil {
		if err := s.kv.SetValue(ctx, s.userKey(slackID), string(b), s.opt.IdentityTTL); err != nil {
			s.log.Warn("cache slack identity", "err", err)
		}
	}
	s.remember(ctx, u, slackID)
}

// identifyBound maps a Slack user to the directory user they proved to be by a sign-in
// (settings.identity_binding: entra_signin), instead of trusting the profile e-mail alone:
// the sign-in must be by the person whose address the profile shows (email).
func (s *Surface) identifyBound(ctx context.Context, slackID, email string) (bot.User, error) {
	id, ok, err := s.opt.Binder.Bound(ctx, Name, slackID)
	if err != nil {
		return bot.User{}, fmt.Errorf("read the sign-in binding: %w", bot.Unavailable("the sign-in store", err))
	}
	if !ok {
		ch, err := s.opt.Binder.StartBinding(ctx, bot.ChatAccount{Surface: Name, ID: slackID, Email: email})
		if err != nil {
			return bot.User{}, fmt.Errorf("start the sign-in binding: %w", bot.Unavailable("the Microsoft sign-in", err))
		}
		plain := "Before pimbot can act for you, sign in with Microsoft once so that it knows who you are; the link is in the Home tab and in /activate status."
		md := "Before pimbot can act for you, sign in with Microsoft once so that it knows who you are."
		if strings.HasPrefix(ch.URL, "https://") {
			md += " <" + esc(ch.URL) + "|Sign in with Microsoft>"
			if ch.UserCode != "" {
				md += " and enter the code `" + esc(ch.UserCode) + "`"
			}
			md += ", then try again."
		}
		return bot.User{}, &personError{md: md, plain: plain}
	}
	u, err := s.eng.Directory().ResolveUser(ctx, id)
	if errors.Is(err, bot.ErrNotFound) {
		return bot.User{}, refuse("The directory account you signed in with no longer exists. Ask your administrators.")
	}
	if err != nil {
		return bot.User{}, fmt.Errorf("resolve %s: %w", id, bot.Unavailable("the directory", err))
	}
	if !s.eng.Policy().Settings.Owns(email, u) {
		// A binding is only as good as the account's owner: one made by someone else (or
		// before the profile changed hands) does not count.
		return bot.User{}, refuse(fmt.Sprintf("Your Slack account (%s) is linked to %s, whose address is not yours, so pimbot will not act on it. Ask your administrators to check the account.", email, u.Handle()))
	}
	s.cache(ctx, slackID, u)
	return u, nil
}

// remember keeps the Slack id of a directory user (and of their e-mail) for later DMs.
func (s *Surface) remember(ctx context.Context, u bot.User, slackID string) {
	if err := s.kv.SetValue(ctx, keySlackID(u.ID), slackID, s.opt.RefTTL); err != nil {
		s.log.Warn("remember slack id", "err", err)
	}
	if u.Email != "" {
		_ = s.kv.SetValue(ctx, keyEmail(u.Email), slackID, s.opt.RefTTL)
	}
}

// slackIDOf finds the Slack user of a directory user: remembered, else users.lookupByEmail.
// ok is false when Slack knows no such user (not an error worth retrying).
func (s *Surface) slackIDOf(ctx context.Context, u bot.User) (string, bool, error) {
	if u.ID != "" {
		if id, ok, err := s.kv.GetValue(ctx, keySlackID(u.ID)); err == nil && ok {
			return id, true, nil
		}
	}
	email := u.Email
	if email == "" {
		email = u.UPN
	}
	return s.slackIDByEmail(ctx, email)
}

func (s *Surface) slackIDByEmail(ctx context.Context, email string) (string, bool, error) {
	if !strings.Contains(email, "@") {
		return "", false, nil
	}
	if id, ok, err := s.kv.GetValue(ctx, keyEmail(email)); err == nil && ok {
		return id, true, nil
	}
	su, err := s.api.GetUserByEmailContext(ctx, email)
	if err != nil {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) && (se.Err == "users_not_found" || se.Err == "user_not_found") {
			return "", false, nil
		}
		return "", false, fmt.Errorf("slack users.lookupByEmail: %w", err)
	}
	_ = s.kv.SetValue(ctx, keyEmail(email), su.ID, s.opt.IdentityTTL*24)
	return su.ID, true, nil
}

// cachedEligible is the cached list of groups u may activate (no directory call).
func (s *Surface) cachedEligible(ctx context.Context, u bot.User) ([]*bot.Group, bool) {
	v, ok, err := s.kv.GetValue(ctx, keyEligible(u.ID))
	if err != nil || !ok {
		return nil, false
	}
	var names []string
	if json.Unmarshal([]byte(v), &names) != nil {
		return nil, false
	}
	var out []*bot.Group
	for _, n := range names {
		if g, ok := s.eng.Policy().Group(n); ok {
			out = append(out, g)
		}
	}
	return out, true
}

// eligible lists the groups u may activate, from the cache or the engine. Only the form's
// choices come from here: the engine checks eligibility again on every submit.
func (s *Surface) eligible(ctx context.Context, u bot.User) ([]*bot.Group, error) {
	if gs, ok := s.cachedEligible(ctx, u); ok {
		return gs, nil
	}
	gs, err := s.eng.EligibleGroups(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("eligible groups: %w", bot.Unavailable("the directory", err))
	}
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = g.Name
	}
	if b, err := json.Marshal(names); err == nil {
		_ = s.kv.SetValue(ctx, keyEligible(u.ID), string(b), s.opt.EligibleTTL)
	}
	return gs, nil
}

// unlink undoes the sign-in link of the person's own Slack account (identity_binding:
// entra_signin); the next action needs a new sign-in. The audit trail records it.
func (s *Surface) unlink(ctx context.Context, o origin) {
	if s.eng.Policy().Settings.IdentityBinding != bindingSignin || s.opt.Binder == nil {
		s.tellText(ctx, o, "This bot does not link Slack accounts by signing in (settings.identity_binding is email): there is nothing to unlink.")
		return
	}
	email, err := s.profileEmail(ctx, o.UserID)
	if err != nil {
		s.tellErr(ctx, o, err)
		return
	}
	ok, err := s.opt.Binder.Unbind(ctx, bot.ChatAccount{Surface: Name, ID: o.UserID, Email: email})
	if err != nil {
		s.tellErr(ctx, o, fmt.Errorf("unlink: %w", errors.Join(bot.ErrUnavailable, err)))
		return
	}
	_ = s.kv.DeleteValue(ctx, s.userKey(o.UserID))
	if !ok {
		s.tellText(ctx, o, "Your Slack account is not linked to a Microsoft account: there is nothing to unlink.")
		return
	}
	s.tellText(ctx, o, "Your Slack account is no longer linked to your Microsoft account. The next time you use pimbot, it asks you to sign in again.")
}

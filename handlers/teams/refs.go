package teams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/infracloudio/msbotbuilder-go/schema"
	"github.com/pimbot/pimbot/bot"
)

// What a restart needs lives in the bot.KV (Redis), never only in memory: several replicas
// may run, and Teams bots that kept conversation references in memory went silent after
// each restart.

// KV key prefixes and lifetimes.
const (
	keyUser    = "teams:user:"    // + directory user id (= Entra object id): userRef
	keyChannel = "teams:channel:" // + Teams channel or team id: channelRef
	keyCard    = "teams:card:"    // + request id: cardRef of the approvers' card
	keyService = "teams:service"  // the latest serviceUrl and bot account seen (a fallback)
	keySent    = "teams:sent:"    // + delivery key: a notification already delivered
	keySeen    = "teams:seen:"    // + activity id: an inbound activity already handled

	refTTL  = 400 * 24 * time.Hour // refreshed whenever the person or channel is seen
	cardTTL = 90 * 24 * time.Hour
	sentTTL = 14 * 24 * time.Hour
	seenTTL = time.Hour
)

// userRef is how to reach a person in Teams without them writing first.
type userRef struct {
	UserID         string `json:"user_id"`  // directory user id (Entra object id)
	TeamsID        string `json:"teams_id"` // 29:...
	Name           string `json:"name,omitempty"`
	TenantID       string `json:"tenant_id,omitempty"`
	ServiceURL     string `json:"service_url"`
	BotID          string `json:"bot_id"`
	ConversationID string `json:"conversation_id,omitempty"` // the personal chat, once known
	Timezone       string `json:"timezone,omitempty"`        // IANA name from the client
}

// channelRef is how to post into a Teams channel.
type channelRef struct {
	ChannelID  string `json:"channel_id"`
	TeamID     string `json:"team_id,omitempty"`
	TenantID   string `json:"tenant_id,omitempty"`
	ServiceURL string `json:"service_url"`
	BotID      string `json:"bot_id,omitempty"`
}

// cardRef is the approvers' card of a request, to update it in place.
type cardRef struct {
	ServiceURL     string `json:"service_url"`
	ConversationID string `json:"conversation_id"`
	ActivityID     string `json:"activity_id"`
	Version        int64  `json:"version"` // the request version the card shows
}

func (s *Surface) getJSON(ctx context.Context, key string, out any) (bool, error) {
	v, ok, err := s.kv.GetValue(ctx, key)
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal([]byte(v), out); err != nil {
		return false, fmt.Errorf("decode %s: %w", key, err)
	}
	return true, nil
}

func (s *Surface) putJSON(ctx context.Context, key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.kv.SetValue(ctx, key, string(b), ttl)
}

// remember keeps the conversation references an activity reveals: the sender's (with the
// personal chat when it is one) and the channel's and team's. It only writes what changed.
//
// sender is the directory user that the activity's own from.aadObjectId resolved to (nil:
// none). A person's reference is keyed by their directory user id, which is their Entra
// object id, so it is written only when that id is the activity's from.aadObjectId: one
// person's activity never replaces another person's reference, whatever the directory
// answered.
func (s *Surface) remember(ctx context.Context, act *schema.Activity, sender *bot.User) error {
	td := teamsData(act)
	var errs []error
	userID := ""
	if sender != nil && act.From.ID != "" {
		if strings.EqualFold(sender.ID, act.From.AadObjectID) {
			userID = sender.ID
		} else {
			errs = append(errs, fmt.Errorf("directory user %s is not the sender's object id %s: their conversation reference is left as it was",
				sender.ID, truncateRunes(act.From.AadObjectID, 40)))
		}
	}
	if userID != "" {
		var old userRef
		_, err := s.getJSON(ctx, keyUser+userID, &old)
		if err != nil {
			errs = append(errs, err)
		}
		ref := userRef{UserID: userID, TeamsID: act.From.ID, Name: act.From.Name, TenantID: td.tenantID,
			ServiceURL: act.ServiceURL, BotID: act.Recipient.ID, ConversationID: old.ConversationID, Timezone: old.Timezone}
		if isPersonal(act) {
			ref.ConversationID = act.Conversation.ID
		}
		if act.LocalTimezone != "" {
			ref.Timezone = act.LocalTimezone
		}
		if ref != old {
			errs = append(errs, s.putJSON(ctx, keyUser+userID, ref, refTTL))
		}
	}
	for _, id := range []string{td.channelID, td.teamID} {
		if id == "" {
			continue
		}
		ref := channelRef{ChannelID: id, TeamID: td.teamID, TenantID: td.tenantID, ServiceURL: act.ServiceURL, BotID: act.Recipient.ID}
		var old channelRef
		if ok, _ := s.getJSON(ctx, keyChannel+id, &old); !ok || old != ref {
			errs = append(errs, s.putJSON(ctx, keyChannel+id, ref, refTTL))
		}
	}
	svc := channelRef{ServiceURL: act.ServiceURL, TenantID: td.tenantID, BotID: act.Recipient.ID}
	var old channelRef
	if ok, _ := s.getJSON(ctx, keyService, &old); !ok || old != svc {
		errs = append(errs, s.putJSON(ctx, keyService, svc, refTTL))
	}
	return errors.Join(errs...)
}

// ErrNoServiceURL: a post into a channel the bot has not heard from has nowhere to go, since
// no activity brought a serviceUrl and none is configured (Config.ServiceURL).
var ErrNoServiceURL = errors.New("no Bot Connector service URL: the bot has not heard from this channel or its tenant yet, and " +
	EnvServiceURL + " is not set (one of " + ServiceURLCommercial + ", " + ServiceURLGCC + ", " + ServiceURLGCCHigh + ", " + ServiceURLDoD + ")")

// channelTarget finds where to post in a channel: its own reference; else the configured
// ServiceURL (the operator's word for the tenant's cloud); else the latest serviceUrl an
// activity brought; else nowhere (ErrNoServiceURL, logged): never a guessed host.
func (s *Surface) channelTarget(ctx context.Context, channelID string) (channelRef, error) {
	var ref channelRef
	ok, err := s.getJSON(ctx, keyChannel+channelID, &ref)
	if err != nil {
		return ref, err
	}
	if ok {
		return ref, nil
	}
	if s.serviceURL != "" {
		return channelRef{ChannelID: channelID, TenantID: s.tenant, ServiceURL: s.serviceURL}, nil
	}
	var svc channelRef
	if _, err := s.getJSON(ctx, keyService, &svc); err != nil {
		return ref, err
	}
	if svc.ServiceURL == "" {
		s.log.Error("cannot post to a Teams channel the bot has not heard from", "channel", channelID, "setting", EnvServiceURL, "err", ErrNoServiceURL)
		return ref, fmt.Errorf("post to %s: %w", channelID, ErrNoServiceURL)
	}
	svc.ChannelID = channelID
	return svc, nil
}

// KnowsChannel reports whether the bot has seen the channel (or its team) and so knows its
// serviceUrl; otherwise it posts there through the configured ServiceURL, else the latest
// serviceUrl seen, else not at all (ErrNoServiceURL).
func (s *Surface) KnowsChannel(ctx context.Context, channelID string) (bool, error) {
	var ref channelRef
	return s.getJSON(ctx, keyChannel+channelID, &ref)
}

// teamsChannelData is the part of an activity's channelData the bot uses.
type teamsChannelData struct {
	tenantID, channelID, teamID string
}

func teamsData(act *schema.Activity) teamsChannelData {
	str := func(m map[string]any, path ...string) string {
		var cur any = m
		for _, p := range path {
			mm, ok := cur.(map[string]any)
			if !ok {
				return ""
			}
			cur = mm[p]
		}
		s, _ := cur.(string)
		return s
	}
	d := teamsChannelData{
		tenantID:  str(act.ChannelData, "tenant", "id"),
		channelID: str(act.ChannelData, "channel", "id"),
		teamID:    str(act.ChannelData, "team", "id"),
	}
	if d.tenantID == "" {
		d.tenantID = act.Conversation.TenantID
	}
	return d
}

func isPersonal(act *schema.Activity) bool {
	if act.Conversation.ConversationType != "" {
		return act.Conversation.ConversationType == "personal"
	}
	return !act.Conversation.IsGroup && !strings.HasPrefix(act.Conversation.ID, "19:")
}

package teams

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/infracloudio/msbotbuilder-go/schema"
	"github.com/pimbot/pimbot/bot"
)

// ServeHTTP is POST /api/messages. The token is checked before the body is read: without a
// valid one the answer is 401 and nothing happens. Then: over MaxBody 413, not an activity
// 400, a serviceUrl other than the token's 401, and an activity that is not from Teams, or not
// from the configured tenant, 403 (see admit); none of these is acted on.
//
// msbotbuilder-go's ParseRequest reads the body first and ProcessActivity always posts the
// handler's result as a new message, so neither is used here: an invoke
// (adaptiveCard/action) is answered in the HTTP response, and messages get their reply
// through the connector client, which returns the posted activity's id.
func (s *Surface) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	claims, err := s.v.Verify(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		if errors.Is(err, ErrKeysUnavailable) {
			s.log.Warn("cannot check Bot Framework tokens: no signing keys", "err", err)
			http.Error(w, "signing keys unavailable", http.StatusServiceUnavailable)
			return
		}
		s.log.Info("rejected a request without a valid Bot Framework token", "err", err, "remote", r.RemoteAddr)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if r.ContentLength > s.maxBody {
		http.Error(w, "activity too large", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "activity too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read the activity", http.StatusBadRequest)
		return
	}
	var act schema.Activity
	if err := json.Unmarshal(body, &act); err != nil || act.Type == "" {
		http.Error(w, "not a Bot Framework activity", http.StatusBadRequest)
		return
	}
	if err := claims.Check(&act); err != nil {
		s.log.Info("rejected an activity that does not match its token", "err", err, "remote", r.RemoteAddr)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if err := s.admit(&act); err != nil {
		s.log.Warn("refused an authenticated activity", "err", err, "type", truncateRunes(string(act.Type), 40), "remote", r.RemoteAddr)
		http.Error(w, "forbidden: this bot serves Microsoft Teams activities of its own organization only", http.StatusForbidden)
		return
	}
	ctx, cancel := bounded(r.Context())
	defer cancel()
	if act.Type == schema.Invoke {
		s.onInvoke(ctx, w, &act)
		return
	}
	if s.firstDelivery(ctx, &act) {
		switch act.Type {
		case schema.Message:
			s.onMessage(ctx, &act)
		case schema.ConversationUpdate, "installationUpdate":
			s.onInstall(ctx, &act)
		}
	}
	w.WriteHeader(http.StatusOK)
}

// firstDelivery drops a redelivered activity (Teams retries when an answer is slow).
func (s *Surface) firstDelivery(ctx context.Context, act *schema.Activity) bool {
	if act.ID == "" {
		return true
	}
	fresh, err := s.kv.PutIfAbsent(ctx, keySeen+act.Conversation.ID+"|"+act.ID, "1", seenTTL)
	return err != nil || fresh
}

// invokeResponse is the body of the answer to an adaptiveCard/action invoke.
type invokeResponse struct {
	StatusCode int    `json:"statusCode"`
	Type       string `json:"type"`
	Value      any    `json:"value"`
}

const (
	invokeCard    = "application/vnd.microsoft.card.adaptive"
	invokeMessage = "application/vnd.microsoft.activity.message"
)

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

// onInvoke answers Action.Execute in the HTTP response: a card that replaces the one clicked,
// or a message shown only to the person who clicked (refusals: the card stays as it was).
func (s *Surface) onInvoke(ctx context.Context, w http.ResponseWriter, act *schema.Activity) {
	if act.Name != "adaptiveCard/action" {
		http.Error(w, "invoke not supported", http.StatusNotImplemented)
		return
	}
	action, _ := act.Value["action"].(map[string]any)
	verb, _ := action["verb"].(string)
	data, _ := action["data"].(map[string]any)
	if verb == "" {
		verb, _ = data["verb"].(string)
	}
	who, problem := s.identify(ctx, act)
	if problem != "" {
		writeJSON(w, invokeResponse{StatusCode: 200, Type: invokeMessage, Value: problem})
		return
	}
	res := s.cardAction(ctx, who, act, verb, data)
	if res.card != nil {
		writeJSON(w, invokeResponse{StatusCode: 200, Type: invokeCard, Value: res.card})
		return
	}
	writeJSON(w, invokeResponse{StatusCode: 200, Type: invokeMessage, Value: res.message})
}

// onMessage handles text commands, and card submits of hosts without Universal Actions
// (Action.Submit arrives as a message whose value holds the card's data).
func (s *Surface) onMessage(ctx context.Context, act *schema.Activity) {
	who, problem := s.identify(ctx, act)
	if problem != "" {
		s.reply(ctx, act, MessageCard("Sorry", problem, toneAttention), "Sorry")
		return
	}
	if len(act.Value) > 0 {
		verb, _ := act.Value["verb"].(string)
		res := s.cardAction(ctx, who, act, verb, act.Value)
		if res.card != nil && act.ReplyToID != "" {
			err := s.conn.Update(ctx, act.ServiceURL, act.Conversation.ID, act.ReplyToID, CardMessage(res.card, ""))
			if err == nil {
				return
			}
			s.log.Warn("update the card that was clicked", "err", err)
		}
		if res.card != nil {
			s.reply(ctx, act, res.card, "")
			return
		}
		s.reply(ctx, act, MessageCard("", res.message, toneDefault), "")
		return
	}
	card, summary := s.command(ctx, who, act, commandText(act.Text))
	s.reply(ctx, act, card, summary)
}

// onInstall welcomes people who add the bot, and tells a team where its channel id is.
func (s *Surface) onInstall(ctx context.Context, act *schema.Activity) {
	added := act.Action == "add"
	for _, m := range act.MembersAdded {
		if m.ID != "" && m.ID == act.Recipient.ID {
			added = true
		}
	}
	_, _ = s.identify(ctx, act) // keeps the installer's and the team's references
	if !added {
		return
	}
	if isPersonal(act) {
		s.reply(ctx, act, HelpCard(), "pimbot: just-in-time access to Entra ID groups")
		return
	}
	if td := teamsData(act); td.channelID != "" || td.teamID != "" {
		id := td.channelID
		if id == "" {
			id = td.teamID
		}
		s.reply(ctx, act, ChannelIDCard(id), "")
	}
}

// reply posts a card into the conversation an activity came from (in a channel: its thread).
func (s *Surface) reply(ctx context.Context, act *schema.Activity, card Card, summary string) {
	m := CardMessage(card, summary)
	m.ReplyToID = act.ID
	if _, err := s.conn.Send(ctx, act.ServiceURL, act.Conversation.ID, m); err != nil {
		s.log.Warn("reply", "conversation", act.Conversation.ID, "err", err)
	}
}

var guidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// identify resolves the sender to a directory user through their Entra object id (Teams
// sends it as from.aadObjectId; admit has made sure Teams sent the activity) and keeps the
// conversation references the activity reveals. A non-empty problem is what to tell the
// person instead.
func (s *Surface) identify(ctx context.Context, act *schema.Activity) (bot.Actor, string) {
	oid := act.From.AadObjectID
	if !guidRe.MatchString(oid) {
		s.rememberOrLog(ctx, act, nil)
		return bot.Actor{}, "I can't tell who you are: Teams did not send your Entra ID object id."
	}
	u, err := s.eng.Directory().ResolveUser(ctx, oid)
	if err != nil {
		s.rememberOrLog(ctx, act, nil)
		if errors.Is(err, bot.ErrNotFound) {
			return bot.Actor{}, "You are not in the directory pimbot uses, so you can't request or approve access here."
		}
		s.log.Warn("resolve a Teams user", "aad_object_id", oid, "err", err)
		return bot.Actor{}, bot.Describe(errors.Join(bot.ErrUnavailable, err))
	}
	if !strings.EqualFold(u.ID, oid) {
		// A directory user's id is their object id. Another id means the directory matched
		// the object id some other way (a local directory's upn or e-mail): acting, or
		// keeping a reference, as that user would let one person pass for another.
		s.log.Warn("the directory resolved a Teams object id to a user with another id; not acting on it", "aad_object_id", oid, "user_id", u.ID)
		s.rememberOrLog(ctx, act, nil)
		return bot.Actor{}, "You are not in the directory pimbot uses, so you can't request or approve access here."
	}
	s.rememberOrLog(ctx, act, &u)
	return bot.Actor{User: u, Surface: Name}, ""
}

func (s *Surface) rememberOrLog(ctx context.Context, act *schema.Activity, sender *bot.User) {
	if err := s.remember(ctx, act, sender); err != nil {
		s.log.Warn("keep conversation references", "err", err)
	}
}

var mentionRe = regexp.MustCompile(`(?is)<at[^>]*>.*?</at>`)

// commandText strips mentions of the bot and Teams' markup from a message's text.
func commandText(text string) string {
	text = mentionRe.ReplaceAllString(text, " ")
	text = strings.NewReplacer("&nbsp;", " ", "&amp;", "&", "&lt;", "<", "&gt;", ">", "&quot;", `"`, "&#39;", "'").Replace(text)
	return strings.Join(strings.Fields(text), " ")
}

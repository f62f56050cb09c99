package slack

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// Routes mounts the HTTP transport: POST /slack/commands, /slack/interactions and
// /slack/events. Each request is checked before anything happens: 401 for a missing or
// bad signature or a timestamp more than 5 minutes off, 413 for a body over the limit,
// 400 for a malformed one.
func (s *Surface) Routes(mux *http.ServeMux) {
	mux.Handle("POST /slack/commands", s.sslCheck(s.signed(s.serveCommand)))
	mux.Handle("POST /slack/interactions", s.signed(s.serveInteraction))
	mux.Handle("POST /slack/events", s.signed(s.serveEvents))
}

// sslCheck answers Slack's certificate checks of the slash-command URL with 200 and nothing
// else: "ssl_check=1" with a token and no command, which Slack may send unsigned
// (https://api.slack.com/interactivity/slash-commands#ssl). Everything else goes on to
// next with its body intact.
func (s *Surface) sslCheck(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opt.MaxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "could not read the request body", http.StatusBadRequest)
			return
		}
		if v, err := url.ParseQuery(string(body)); err == nil && v.Get("ssl_check") == "1" && v.Get("command") == "" {
			w.WriteHeader(http.StatusOK)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// signed verifies Slack's signature over the raw body, then hands the body on.
func (s *Surface) signed(h func(w http.ResponseWriter, r *http.Request, body []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sv, err := slack.NewSecretsVerifier(r.Header, s.secret) // headers present, timestamp within 5 minutes
		if err != nil {
			http.Error(w, "invalid request signature", http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opt.MaxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "could not read the request body", http.StatusBadRequest)
			return
		}
		if _, err := sv.Write(body); err != nil || sv.Ensure() != nil {
			http.Error(w, "invalid request signature", http.StatusUnauthorized)
			return
		}
		h(w, r, body)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	if v == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (s *Surface) serveCommand(w http.ResponseWriter, r *http.Request, body []byte) {
	v, err := url.ParseQuery(string(body))
	if err != nil || v.Get("user_id") == "" || v.Get("command") == "" {
		http.Error(w, "malformed slash command", http.StatusBadRequest)
		return
	}
	cmd := slack.SlashCommand{
		Token: v.Get("token"), TeamID: v.Get("team_id"), TeamDomain: v.Get("team_domain"),
		EnterpriseID: v.Get("enterprise_id"), ChannelID: v.Get("channel_id"), ChannelName: v.Get("channel_name"),
		UserID: v.Get("user_id"), UserName: v.Get("user_name"), Command: v.Get("command"), Text: v.Get("text"),
		ResponseURL: v.Get("response_url"), TriggerID: v.Get("trigger_id"), APIAppID: v.Get("api_app_id"),
	}
	writeJSON(w, s.command(r.Context(), cmd))
}

func (s *Surface) serveInteraction(w http.ResponseWriter, r *http.Request, body []byte) {
	v, err := url.ParseQuery(string(body))
	payload := v.Get("payload")
	if err != nil || payload == "" {
		http.Error(w, "malformed interaction: no payload", http.StatusBadRequest)
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(payload), &cb); err != nil || cb.Type == "" {
		http.Error(w, "malformed interaction payload", http.StatusBadRequest)
		return
	}
	writeJSON(w, s.interaction(r.Context(), cb))
}

func (s *Surface) serveEvents(w http.ResponseWriter, r *http.Request, body []byte) {
	var outer struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
		EventID   string `json:"event_id"`
	}
	if err := json.Unmarshal(body, &outer); err != nil || outer.Type == "" {
		http.Error(w, "malformed event", http.StatusBadRequest)
		return
	}
	switch outer.Type {
	case slackevents.URLVerification:
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, outer.Challenge)
		return
	case slackevents.CallbackEvent:
		ev, err := slackevents.ParseEvent(body, slackevents.OptionNoVerifyToken())
		if err != nil {
			// An event type we do not subscribe to: acknowledge, so that Slack does not retry it.
			s.log.Debug("slack event not handled", "err", err)
			w.WriteHeader(http.StatusOK)
			return
		}
		s.event(r.Context(), outer.EventID, ev)
	}
	w.WriteHeader(http.StatusOK)
}

// Package slackfake is a fake Slack Web API on loopback for tests: the real slack-go
// client is pointed at it (OptionAPIURL) and it answers in Slack's wire format, with
// Slack's error bodies and some of Slack's limits (trigger ids that last 3 s and work
// once, view and Block Kit limits, message text length, DMs only to known users, and, when
// asked, the per-channel posting limit with HTTP 429 and late answers). It keeps message
// metadata and serves conversations.history and conversations.open. It also takes
// response_url posts and serves a Socket Mode WebSocket.
package slackfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Slack's limits the fake enforces.
const (
	TriggerTTL         = 3 * time.Second
	MaxMessageText     = 4000
	MaxMessageBlocks   = 50
	MaxViewBlocks      = 100
	MaxSectionText     = 3000
	MaxFieldText       = 2000
	MaxButtonValue     = 2000
	MaxViewTitle       = 24
	MaxPrivateMetadata = 3000
	MaxHeaderText      = 150 // header block text (plain_text)
	MaxBlockID         = 255
	MaxContextElements = 10  // context block elements
	MaxOptionText      = 75  // an option's text (plain_text)
	MaxOptionValue     = 150 // an option's value
	MaxOptions         = 100 // options of a static select (or option groups)
	// SlackPostInterval and SlackPostBurst are Slack's posting limit: "1 message per second
	// per channel", with "short bursts" allowed
	// (https://api.slack.com/docs/rate-limits#rate-limits__limits-when-posting-messages).
	SlackPostInterval = time.Second
	SlackPostBurst    = 3
)

// User is a Slack user the fake knows.
type User struct {
	ID, Email, Name string
	IsBot           bool
}

// Call is one request the fake received.
type Call struct {
	Method string         // e.g. "views.open", "chat.postMessage"; "response" for a response_url post
	Path   string         // for response_url posts: the name given to ResponseURL
	Form   url.Values     // form-encoded calls
	JSON   map[string]any // JSON calls
	Raw    string
	At     time.Time
	Error  string // the error the fake answered with, "" for ok
	Status int    // the HTTP status answered (200 unless rate-limited)
	// Response is what the fake answered (without "ok"), e.g. the view with its id and hash.
	Response map[string]any
}

// Get reads a parameter of a form or JSON call as text (JSON values re-encoded).
func (c Call) Get(key string) string {
	if c.Form != nil {
		return c.Form.Get(key)
	}
	v, ok := c.JSON[key]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// Message is a message as the fake stores it.
type Message struct {
	Channel, TS, Text, Blocks string
	Metadata                  string // the metadata JSON posted with it ("" for none)
}

type trigger struct {
	issued time.Time
	used   bool
}

type view struct{ id, hash, raw string }

// Server is the fake.
type Server struct {
	Token    string
	AppToken string // the app-level token apps.connections.open accepts (Socket Mode)
	srv      *httptest.Server

	mu       sync.Mutex
	users    map[string]User
	channels map[string]bool
	triggers map[string]*trigger
	views    map[string]*view
	messages map[string]*Message // channel + "/" + ts
	calls    []Call
	changed  chan struct{}
	fail     map[string]string
	seq      int
	onCall   func(Call)
	// per-channel posting limit (RateLimit): interval 0 = off
	rlInterval time.Duration
	rlBurst    int
	rlTAT      map[string]time.Time
	late       map[string]*lateAnswer
	every      map[string]*everyK

	sockMu  sync.Mutex
	sock    *websocket.Conn
	sockUp  chan struct{}
	upgrade websocket.Upgrader
}

// New starts a fake that accepts the bot token; it stops when the test ends.
func New(t testing.TB, token string) *Server {
	s := &Server{Token: token, users: map[string]User{}, channels: map[string]bool{}, triggers: map[string]*trigger{},
		views: map[string]*view{}, messages: map[string]*Message{}, changed: make(chan struct{}), fail: map[string]string{},
		sockUp: make(chan struct{}), rlTAT: map[string]time.Time{}, late: map[string]*lateAnswer{}}
	// slack-go sends Origin: https://api.slack.com, as Slack expects.
	s.upgrade.CheckOrigin = func(r *http.Request) bool { return r.Header.Get("Origin") == "https://api.slack.com" }
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/response/", s.serveResponse)
	mux.HandleFunc("/socket", s.serveSocket)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		s.sockMu.Lock()
		if s.sock != nil {
			s.sock.Close()
		}
		s.sockMu.Unlock()
		s.srv.Close()
	})
	return s
}

// URL is the Web API base for slack.OptionAPIURL.
func (s *Server) URL() string { return s.srv.URL + "/api/" }

// ResponseURLPrefix is what every ResponseURL starts with.
func (s *Server) ResponseURLPrefix() string { return s.srv.URL + "/response/" }

// ResponseURL is a response_url that records posts under name.
func (s *Server) ResponseURL(name string) string { return s.ResponseURLPrefix() + name }

// AddUser makes a user known (users.info, users.lookupByEmail, DMs).
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = u
}

// AddChannel makes a channel the bot is a member of.
func (s *Server) AddChannel(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[id] = true
}

// Trigger issues a trigger id, as Slack does with each slash command and click.
func (s *Server) Trigger() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprintf("%d.%d.trigger%04d", time.Now().Unix(), s.seq, s.seq)
	s.triggers[id] = &trigger{issued: time.Now()}
	return id
}

// Fail makes the next call of method answer {"ok":false,"error":slackErr}.
func (s *Server) Fail(method, slackErr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[method] = slackErr
}

// RateLimit makes chat.postMessage and chat.update obey a posting limit per channel, as
// Slack does: one message per interval after a burst of burst messages; beyond it Slack
// answers HTTP 429 with Retry-After in whole seconds and {"ok":false,"error":"ratelimited"},
// and posts nothing. RateLimit(SlackPostInterval, SlackPostBurst) is Slack's own limit;
// tests may shrink the interval to run faster. An interval of 0 turns it off.
func (s *Server) RateLimit(interval time.Duration, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rlInterval, s.rlBurst = interval, max(burst, 1)
	s.rlTAT = map[string]time.Time{}
}

// admit applies the posting limit to one post or update in channel; it returns the wait
// Slack would announce (0: admitted). It runs with s.mu held.
func (s *Server) admit(channel string) time.Duration {
	if s.rlInterval <= 0 {
		return 0
	}
	now := time.Now()
	t := s.rlTAT[channel]
	if t.Before(now) {
		t = now
	}
	allowAt := t.Add(-time.Duration(s.rlBurst-1) * s.rlInterval)
	if allowAt.After(now) {
		return allowAt.Sub(now)
	}
	s.rlTAT[channel] = t.Add(s.rlInterval)
	return 0
}

// LimitEvery makes every k-th call of method (chat.postMessage or chat.update) answer HTTP
// 429 with Retry-After: 1, whatever the channel, as Slack does under load (its limits are
// "evaluated per workspace, per app" and may tighten: it says to expect 429 at any time).
// k <= 0 turns it off.
func (s *Server) LimitEvery(method string, k int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.every == nil {
		s.every = map[string]*everyK{}
	}
	if k <= 0 {
		delete(s.every, method)
		return
	}
	s.every[method] = &everyK{k: k}
}

type everyK struct{ k, n int }

// limitedNow counts a call of method for LimitEvery; it runs with s.mu held.
func (s *Server) limitedNow(method string) bool {
	e := s.every[method]
	if e == nil {
		return false
	}
	e.n++
	return e.n%e.k == 0
}

type lateAnswer struct {
	delay time.Duration
	n     int // answers left to delay; <0: every one
}

// AnswerLate makes the next n calls of method (n < 0: every call until AnswerLate(method,
// 0, 0)) take effect at once but answer only after delay, or never if the client gave up
// first: a client whose timeout is shorter sees an error although the call (a post) was made.
func (s *Server) AnswerLate(method string, delay time.Duration, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n == 0 {
		delete(s.late, method)
		return
	}
	s.late[method] = &lateAnswer{delay: delay, n: n}
}

// lateness is how long the answer to a call of method waits; it runs with s.mu held.
func (s *Server) lateness(method string) time.Duration {
	l := s.late[method]
	if l == nil {
		return 0
	}
	if l.n > 0 {
		if l.n--; l.n == 0 {
			delete(s.late, method)
		}
	}
	return l.delay
}

// Messages returns the messages stored in a channel (a DM is "D" + the user id), oldest first.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.Channel == channel {
			out = append(out, *m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return tsLess(out[i].TS, out[j].TS) })
	return out
}

// tsLess compares Slack timestamps ("seconds.micros") numerically.
func tsLess(a, b string) bool {
	as, af, _ := strings.Cut(a, ".")
	bs, bf, _ := strings.Cut(b, ".")
	if len(as) != len(bs) {
		return len(as) < len(bs)
	}
	if as != bs {
		return as < bs
	}
	return af < bf
}

// OnCall registers a function called (outside the lock) with every call received.
func (s *Server) OnCall(f func(Call)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCall = f
}

// Calls returns the calls of a method ("" for all) received so far.
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Mark is the number of calls so far, for Since and WaitAfter.
func (s *Server) Mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// Since returns the calls of a method received after mark.
func (s *Server) Since(mark int, method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls[min(mark, len(s.calls)):] {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Wait waits (up to 10 s) for a successful call of method received after mark that
// matches (nil matches any), and fails the test if none comes.
func (s *Server) Wait(t testing.TB, mark int, method string, match func(Call) bool) Call {
	t.Helper()
	c, ok := s.WaitFor(mark, method, match, 10*time.Second)
	if !ok {
		var seen []string
		for _, c := range s.Since(mark, "") {
			seen = append(seen, c.Method+" "+c.Error)
		}
		t.Fatalf("slackfake: no %s call came; calls since mark: %v", method, seen)
	}
	return c
}

// WaitFor is Wait without a test: ok is false after timeout.
func (s *Server) WaitFor(mark int, method string, match func(Call) bool, timeout time.Duration) (Call, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		for _, c := range s.calls[min(mark, len(s.calls)):] {
			if c.Method == method && c.Error == "" && (match == nil || match(c)) {
				s.mu.Unlock()
				return c, true
			}
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			return Call{}, false
		}
	}
}

// Message returns a stored message.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[channel+"/"+ts]
	if !ok {
		return Message{}, false
	}
	return *m, true
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	c.At = time.Now()
	s.calls = append(s.calls, c)
	close(s.changed)
	s.changed = make(chan struct{})
	f := s.onCall
	s.mu.Unlock()
	if f != nil {
		f(c)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

type obj = map[string]any

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	body, _ := io.ReadAll(r.Body)
	c := Call{Method: method, Raw: string(body)}
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") && len(body) > 0 {
		if err := json.Unmarshal(body, &c.JSON); err != nil {
			c.Error = "invalid_json"
			s.record(c)
			writeJSON(w, obj{"ok": false, "error": c.Error})
			return
		}
		c.Raw = unescaped(c.JSON)
	} else {
		c.Form, _ = url.ParseQuery(string(body))
		for k, v := range r.URL.Query() {
			c.Form[k] = v
		}
		if t := c.Form.Get("token"); t != "" {
			token = t
		}
		if b := c.Form.Get("blocks"); b != "" {
			var v any
			if json.Unmarshal([]byte(b), &v) == nil {
				c.Form.Set("blocks", unescaped(v))
			}
		}
	}
	var resp obj
	var retryAfter time.Duration
	s.mu.Lock()
	switch {
	case method == "apps.connections.open" && (s.AppToken == "" || token != s.AppToken):
		c.Error = "invalid_auth"
	case method != "apps.connections.open" && token != s.Token:
		c.Error = "invalid_auth"
	case s.fail[method] != "":
		c.Error = s.fail[method]
		delete(s.fail, method)
	case method == "chat.postMessage" || method == "chat.update":
		if ch, e := s.channelFor(c.Get("channel")); e == "" {
			retryAfter = s.admit(ch)
		}
		if retryAfter == 0 && s.limitedNow(method) {
			retryAfter = time.Second
		}
		if retryAfter > 0 {
			c.Error = "ratelimited"
			break
		}
		resp, c.Error = s.answer(method, c)
	default:
		resp, c.Error = s.answer(method, c)
	}
	late := s.lateness(method)
	s.mu.Unlock()
	c.Status = http.StatusOK
	if retryAfter > 0 {
		// Slack: HTTP 429, Retry-After in whole seconds, {"ok":false,"error":"ratelimited"}.
		c.Status = http.StatusTooManyRequests
		s.record(c)
		w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		_ = json.NewEncoder(w).Encode(obj{"ok": false, "error": c.Error})
		return
	}
	if c.Error == "" {
		resp["ok"] = true
		c.Response = resp
	}
	s.record(c)
	if late > 0 {
		t := time.NewTimer(late)
		select {
		case <-t.C:
		case <-r.Context().Done(): // the client gave up; what the call did stays done
		}
		t.Stop()
	}
	if c.Error != "" {
		writeJSON(w, obj{"ok": false, "error": c.Error})
		return
	}
	writeJSON(w, resp)
}

// answer handles one Web API method; it runs with s.mu held.
func (s *Server) answer(method string, c Call) (obj, string) {
	switch method {
	case "auth.test":
		return obj{"url": "https://pimbot-test.slack.com/", "team": "Test", "user": "pimbot", "team_id": "T0TEST", "user_id": "UBOT", "bot_id": "BBOT"}, ""
	case "users.info":
		u, ok := s.users[c.Get("user")]
		if !ok {
			return nil, "user_not_found"
		}
		return obj{"user": userJSON(u)}, ""
	case "users.lookupByEmail":
		for _, u := range s.users {
			if u.Email != "" && strings.EqualFold(u.Email, c.Get("email")) {
				return obj{"user": userJSON(u)}, ""
			}
		}
		return nil, "users_not_found"
	case "views.open":
		tr, ok := s.triggers[c.Get("trigger_id")]
		switch {
		// views.open's own error names (https://api.slack.com/methods/views.open#errors).
		case !ok:
			return nil, "invalid_trigger_id"
		case tr.used:
			return nil, "exchanged_trigger_id"
		case time.Since(tr.issued) > TriggerTTL:
			return nil, "expired_trigger_id"
		}
		tr.used = true
		v, _ := c.JSON["view"].(map[string]any)
		if e := checkView(v, "modal"); e != "" {
			return nil, e
		}
		return s.storeView("", v), ""
	case "views.update":
		id, _ := c.JSON["view_id"].(string)
		old, ok := s.views[id]
		if !ok {
			return nil, "not_found"
		}
		if h, _ := c.JSON["hash"].(string); h != "" && h != old.hash {
			return nil, "hash_conflict"
		}
		v, _ := c.JSON["view"].(map[string]any)
		if e := checkView(v, "modal"); e != "" {
			return nil, e
		}
		return s.storeView(id, v), ""
	case "views.publish":
		if _, ok := s.users[c.Get("user_id")]; !ok {
			return nil, "user_not_found"
		}
		v, _ := c.JSON["view"].(map[string]any)
		if e := checkView(v, "home"); e != "" {
			return nil, e
		}
		return s.storeView("", v), ""
	case "chat.postMessage":
		ch, e := s.channelFor(c.Get("channel"))
		if e != "" {
			return nil, e
		}
		if e := checkMessage(c); e != "" {
			return nil, e
		}
		md := c.Get("metadata")
		if md != "" {
			var m struct {
				EventType    string         `json:"event_type"`
				EventPayload map[string]any `json:"event_payload"`
			}
			if json.Unmarshal([]byte(md), &m) != nil {
				return nil, "invalid_metadata_format"
			}
			if m.EventType == "" || m.EventPayload == nil {
				return nil, "invalid_metadata_schema"
			}
		}
		s.seq++
		ts := fmt.Sprintf("%d.%06d", time.Now().Unix(), s.seq%1000000)
		s.messages[ch+"/"+ts] = &Message{Channel: ch, TS: ts, Text: c.Get("text"), Blocks: c.Get("blocks"), Metadata: md}
		return obj{"channel": ch, "ts": ts, "message": obj{"text": c.Get("text"), "ts": ts}}, ""
	case "conversations.history":
		return s.history(c)
	case "conversations.open":
		u := c.Get("users")
		if strings.Contains(u, ",") {
			return nil, "not_supported" // the fake opens DMs only
		}
		ch, e := s.channelFor(u)
		if e != "" || !strings.HasPrefix(ch, "D") {
			return nil, "user_not_found"
		}
		return obj{"channel": obj{"id": ch}}, ""
	case "chat.update":
		m, ok := s.messages[c.Get("channel")+"/"+c.Get("ts")]
		if !ok {
			return nil, "message_not_found"
		}
		if e := checkMessage(c); e != "" {
			return nil, e
		}
		m.Text, m.Blocks = c.Get("text"), c.Get("blocks")
		return obj{"channel": m.Channel, "ts": m.TS, "text": m.Text}, ""
	case "chat.postEphemeral":
		if _, e := s.channelFor(c.Get("channel")); e != "" {
			return nil, e
		}
		if _, ok := s.users[c.Get("user")]; !ok {
			return nil, "user_not_found"
		}
		if e := checkMessage(c); e != "" {
			return nil, e
		}
		s.seq++
		return obj{"message_ts": fmt.Sprintf("%d.%06d", time.Now().Unix(), s.seq)}, ""
	case "apps.connections.open":
		return obj{"url": "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/socket"}, ""
	}
	return nil, "unknown_method"
}

// history answers conversations.history: the channel's messages newest first, within
// oldest and latest (exclusive unless inclusive), at most limit (default 100) a page, with
// a cursor for the next page. Metadata is listed only with include_all_metadata. Like
// Slack, it needs the bot in the channel (not_in_channel) or a DM with a known user.
func (s *Server) history(c Call) (obj, string) {
	ch := c.Get("channel")
	switch {
	case strings.HasPrefix(ch, "U") || strings.HasPrefix(ch, "W"):
		return nil, "channel_not_found" // a user id is not a conversation
	case strings.HasPrefix(ch, "D"):
		if _, ok := s.users[ch[1:]]; !ok {
			return nil, "channel_not_found"
		}
	case !s.channels[ch]:
		return nil, "not_in_channel"
	}
	oldest, latest, inclusive := c.Get("oldest"), c.Get("latest"), c.Get("inclusive") == "1" || c.Get("inclusive") == "true"
	limit, _ := strconv.Atoi(c.Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	var ms []*Message
	for _, m := range s.messages {
		if m.Channel != ch {
			continue
		}
		if oldest != "" && (tsLess(m.TS, oldest) || (!inclusive && m.TS == oldest)) {
			continue
		}
		if latest != "" && (tsLess(latest, m.TS) || (!inclusive && m.TS == latest)) {
			continue
		}
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return tsLess(ms[j].TS, ms[i].TS) })
	start, _ := strconv.Atoi(c.Get("cursor"))
	start = min(max(start, 0), len(ms))
	end := min(start+limit, len(ms))
	withMeta := c.Get("include_all_metadata") == "1" || c.Get("include_all_metadata") == "true"
	out := make([]any, 0, end-start)
	for _, m := range ms[start:end] {
		o := obj{"type": "message", "ts": m.TS, "text": m.Text, "bot_id": "BBOT", "user": "UBOT"}
		if withMeta && m.Metadata != "" {
			var md any
			_ = json.Unmarshal([]byte(m.Metadata), &md)
			o["metadata"] = md
		}
		out = append(out, o)
	}
	resp := obj{"messages": out, "has_more": end < len(ms)}
	if end < len(ms) {
		resp["response_metadata"] = obj{"next_cursor": strconv.Itoa(end)}
	}
	return resp, ""
}

// channelFor resolves a channel: a user id opens the app's DM with them.
func (s *Server) channelFor(ch string) (string, string) {
	switch {
	case ch == "":
		return "", "channel_not_found"
	case strings.HasPrefix(ch, "U") || strings.HasPrefix(ch, "W"):
		u, ok := s.users[ch]
		if !ok || u.IsBot {
			return "", "channel_not_found"
		}
		return "D" + ch, ""
	case strings.HasPrefix(ch, "D"):
		if _, ok := s.users[ch[1:]]; !ok {
			return "", "channel_not_found"
		}
		return ch, ""
	case s.channels[ch]:
		return ch, ""
	}
	return "", "not_in_channel"
}

func (s *Server) storeView(id string, v map[string]any) obj {
	s.seq++
	if id == "" {
		id = fmt.Sprintf("V%06d", s.seq)
	}
	hash := fmt.Sprintf("%d.hash%06d", time.Now().Unix(), s.seq)
	raw, _ := json.Marshal(v)
	s.views[id] = &view{id: id, hash: hash, raw: string(raw)}
	out := obj{}
	for k, x := range v {
		out[k] = x
	}
	out["id"], out["hash"] = id, hash
	return obj{"view": out}
}

func userJSON(u User) obj {
	return obj{"id": u.ID, "name": u.Name, "real_name": u.Name, "is_bot": u.IsBot, "deleted": false,
		"profile": obj{"email": u.Email, "real_name": u.Name, "display_name": u.Name}}
}

func textLen(o any) int {
	m, _ := o.(map[string]any)
	s, _ := m["text"].(string)
	return len([]rune(s))
}

// checkBlocks applies some of Block Kit's limits.
func checkBlocks(blocks []any, max int) string {
	if len(blocks) > max {
		return "invalid_blocks"
	}
	for _, b := range blocks {
		m, _ := b.(map[string]any)
		if id, _ := m["block_id"].(string); len([]rune(id)) > MaxBlockID {
			return "invalid_blocks"
		}
		switch m["type"] {
		case "header":
			if textLen(m["text"]) > MaxHeaderText {
				return "invalid_blocks"
			}
		case "section":
			if textLen(m["text"]) > MaxSectionText {
				return "invalid_blocks"
			}
			fields, _ := m["fields"].([]any)
			if len(fields) > 10 {
				return "invalid_blocks"
			}
			for _, f := range fields {
				if textLen(f) > MaxFieldText {
					return "invalid_blocks"
				}
			}
			if acc, ok := m["accessory"].(map[string]any); ok {
				if e := checkElement(acc); e != "" {
					return e
				}
			}
		case "actions":
			els, _ := m["elements"].([]any)
			if len(els) == 0 || len(els) > 25 {
				return "invalid_blocks"
			}
			for _, el := range els {
				em, _ := el.(map[string]any)
				if e := checkElement(em); e != "" {
					return e
				}
			}
		case "input":
			el, ok := m["element"].(map[string]any)
			if !ok {
				return "invalid_blocks"
			}
			if e := checkElement(el); e != "" {
				return e
			}
		case "context":
			els, _ := m["elements"].([]any)
			if len(els) == 0 || len(els) > MaxContextElements {
				return "invalid_blocks"
			}
			for _, el := range els {
				if textLen(el) > MaxSectionText {
					return "invalid_blocks"
				}
			}
		case "divider":
		default:
			return "invalid_blocks"
		}
	}
	return ""
}

// checkOptions applies the limits of options: at most 100, text 75, value 150
// (https://api.slack.com/reference/block-kit/composition-objects#option).
func checkOptions(opts []any) string {
	if len(opts) > MaxOptions {
		return "invalid_blocks"
	}
	for _, o := range opts {
		om, _ := o.(map[string]any)
		v, _ := om["value"].(string)
		if textLen(om["text"]) > MaxOptionText || len([]rune(v)) > MaxOptionValue || textLen(om["description"]) > MaxOptionText {
			return "invalid_blocks"
		}
	}
	return ""
}

func checkElement(el map[string]any) string {
	opts, _ := el["options"].([]any)
	if e := checkOptions(opts); e != "" {
		return e
	}
	groups, _ := el["option_groups"].([]any)
	if len(groups) > MaxOptions {
		return "invalid_blocks"
	}
	for _, g := range groups {
		gm, _ := g.(map[string]any)
		gopts, _ := gm["options"].([]any)
		if textLen(gm["label"]) > MaxOptionText {
			return "invalid_blocks"
		}
		if e := checkOptions(gopts); e != "" {
			return e
		}
	}
	if io, ok := el["initial_option"].(map[string]any); ok {
		if e := checkOptions([]any{io}); e != "" {
			return e
		}
	}
	if el["type"] == "button" {
		v, _ := el["value"].(string)
		if len(v) > MaxButtonValue || textLen(el["text"]) > 75 {
			return "invalid_blocks"
		}
	}
	return ""
}

func checkMessage(c Call) string {
	text, blocksRaw := c.Get("text"), c.Get("blocks")
	if len([]rune(text)) > MaxMessageText {
		return "msg_too_long"
	}
	if text == "" && blocksRaw == "" {
		return "no_text"
	}
	if blocksRaw != "" {
		var blocks []any
		if err := json.Unmarshal([]byte(blocksRaw), &blocks); err != nil {
			return "invalid_blocks_format"
		}
		return checkBlocks(blocks, MaxMessageBlocks)
	}
	return ""
}

func checkView(v map[string]any, kind string) string {
	if v == nil || v["type"] != kind {
		return "invalid_arguments"
	}
	blocks, ok := v["blocks"].([]any)
	if !ok { // "blocks": null is refused by Slack
		return "invalid_arguments"
	}
	if e := checkBlocks(blocks, MaxViewBlocks); e != "" {
		return e
	}
	if kind != "modal" {
		return ""
	}
	if textLen(v["title"]) == 0 || textLen(v["title"]) > MaxViewTitle || textLen(v["submit"]) > MaxViewTitle || textLen(v["close"]) > MaxViewTitle {
		return "invalid_arguments"
	}
	if md, _ := v["private_metadata"].(string); len(md) > MaxPrivateMetadata {
		return "invalid_arguments"
	}
	ids := map[string]bool{}
	for _, b := range blocks {
		m, _ := b.(map[string]any)
		if m["type"] == "input" {
			if v["submit"] == nil {
				return "invalid_arguments" // a view with inputs needs a submit button
			}
			id, _ := m["block_id"].(string)
			if id != "" && ids[id] {
				return "invalid_arguments"
			}
			ids[id] = true
		}
	}
	return ""
}

func (s *Server) serveResponse(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := Call{Method: "response", Path: strings.TrimPrefix(r.URL.Path, "/response/"), Raw: string(body)}
	if err := json.Unmarshal(body, &c.JSON); err != nil {
		c.Error = "invalid_payload"
	} else {
		c.Raw = unescaped(c.JSON)
	}
	s.record(c)
	if c.Error != "" {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, c.Error)
		return
	}
	writeJSON(w, obj{"ok": true})
}

// unescaped encodes v as JSON without Go's HTML escaping (\u003c for <), so that tests
// read what Slack would read.
func unescaped(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSpace(b.String())
}

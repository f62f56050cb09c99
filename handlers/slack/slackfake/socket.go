package slackfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// The Socket Mode side: apps.connections.open answers with this server's /socket URL;
// the fake says hello, sends envelopes when the test asks, and records each ack as a
// call of method "socket.ack" (wait for it with Wait).

func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	conn, err := s.upgrade.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.sockMu.Lock()
	if s.sock != nil {
		s.sock.Close()
	}
	s.sock = conn
	err = conn.WriteJSON(obj{"type": "hello", "num_connections": 1,
		"connection_info": obj{"app_id": "A0TEST"}, "debug_info": obj{"host": "slackfake"}})
	s.sockMu.Unlock()
	if err != nil {
		return
	}
	s.mu.Lock()
	select {
	case <-s.sockUp:
	default:
		close(s.sockUp)
	}
	s.mu.Unlock()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		c := Call{Method: "socket.ack", Raw: string(data)}
		if err := json.Unmarshal(data, &c.JSON); err != nil {
			c.Error = "invalid_json"
		}
		s.record(c)
	}
}

// WaitSocket waits until a Socket Mode client connected.
func (s *Server) WaitSocket(t testing.TB) {
	t.Helper()
	select {
	case <-s.sockUp:
	case <-time.After(10 * time.Second):
		t.Fatal("slackfake: no Socket Mode connection came")
	}
}

// SendEnvelope sends one Socket Mode request (type slash_commands, interactive or
// events_api) and returns its envelope id.
func (s *Server) SendEnvelope(t testing.TB, typ string, payload any) string {
	t.Helper()
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("env-%06d", s.seq)
	s.mu.Unlock()
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	if s.sock == nil {
		t.Fatal("slackfake: no Socket Mode connection")
	}
	if err := s.sock.WriteJSON(obj{"envelope_id": id, "type": typ, "payload": payload, "accepts_response_payload": typ != "events_api"}); err != nil {
		t.Fatalf("slackfake: send envelope: %v", err)
	}
	return id
}

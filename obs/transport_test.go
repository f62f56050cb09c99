package obs_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/obs"
)

type call struct{ service, op, status string }

type recorder struct {
	mu    sync.Mutex
	calls []call
}

func (r *recorder) ObserveCall(service, op, status string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d <= 0 {
		panic("no latency measured")
	}
	r.calls = append(r.calls, call{service, op, status})
}

func TestTransport_ReportsServiceOperationStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/chat.update" {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	rec := &recorder{}
	c := &http.Client{Timeout: 5 * time.Second, Transport: obs.Wrap(nil, "slack", rec)}
	for _, p := range []string{"/api/chat.postMessage", "/api/chat.update"} {
		resp, err := c.Post(srv.URL+p, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// A refused connection is reported as "error", not dropped.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	if _, err := c.Get(deadURL + "/api/auth.test"); err == nil {
		t.Fatal("want a connection error")
	}
	want := []call{
		{"slack", "chat.postMessage", "200"},
		{"slack", "chat.update", "429"},
		{"slack", "auth.test", "error"},
	}
	if len(rec.calls) != len(want) {
		t.Fatalf("calls %v, want %v", rec.calls, want)
	}
	for i := range want {
		if rec.calls[i] != want[i] {
			t.Errorf("call %d = %v, want %v", i, rec.calls[i], want[i])
		}
	}
}

func TestRESTOperation_TemplatesIdentifiers(t *testing.T) {
	for _, tc := range []struct{ method, path, want string }{
		{"POST", "/v1.0/groups/7c1e0f8a-0000-4000-8000-000000000001/members/$ref", "POST /v1.0/groups/{id}/members/$ref"},
		{"DELETE", "/v1.0/groups/7c1e0f8a-0000-4000-8000-000000000001/owners/0a1b2c3d-0000-4000-8000-000000000002/$ref", "DELETE /v1.0/groups/{id}/owners/{id}/$ref"},
		{"GET", "/v1.0/users/alice@example.com", "GET /v1.0/users/{id}"},
		{"POST", "/v3/conversations/19:abc@thread.tacv2/activities", "POST /v3/conversations/{id}/activities"},
		{"PUT", "/v3/conversations/a:1XyZ/activities/1700000000000", "PUT /v3/conversations/{id}/activities/{id}"},
		{"POST", "/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token", "POST /{id}/oauth2/v2.0/token"},
		{"GET", "/beta/identityGovernance/privilegedAccess/group/assignmentScheduleRequests", "GET /beta/identityGovernance/privilegedAccess/group/assignmentScheduleRequests"},
	} {
		r := httptest.NewRequest(tc.method, "http://example.invalid"+tc.path, nil)
		if got := obs.RESTOperation(r); got != tc.want {
			t.Errorf("%s %s = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestSlackOperation_UnknownShapesAreOther(t *testing.T) {
	for path, want := range map[string]string{
		"/api/views.open":          "views.open",
		"/api/conversations.open/": "conversations.open",
		"/api/<script>":            "other",
		"/":                        "other",
	} {
		r := httptest.NewRequest("POST", "http://example.invalid"+path, nil)
		if got := obs.SlackOperation(r); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
}

func TestWrap_NilObserverLeavesBaseAlone(t *testing.T) {
	if got := obs.Wrap(http.DefaultTransport, "graph", nil); got != http.DefaultTransport {
		t.Fatal("wrapped without an observer")
	}
}

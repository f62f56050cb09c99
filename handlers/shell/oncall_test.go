package shell_test

import (
	"regexp"
	"testing"

	"github.com/pimbot/pimbot"
	"github.com/pimbot/pimbot/handlers/shell"
)

// The example policy's incident-db-admins approves alice at once (she is on the local
// db-primary rota); the approvers see it with revoke and looks-good, it waits in their inbox
// until one of them reviews it, and revoke ends it.
func TestSession_OnCallApprovedThenReviewedAndRevoked(t *testing.T) {
	s := startScripted(t, pimbot.ExamplePolicy, shell.Options{Width: 200}, false)
	s.say("/activate incident-db-admins for 1h paged: replica lag",
		`; approved automatically by on-call (local rota "db-primary").`)
	s.expect(`Alice got member of incident-db-admins for 1h from now, approved automatically by on-call (local rota "db-primary"). Reason: "paged: replica lag".`)
	s.expect("you are on call (local rota \"db-primary\"); it starts now. The approvers see it and review it afterwards.")
	s.expect("request ")
	id := regexp.MustCompile(`Request ([A-Z0-9]{8}) submitted`).FindStringSubmatch(s.out.String()[s.mark:])
	if id == nil {
		t.Fatalf("no request id in:\n%s", s.out.String()[s.mark:])
	}
	s.expect("is active: you are a member of incident-db-admins")
	s.say("as bob", "You are now bob@example.com")
	s.say("pending", "got member of incident-db-admins for 1h, approved automatically by on-call (local rota \"db-primary\") (active); review it")
	s.expect("revoke " + id[1] + " | looks-good " + id[1])
	s.say("as alice", "You are now alice@example.com")
	s.say("looks-good "+id[1], "only bob@example.com or carol@example.com may review it")
	s.say("as carol", "You are now carol@example.com")
	s.say("looks-good "+id[1], "Request "+id[1]+" reviewed: looks good.")
	s.expect("Carol reviewed request " + id[1] + ", approved automatically by on-call (local rota \"db-primary\"): looks good.")
	s.say("pending", "Nothing is waiting for your approval")
	s.say("revoke "+id[1], "Request "+id[1]+" revoked: the access is being removed.")
	s.expect("ended (revoked by carol@example.com (automatic approval)): you are no longer a member of incident-db-admins")
}

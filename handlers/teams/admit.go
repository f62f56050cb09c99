package teams

import (
	"errors"
	"fmt"
	"strings"

	"github.com/infracloudio/msbotbuilder-go/schema"
)

// A valid Bot Framework token proves that the Bot Framework service relayed an activity, not
// that Teams did: the service signs the activities of every channel the bot is connected to
// (Direct Line, Web Chat, the Emulator, ...), and on those the client writes from.aadObjectId
// itself. Only Teams vouches for that id, so the surface acts on channel "msteams" only and,
// when a tenant is configured, only on activities that name that tenant.

// teamsChannel is the channelId of Microsoft Teams activities.
const teamsChannel = "msteams"

// errRefused: an authenticated activity the surface does not act on (answered 403).
var errRefused = errors.New("activity refused")

// admit decides whether an authenticated activity may be acted on at all: it must come from
// Teams and, when the surface is pinned to a tenant, name that tenant wherever it names one
// (channelData.tenant.id, conversation.tenantId) and at least once.
func (s *Surface) admit(act *schema.Activity) error {
	if act.ChannelID != teamsChannel {
		return fmt.Errorf("%w: channel %q is not Microsoft Teams", errRefused, truncateRunes(act.ChannelID, 40))
	}
	if s.tenant == "" {
		return nil
	}
	named := false
	for _, id := range []string{teamsData(act).tenantID, act.Conversation.TenantID} {
		if id == "" {
			continue
		}
		if !strings.EqualFold(id, s.tenant) {
			return fmt.Errorf("%w: tenant %q is not this bot's", errRefused, truncateRunes(id, 60))
		}
		named = true
	}
	if !named {
		return fmt.Errorf("%w: the activity names no tenant", errRefused)
	}
	return nil
}

package slack

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// SocketMode returns a runner that connects over Socket Mode with client (built from the
// bot token's client and the app-level token) and feeds the same code as the HTTP
// transport. It returns when ctx ends, or with an error when Slack refuses the token.
func (s *Surface) SocketMode(client *socketmode.Client) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		runErr := make(chan error, 1)
		go func() { runErr <- client.RunContext(ctx) }()
		// Envelopes handled at once (Options.SocketHandlers): a view submission waits for the
		// engine (up to submitBudget), the rest only queue work, which waits for room only
		// when the queues' memory budget is spent; then the reading stops, and the
		// backpressure reaches Slack.
		sem := make(chan struct{}, s.opt.SocketHandlers)
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			select {
			case <-ctx.Done():
				return nil
			case err := <-runErr:
				if ctx.Err() != nil || errors.Is(err, context.Canceled) {
					return nil
				}
				return fmt.Errorf("slack socket mode: %w", err)
			case evt := <-client.Events:
				switch evt.Type {
				case socketmode.EventTypeConnected:
					s.log.Info("slack socket mode connected")
				case socketmode.EventTypeConnectionError:
					s.log.Warn("slack socket mode connection failed; retrying", "err", fmt.Sprint(evt.Data))
				case socketmode.EventTypeInvalidAuth:
					s.log.Error("slack socket mode: the app-level token was refused (SLACK_APP_TOKEN)")
				case socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive, socketmode.EventTypeEventsAPI:
					if evt.Request == nil {
						continue
					}
					select {
					case sem <- struct{}{}:
					case <-ctx.Done():
						return nil
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer func() { <-sem }()
						s.envelope(ctx, client, evt)
					}()
				}
			}
		}
	}
}

// envelope handles one Socket Mode request and acknowledges it (with the answer, if any).
// Slack may send an envelope again (a new envelope_id, retry_attempt set, the same
// payload) when it thinks the ack was lost: commands and interactions are deduplicated by their payload in the code
// shared with HTTP (replay.go), events by their event_id, so a retry is acked and does
// nothing.
func (s *Surface) envelope(ctx context.Context, client *socketmode.Client, evt socketmode.Event) {
	var answer any
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if ok {
			answer = s.command(ctx, cmd)
		}
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if ok {
			answer = s.interaction(ctx, cb)
		}
	case socketmode.EventTypeEventsAPI:
		if err := client.AckCtx(ctx, evt.Request.EnvelopeID, nil); err != nil {
			s.log.Warn("slack socket mode ack failed", "err", err)
		}
		ev, ok := evt.Data.(slackevents.EventsAPIEvent)
		if !ok {
			return
		}
		eventID := ""
		if cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent); ok {
			eventID = cb.EventID
		}
		s.event(ctx, eventID, ev)
		return
	}
	if err := client.AckCtx(ctx, evt.Request.EnvelopeID, answer); err != nil {
		s.log.Warn("slack socket mode ack failed", "err", err)
	}
}

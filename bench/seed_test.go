package bench

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/store"
)

const seedBatch = 500

// seedActive writes grants [from, to) straight into the store as active requests, each
// with its open lock and its removal job due at due(i), in batches of seedBatch per Commit
// (the same atomic step the engine uses), four batches at a time. It returns the request
// ids and their due times, by index.
func seedActive(b *testing.B, s *store.Redis, from, to int, due func(i int) time.Time) ([]string, []time.Time) {
	b.Helper()
	ids := make([]string, to-from)
	dues := make([]time.Time, to-from)
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	sem := make(chan struct{}, 4)
	for lo := from; lo < to; lo += seedBatch {
		hi := min(lo+seedBatch, to)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			tx := &bot.Tx{}
			for i := lo; i < hi; i++ {
				end := due(i)
				start := end.Add(-2 * time.Hour)
				r := &bot.Request{ID: bot.NewID(), Kind: bot.KindActivate, Group: "bench", GroupID: benchGroupID, Access: bot.Member,
					Requester: user(i), Surface: "bench", Reason: "seeded", Duration: 2 * time.Hour, Start: start,
					State: bot.StateActive, CreatedAt: start, DecidedAt: start, ActivatedAt: start, EndsAt: end}
				tx.Puts = append(tx.Puts, bot.Put{Request: r})
				tx.OpenLock = append(tx.OpenLock, bot.Lock{Key: r.OpenKey(), RequestID: r.ID, UserID: r.Requester.ID})
				tx.Schedule = append(tx.Schedule, bot.Job{ID: bot.JobID(bot.JobEnd, r.ID), Kind: bot.JobEnd, RequestID: r.ID, Due: end})
				ids[i-from], dues[i-from] = r.ID, end
			}
			if err := s.Commit(context.Background(), tx); err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		b.Fatalf("seed: %v", err)
	default:
	}
	return ids, dues
}

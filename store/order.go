package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/redis/go-redis/v9"
)

// The order of notifications. The commit script adds every notify job of a stored request
// (version > 0) to an index per request and surface, "{prefix}:nq:<request id>:<notifier>",
// scored by the request version the event describes. EarlierNotify reads it: the jobs of a
// lower version that still exist in the job hash (queued, retrying or leased) are pending;
// the others were acknowledged and are dropped from the index as they are met (the index
// also expires with the retention).

var _ bot.NotifyQueue = (*Redis)(nil)

// notifyOrder is the index a scheduled job joins and its score ("" for jobs that join none).
func notifyOrder(j bot.Job) (string, int64) {
	if j.Kind != bot.JobNotify || j.Event == nil || j.Event.Request == nil || j.Event.Request.Version <= 0 || j.Notifier == "" {
		return "", 0
	}
	return j.RequestID + ":" + j.Notifier, j.Event.Request.Version
}

// earlierScript returns the pending notify jobs of one index scored below a version, and
// for each the time it is due in ms (0 when it is leased: running now).
// ARGV: prefix, index, version.
var earlierScript = redis.NewScript(`
local P = ARGV[1]
local k = P .. 'nq:' .. ARGV[2]
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', k, '-inf', '(' .. ARGV[3])) do
  if redis.call('HEXISTS', P .. 'job', id) == 1 then
    -- running (leased): '0', the caller looks again soon; queued: when it is due
    local at = '0'
    if not redis.call('ZSCORE', P .. 'lease', id) then at = redis.call('ZSCORE', KEYS[1], id) or '0' end
    table.insert(out, id)
    table.insert(out, tostring(at))
  else
    redis.call('ZREM', k, id)
  end
end
return out
`)

// EarlierNotify returns the notify jobs of job's request and notifier for a lower version
// that are still queued, retrying or leased, and the latest time one of them is due (zero
// when those are running now).
func (s *Redis) EarlierNotify(ctx context.Context, job bot.Job) ([]string, time.Time, error) {
	order, seq := notifyOrder(job)
	if order == "" {
		return nil, time.Time{}, nil
	}
	raw, err := earlierScript.Run(ctx, s.rdb, []string{s.due}, s.p, order, seq).StringSlice()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("earlier notifications of %s: %w", job.RequestID, err)
	}
	var ids []string
	var until time.Time
	for i := 0; i+1 < len(raw); i += 2 {
		ids = append(ids, raw[i])
		if f, err := strconv.ParseFloat(raw[i+1], 64); err == nil && f > 0 {
			if t := time.UnixMilli(int64(f)); t.After(until) {
				until = t
			}
		}
	}
	return ids, until, nil
}

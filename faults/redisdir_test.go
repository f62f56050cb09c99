package faults_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/redis/go-redis/v9"
)

// redisDir is the fake directory of the crash tests: it lives outside the worker process
// (in Redis), so a kill -9 of the worker loses nothing of what the directory did, and every
// change is logged with its time.
type redisDir struct {
	rdb    redis.UniversalClient
	prefix string
	seed   *local.Directory // people and groups for resolution
	// latency before and after each change, like a Graph call, so that kills land both
	// before the directory acts and between its effect and the commit that records it.
	before, after time.Duration
}

var changeScript = redis.NewScript(`
local changed
if ARGV[1] == 'add' then changed = redis.call('SADD', KEYS[1], ARGV[2]) else changed = redis.call('SREM', KEYS[1], ARGV[2]) end
redis.call('RPUSH', KEYS[2], ARGV[1] .. '|' .. ARGV[3] .. '|' .. ARGV[2] .. '|' .. changed .. '|' .. ARGV[4])
return changed`)

func (d *redisDir) ResolveUser(ctx context.Context, ref string) (bot.User, error) {
	return d.seed.ResolveUser(ctx, ref)
}
func (d *redisDir) InGroup(ctx context.Context, userID, groupRef string) (bool, error) {
	return d.seed.InGroup(ctx, userID, groupRef)
}

// ReplicationLag: the directory of the crash tests is consistent at once.
func (d *redisDir) ReplicationLag() time.Duration { return 0 }

func (d *redisDir) Holds(ctx context.Context, groupID, userID string, a bot.Access) (bool, error) {
	return d.rdb.SIsMember(ctx, "{"+d.prefix+"}:dir:"+groupID+":"+string(a), userID).Result()
}

func (d *redisDir) change(ctx context.Context, op, groupID, userID string, a bot.Access) error {
	set := "{" + d.prefix + "}:dir:" + groupID + ":" + string(a)
	log := "{" + d.prefix + "}:dirlog"
	time.Sleep(d.before)
	changed, err := changeScript.Run(ctx, d.rdb, []string{set, log}, op, userID, groupID+":"+string(a), time.Now().UnixMilli()).Int()
	time.Sleep(d.after)
	if err == nil && op == "remove" && changed == 0 {
		// As Graph: removing a non-holder is a 404.
		return fmt.Errorf("%s does not hold %s: %w", userID, groupID, bot.ErrNotHeld)
	}
	return err
}

func (d *redisDir) Add(ctx context.Context, g, u string, a bot.Access) error {
	return d.change(ctx, "add", g, u, a)
}
func (d *redisDir) Remove(ctx context.Context, g, u string, a bot.Access) error {
	return d.change(ctx, "remove", g, u, a)
}

type dirOp struct {
	op, group, user string
	changed         bool
	at              time.Time
}

func (d *redisDir) ops(ctx context.Context) ([]dirOp, error) {
	lines, err := d.rdb.LRange(ctx, "{"+d.prefix+"}:dirlog", 0, -1).Result()
	if err != nil {
		return nil, err
	}
	var out []dirOp
	for _, l := range lines {
		f := strings.Split(l, "|")
		if len(f) != 5 {
			return nil, fmt.Errorf("bad log line %q", l)
		}
		ms, _ := strconv.ParseInt(f[4], 10, 64)
		out = append(out, dirOp{op: f[0], group: f[1], user: f[2], changed: f[3] == "1", at: time.UnixMilli(ms)})
	}
	return out, nil
}

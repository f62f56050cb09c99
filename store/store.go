// Package store keeps pimbot's requests and durable job queue in Redis (standalone,
// Sentinel or Cluster through go-redis UniversalClient). Every transition is one Lua script.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is the hash tag every key starts with.
const DefaultPrefix = "pimbot"

// DefaultAuditMaxLen bounds the audit stream (approximately, as XADD MAXLEN ~ does).
const DefaultAuditMaxLen = 100000

// Redis is the bot.Store (and bot.KV) over Redis.
type Redis struct {
	rdb       redis.UniversalClient
	p         string // "{prefix}:"
	due       string
	retention time.Duration
	auditMax  int
}

var (
	_ bot.Store = (*Redis)(nil)
	_ bot.KV    = (*Redis)(nil)
)

// Options configure a Redis store.
type Options struct {
	Prefix      string        // default "pimbot"; keys look like "{pimbot}:req:R7KX2M9Q"
	Retention   time.Duration // how long finished requests are kept; default 30 days
	AuditMaxLen int           // default 100,000 records
}

// New wraps a go-redis client.
func New(rdb redis.UniversalClient, o Options) *Redis {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Retention <= 0 {
		o.Retention = 30 * 24 * time.Hour
	}
	if o.AuditMaxLen <= 0 {
		o.AuditMaxLen = DefaultAuditMaxLen
	}
	p := "{" + o.Prefix + "}:"
	return &Redis{rdb: rdb, p: p, due: p + "due", retention: o.Retention, auditMax: o.AuditMaxLen}
}

// Client is the underlying go-redis client.
func (s *Redis) Client() redis.UniversalClient { return s.rdb }

func ms(t time.Time) int64 { return t.UnixMilli() }

func (s *Redis) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

func (s *Redis) Get(ctx context.Context, id string) (*bot.Request, error) {
	d, err := s.rdb.HGet(ctx, s.p+"req:"+id, "d").Result()
	if errors.Is(err, redis.Nil) {
		return nil, bot.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return decodeRequest(d)
}

func decodeRequest(d string) (*bot.Request, error) {
	var r bot.Request
	if err := json.Unmarshal([]byte(d), &r); err != nil {
		return nil, fmt.Errorf("decode stored request: %w", err)
	}
	return &r, nil
}

func (s *Redis) ListByUser(ctx context.Context, userID string, limit int) ([]*bot.Request, error) {
	res, err := listScript.Run(ctx, s.rdb, []string{s.due}, s.p, userID, limit).StringSlice()
	if err != nil {
		return nil, err
	}
	out := make([]*bot.Request, 0, len(res))
	for _, d := range res {
		r, err := decodeRequest(d)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *Redis) CountRecent(ctx context.Context, userID string, since time.Time) (int, error) {
	n, err := s.rdb.ZCount(ctx, s.p+"user:"+userID, strconv.FormatInt(ms(since), 10), "+inf").Result()
	return int(n), err
}

type txPut struct {
	ID       string `json:"id"`
	Expect   int64  `json:"expect"`
	Data     string `json:"data"`
	Terminal bool   `json:"terminal,omitempty"`
	User     string `json:"user"`
	Created  int64  `json:"created"`
}

type txLock struct {
	Key  string `json:"key"`
	ID   string `json:"id"`
	User string `json:"user"`
}

type txJob struct {
	ID   string `json:"id"`
	Due  int64  `json:"due"`
	Body string `json:"body"`
}

type txLimits struct {
	User      string `json:"user"`
	PerMinute int    `json:"perMinute"`
	MaxOpen   int    `json:"maxOpen"`
	Minute    int64  `json:"minute"`
}

type txWire struct {
	Puts       []txPut   `json:"puts,omitempty"`
	Lock       []txLock  `json:"lock,omitempty"`
	Unlock     []txLock  `json:"unlock,omitempty"`
	Ack        []string  `json:"ack,omitempty"`
	Unschedule []string  `json:"unschedule,omitempty"`
	Schedule   []txJob   `json:"schedule,omitempty"`
	Audit      []string  `json:"audit,omitempty"`
	Limits     *txLimits `json:"limits,omitempty"`
	Retention  int64     `json:"retention"`
	AuditMax   int       `json:"auditMax"`
}

// Commit applies tx atomically in one round trip.
func (s *Redis) Commit(ctx context.Context, tx *bot.Tx) error {
	w := txWire{Ack: tx.Ack, Unschedule: tx.Unschedule, Retention: int64(s.retention / time.Second), AuditMax: s.auditMax}
	for _, p := range tx.Puts {
		r := p.Request.Clone()
		r.Version = p.Expect + 1
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		w.Puts = append(w.Puts, txPut{ID: r.ID, Expect: p.Expect, Data: string(data), Terminal: r.State.Terminal(),
			User: r.Requester.ID, Created: ms(r.CreatedAt)})
	}
	for _, l := range tx.OpenLock {
		w.Lock = append(w.Lock, txLock{Key: l.Key, ID: l.RequestID, User: l.UserID})
	}
	for _, l := range tx.OpenUnlock {
		w.Unlock = append(w.Unlock, txLock{Key: l.Key, ID: l.RequestID, User: l.UserID})
	}
	for _, j := range tx.Schedule {
		body, err := json.Marshal(j)
		if err != nil {
			return fmt.Errorf("encode job: %w", err)
		}
		w.Schedule = append(w.Schedule, txJob{ID: j.ID, Due: ms(j.Due), Body: string(body)})
	}
	for _, a := range tx.Audit {
		data, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("encode audit: %w", err)
		}
		w.Audit = append(w.Audit, string(data))
	}
	if l := tx.Limits; l != nil {
		w.Limits = &txLimits{User: l.UserID, PerMinute: l.PerMinute, MaxOpen: l.MaxOpen, Minute: l.Minute}
	}
	arg, err := json.Marshal(w)
	if err != nil {
		return err
	}
	res, err := commitScript.Run(ctx, s.rdb, []string{s.due}, s.p, string(arg)).StringSlice()
	if err != nil {
		return err
	}
	switch res[0] {
	case "OK":
		return nil
	case "CONFLICT":
		return fmt.Errorf("request %s changed meanwhile: %w", res[1], bot.ErrConflict)
	case "DUPLICATE":
		de := &bot.DuplicateError{ExistingID: res[1]}
		if len(res) > 2 && res[2] != "" {
			if r, err := decodeRequest(res[2]); err == nil {
				de.State = r.State
			}
		}
		return de
	case "LIMIT_OPEN":
		return &bot.LimitError{Message: "You already have " + res[1] + " open requests, the most allowed at once; cancel one or wait for a decision, then try again."}
	case "LIMIT_RATE":
		return &bot.LimitError{Message: "You have made " + res[1] + " requests in the last minute, the most allowed; wait a minute and try again."}
	}
	return fmt.Errorf("commit: unexpected answer %q", res[0])
}

// Claim leases due jobs and returns them with their requests, in one round trip.
func (s *Redis) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]bot.Claimed, error) {
	until := now.Add(lease)
	raw, err := claimScript.Run(ctx, s.rdb, []string{s.due}, s.p, ms(now), limit, ms(until)).Slice()
	if err != nil {
		return nil, err
	}
	out := make([]bot.Claimed, 0, len(raw))
	for _, x := range raw {
		row, ok := x.([]any)
		if !ok || len(row) != 4 {
			return nil, fmt.Errorf("claim: unexpected row %v", x)
		}
		body, _ := row[1].(string)
		req, _ := row[2].(string)
		taken, _ := row[3].(string)
		var c bot.Claimed
		if err := json.Unmarshal([]byte(body), &c.Job); err != nil {
			return nil, fmt.Errorf("decode job %v: %w", row[0], err)
		}
		if req != "" {
			if c.Request, err = decodeRequest(req); err != nil {
				return nil, err
			}
		}
		c.TakenOver, c.LeaseUntil = taken == "1", until
		out = append(out, c)
	}
	return out, nil
}

func (s *Redis) NextDue(ctx context.Context) (time.Time, error) {
	v, err := nextDueScript.Run(ctx, s.rdb, []string{s.due}, s.p).Text()
	if err != nil {
		return time.Time{}, err
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 {
		return time.Time{}, err
	}
	return time.UnixMilli(int64(n)), nil
}

func (s *Redis) Retry(ctx context.Context, j bot.Job, at time.Time) error {
	j.Attempt++
	j.Due = at
	body, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return retryScript.Run(ctx, s.rdb, []string{s.due}, s.p, j.ID, ms(at), string(body)).Err()
}

// Release hands leased jobs back to the queue, due at once whatever the clock says (score 0):
// the next claim of any replica takes them.
func (s *Redis) Release(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{s.p, 0}
	for _, id := range ids {
		args = append(args, id)
	}
	return releaseScript.Run(ctx, s.rdb, []string{s.due}, args...).Err()
}

// AuditSince reads audit records at or after since, oldest first.
func (s *Redis) AuditSince(ctx context.Context, since time.Time, limit int) ([]bot.AuditRecord, error) {
	start := "-"
	if !since.IsZero() {
		start = strconv.FormatInt(ms(since.Add(-time.Hour)), 10) // stream ids are server time; allow skew
	}
	var out []bot.AuditRecord
	for {
		msgs, err := s.rdb.XRangeN(ctx, s.p+"audit", start, "+", 1000).Result()
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			raw, _ := m.Values["r"].(string)
			var a bot.AuditRecord
			if err := json.Unmarshal([]byte(raw), &a); err != nil {
				continue
			}
			if !a.At.Before(since) {
				out = append(out, a)
				if limit > 0 && len(out) >= limit {
					return out, nil
				}
			}
		}
		if len(msgs) < 1000 {
			return out, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// OpenRequests maps open keys (requester|group id|access) to the open request's id.
func (s *Redis) OpenRequests(ctx context.Context) (map[string]string, error) {
	return s.rdb.HGetAll(ctx, s.p+"open").Result()
}

// KV: small values that surfaces keep across restarts.

func (s *Redis) kvKey(key string) string { return s.p + "kv:" + strings.ReplaceAll(key, "\n", "") }

func (s *Redis) GetValue(ctx context.Context, key string) (string, bool, error) {
	v, err := s.rdb.Get(ctx, s.kvKey(key)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	return v, err == nil, err
}

func (s *Redis) SetValue(ctx context.Context, key, value string, ttl time.Duration) error {
	return s.rdb.Set(ctx, s.kvKey(key), value, ttl).Err()
}

func (s *Redis) DeleteValue(ctx context.Context, key string) error {
	return s.rdb.Del(ctx, s.kvKey(key)).Err()
}

func (s *Redis) PutIfAbsent(ctx context.Context, key, value string, ttl time.Duration) (bool, error) {
	return s.rdb.SetNX(ctx, s.kvKey(key), value, ttl).Result()
}

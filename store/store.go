// Package store keeps pimbot's requests and durable job queue in Redis (standalone,
// Sentinel or Cluster through go-redis UniversalClient). Every transition is one Lua script.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
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

type txPut struct {
	ID       string `json:"id"`
	Expect   int64  `json:"expect"`
	Data     string `json:"data"`
	Terminal bool   `json:"terminal,omitempty"`
	Waiting  bool   `json:"waiting,omitempty"` // counted by max_pending
	User     string `json:"user"`
	Created  int64  `json:"created"`
}

type txLock struct {
	Key  string `json:"key"`
	ID   string `json:"id"`
	User string `json:"user"`
}

type txJob struct {
	ID    string `json:"id"`
	Due   int64  `json:"due"`
	Body  string `json:"body"`
	Order string `json:"order,omitempty"` // notify jobs: the order index they join (order.go)
	Seq   int64  `json:"seq,omitempty"`
}

type txLimits struct {
	User      string `json:"user"`
	PerMinute int    `json:"perMinute"`
	MaxOpen   int    `json:"maxOpen"`
	Minute    int64  `json:"minute"`
}

type txLease struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

type txWire struct {
	Puts       []txPut   `json:"puts,omitempty"`
	Lock       []txLock  `json:"lock,omitempty"`
	Unlock     []txLock  `json:"unlock,omitempty"`
	Fence      *txLease  `json:"fence,omitempty"`
	Ack        []txLease `json:"ack,omitempty"`
	Unschedule []string  `json:"unschedule,omitempty"`
	Schedule   []txJob   `json:"schedule,omitempty"`
	Audit      []string  `json:"audit,omitempty"`
	Limits     *txLimits `json:"limits,omitempty"`
	Retention  int64     `json:"retention"`
	AuditMax   int       `json:"auditMax"`
}

// Commit applies tx atomically in one round trip.
func (s *Redis) Commit(ctx context.Context, tx *bot.Tx) error {
	return s.CommitAll(ctx, []*bot.Tx{tx})[0]
}

// CommitAll applies each transaction atomically and on its own (one may fail on a conflict
// while the others are written), all in one round trip; the errors are in the order of txs.
func (s *Redis) CommitAll(ctx context.Context, txs []*bot.Tx) []error {
	errs := make([]error, len(txs))
	wires := make([]txWire, 0, len(txs))
	index := make([]int, 0, len(txs)) // wires[k] is txs[index[k]]
	for i, tx := range txs {
		w, err := s.encode(tx)
		if err != nil {
			errs[i] = err
			continue
		}
		wires, index = append(wires, w), append(index, i)
	}
	if len(wires) == 0 {
		return errs
	}
	arg, err := json.Marshal(wires)
	var raw []any
	if err == nil {
		raw, err = commitScript.Run(ctx, s.rdb, []string{s.due}, s.p, string(arg)).Slice()
	}
	if err == nil && len(raw) != len(wires) {
		err = fmt.Errorf("commit: %d answers for %d transactions", len(raw), len(wires))
	}
	for k, i := range index {
		if err != nil {
			errs[i] = err
		} else {
			errs[i] = commitResult(raw[k])
		}
	}
	return errs
}

func (s *Redis) encode(tx *bot.Tx) (txWire, error) {
	w := txWire{Unschedule: tx.Unschedule, Retention: int64(s.retention / time.Second), AuditMax: s.auditMax}
	if tx.Fence != nil {
		w.Fence = &txLease{ID: tx.Fence.JobID, Token: tx.Fence.Token}
	}
	for _, a := range tx.Ack {
		w.Ack = append(w.Ack, txLease{ID: a.JobID, Token: a.Token})
	}
	for _, p := range tx.Puts {
		r := p.Request.Clone()
		r.Version = p.Expect + 1
		data, err := json.Marshal(r)
		if err != nil {
			return w, fmt.Errorf("encode request: %w", err)
		}
		w.Puts = append(w.Puts, txPut{ID: r.ID, Expect: p.Expect, Data: string(data), Terminal: r.State.Terminal(),
			Waiting: r.State.Waiting(), User: r.Requester.ID, Created: ms(r.CreatedAt)})
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
			return w, fmt.Errorf("encode job: %w", err)
		}
		tj := txJob{ID: j.ID, Due: ms(j.Due), Body: string(body)}
		tj.Order, tj.Seq = notifyOrder(j)
		w.Schedule = append(w.Schedule, tj)
	}
	for _, a := range tx.Audit {
		data, err := json.Marshal(a)
		if err != nil {
			return w, fmt.Errorf("encode audit: %w", err)
		}
		w.Audit = append(w.Audit, string(data))
	}
	if l := tx.Limits; l != nil {
		w.Limits = &txLimits{User: l.UserID, PerMinute: l.PerMinute, MaxOpen: l.MaxOpen, Minute: l.Minute}
	}
	return w, nil
}

// commitResult reads one transaction's answer: {"OK"} or the reason it was refused.
func commitResult(x any) error {
	row, ok := x.([]any)
	if !ok || len(row) == 0 {
		return fmt.Errorf("commit: unexpected answer %v", x)
	}
	res := make([]string, len(row))
	for i, v := range row {
		res[i], _ = v.(string)
	}
	switch res[0] {
	case "OK":
		return nil
	case "CONFLICT":
		return fmt.Errorf("request %s changed meanwhile: %w", res[1], bot.ErrConflict)
	case "FENCED":
		return fmt.Errorf("job %s: %w", res[1], bot.ErrFenced)
	case "DUPLICATE":
		de := &bot.DuplicateError{ExistingID: res[1]}
		if len(res) > 2 && res[2] != "" {
			if r, err := decodeRequest(res[2]); err == nil {
				de.State = r.State
			}
		}
		return de
	case "LIMIT_OPEN":
		what := "requests"
		if res[1] == "1" {
			what = "request"
		}
		return &bot.LimitError{Message: "You already have " + res[1] + " " + what + " waiting (for approval, MFA or their start time), the most allowed at once; cancel one, or wait until one is decided or starts, then try again."}
	case "LIMIT_RATE":
		return &bot.LimitError{Message: "You have made " + res[1] + " requests in the last minute, the most allowed; wait a minute and try again."}
	}
	return fmt.Errorf("commit: unexpected answer %q", res[0])
}

// Claim leases due jobs and returns them with their requests, in one round trip. A row that
// cannot be decoded is moved to the dead-letter set and returned with Err set, so one bad
// record never stops the queue.
func (s *Redis) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]bot.Claimed, error) {
	until := now.Add(lease)
	token := newToken()
	raw, err := claimScript.Run(ctx, s.rdb, []string{s.due}, s.p, ms(now), limit, ms(until), token).Slice()
	if err != nil {
		return nil, err
	}
	out := make([]bot.Claimed, 0, len(raw))
	for _, x := range raw {
		row, ok := x.([]any)
		if !ok || len(row) != 4 {
			return nil, fmt.Errorf("claim: unexpected row %v", x)
		}
		id, _ := row[0].(string)
		body, _ := row[1].(string)
		req, _ := row[2].(string)
		taken, _ := row[3].(string)
		c := bot.Claimed{TakenOver: taken == "1", LeaseUntil: until, Token: token}
		if err := json.Unmarshal([]byte(body), &c.Job); err != nil {
			c.Err = fmt.Errorf("decode job %s: %w", id, err)
		} else if req != "" {
			if c.Request, err = decodeRequest(req); err != nil {
				c.Err = fmt.Errorf("request of job %s: %w", id, err)
			}
		}
		if c.Err != nil {
			c.Job = bot.Job{ID: id, Kind: jobKind(id), RequestID: jobRequestID(id)}
			c.Request = nil
			if derr := s.deadLetter(ctx, id, token, body, req, c.Err, now); derr != nil {
				c.Err = errors.Join(c.Err, fmt.Errorf("move to the dead-letter set: %w", derr))
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// jobKind and jobRequestID read a job id ("<kind>:<request id>[:...]") without its body.
func jobKind(id string) string { k, _, _ := strings.Cut(id, ":"); return k }
func jobRequestID(id string) string {
	_, rest, _ := strings.Cut(id, ":")
	rid, _, _ := strings.Cut(rest, ":")
	return rid
}

func newToken() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// DeadLetter is a job that could not be decoded, kept for an operator to look at.
type DeadLetter struct {
	JobID   string    `json:"job_id"`
	Job     string    `json:"job"`               // the stored job body, as it was
	Request string    `json:"request,omitempty"` // the stored request record, as it was
	Error   string    `json:"error"`
	At      time.Time `json:"at"`
}

func (s *Redis) deadLetter(ctx context.Context, id, token, body, req string, cause error, now time.Time) error {
	rec, err := json.Marshal(DeadLetter{JobID: id, Job: body, Request: req, Error: cause.Error(), At: now})
	if err != nil {
		return err
	}
	return deadScript.Run(ctx, s.rdb, []string{s.due}, s.p, id, token, string(rec)).Err()
}

// DeadLetters lists the jobs moved out of the queue because they could not be decoded.
func (s *Redis) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	m, err := s.rdb.HGetAll(ctx, s.p+"dead").Result()
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, 0, len(m))
	for id, v := range m {
		var d DeadLetter
		if json.Unmarshal([]byte(v), &d) != nil {
			d = DeadLetter{JobID: id, Error: "unreadable dead-letter record"}
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].JobID < out[j].JobID })
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

func (s *Redis) Retry(ctx context.Context, l bot.Lease, j bot.Job, at time.Time) error {
	j.Attempt++
	j.Due = at
	body, err := json.Marshal(j)
	if err != nil {
		return err
	}
	n, err := retryScript.Run(ctx, s.rdb, []string{s.due}, s.p, j.ID, ms(at), string(body), l.Token).Int()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("retry job %s: %w", j.ID, bot.ErrFenced)
	}
	return nil
}

// Release hands leased jobs back to the queue, due at once whatever the clock says (score 0):
// the next claim of any replica takes them. A job taken over meanwhile stays with its holder.
func (s *Redis) Release(ctx context.Context, leases []bot.Lease) error {
	if len(leases) == 0 {
		return nil
	}
	args := []any{s.p, 0}
	for _, l := range leases {
		args = append(args, l.JobID, l.Token)
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

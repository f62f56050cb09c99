package store

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Connection is an open Redis client and how to close it.
type Connection struct {
	Client   redis.UniversalClient
	Embedded bool   // an in-process Redis: state is lost on exit
	Kind     string // standalone, sentinel, cluster or embedded
	close    func()
}

// Close closes the client (and stops the embedded Redis).
func (c *Connection) Close() {
	if c.close != nil {
		c.close()
	}
}

// Connect opens REDIS_URL. Forms:
//
//	redis://[user:pass@]host:6379/0             standalone (rediss:// for TLS)
//	redis://host:26379?master_name=mymaster&addr=host2:26379   Sentinel (the hosts are sentinels)
//	redis+cluster://host1:6379?addr=host2:6379&addr=host3:6379 Cluster (rediss+cluster:// for TLS)
//
// An empty URL starts an embedded in-process Redis (miniredis) and says so in the log.
func Connect(ctx context.Context, rawURL string, log *slog.Logger) (*Connection, error) {
	if rawURL == "" {
		return Embedded(log)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL is not a URL (expected redis://host:6379): %w", redactErr(err, rawURL))
	}
	var c *Connection
	switch {
	case strings.HasSuffix(u.Scheme, "+cluster"):
		u.Scheme = strings.TrimSuffix(u.Scheme, "+cluster")
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL (cluster form): %w", redactErr(err, rawURL))
		}
		cl := redis.NewClusterClient(o)
		c = &Connection{Client: cl, Kind: "cluster", close: func() { cl.Close() }}
	case u.Query().Has("master_name"):
		o, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL (sentinel form): %w", redactErr(err, rawURL))
		}
		cl := redis.NewFailoverClient(o)
		c = &Connection{Client: cl, Kind: "sentinel", close: func() { cl.Close() }}
	default:
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", redactErr(err, rawURL))
		}
		cl := redis.NewClient(o)
		c = &Connection{Client: cl, Kind: "standalone", close: func() { cl.Close() }}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Client.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("Redis at %s does not answer: %w", Redact(rawURL), err)
	}
	return c, nil
}

// Embedded starts an in-process Redis on a random loopback port.
func Embedded(log *slog.Logger) (*Connection, error) {
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		return nil, fmt.Errorf("start embedded Redis: %w", err)
	}
	m.ClockTTL(true) // miniredis does not count TTLs down by itself
	if log != nil {
		log.Warn("REDIS_URL is not set: using an embedded in-process Redis; all requests and grants are lost when pimbot exits. Set REDIS_URL for real use.")
	}
	cl := redis.NewClient(&redis.Options{Addr: m.Addr()})
	return &Connection{Client: cl, Embedded: true, Kind: "embedded", close: func() { cl.Close(); m.Close() }}, nil
}

// redacted stands in for a secret in a URL shown in logs and errors.
const redacted = "*****"

// Redact hides the password of a Redis URL, for logs and errors. It writes the stand-in
// after encoding, since url.URL.String and url.Values.Encode would print it as
// %2A%2A%2A%2A%2A; the rest of the URL (the query's order too) is kept as given.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	userinfo := ""
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			userinfo = url.User(u.User.Username()).String() + ":" + redacted + "@"
			u.User = nil
		}
	}
	parts := strings.Split(u.RawQuery, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if name, err := url.QueryUnescape(k); err == nil && (name == "password" || name == "sentinel_password") {
			parts[i] = k + "=" + redacted
		}
	}
	u.RawQuery = strings.Join(parts, "&")
	s := u.String()
	if userinfo == "" {
		return s
	}
	scheme := ""
	if u.Scheme != "" {
		scheme = u.Scheme + ":"
	}
	return scheme + "//" + userinfo + strings.TrimPrefix(strings.TrimPrefix(s, scheme), "//")
}

func redactErr(err error, raw string) error {
	u, perr := url.Parse(raw)
	if perr != nil || u.User == nil {
		return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), raw, "(the URL)"))
	}
	msg := err.Error()
	if p, ok := u.User.Password(); ok && p != "" {
		msg = strings.ReplaceAll(msg, p, redacted)
	}
	return fmt.Errorf("%s", msg)
}

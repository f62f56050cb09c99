package store_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/store"
	"github.com/pimbot/pimbot/store/storetest"
	"github.com/redis/go-redis/v9"
)

// commitAndRead proves a connection carries the store's scripts, not just PING.
func commitAndRead(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	s := store.New(rdb, store.Options{Prefix: "connect-" + strconv.FormatInt(time.Now().UnixNano(), 36)})
	r := &bot.Request{ID: bot.NewID(), Kind: bot.KindActivate, State: bot.StatePending, Requester: bot.User{ID: "u1"}, CreatedAt: time.Now()}
	if err := s.Commit(ctx, &bot.Tx{Puts: []bot.Put{{Request: r}}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, r.ID); err != nil || got.Version != 1 {
		t.Fatalf("read back: %v %v", got, err)
	}
}

func TestConnect_StandaloneURL(t *testing.T) {
	storetest.Client(t)
	if storetest.Embedded() {
		t.Skip("no real Redis at REDIS_URL or 127.0.0.1:6379")
	}
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	conn, err := store.Connect(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.Kind != "standalone" || conn.Embedded {
		t.Fatalf("kind %q embedded %v", conn.Kind, conn.Embedded)
	}
	commitAndRead(t, conn.Client)
}

func TestConnect_EmptyURLIsEmbeddedAndSaysSo(t *testing.T) {
	conn, err := store.Connect(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.Kind != "embedded" || !conn.Embedded {
		t.Fatalf("kind %q embedded %v", conn.Kind, conn.Embedded)
	}
	commitAndRead(t, conn.Client)
}

// selfSigned makes a certificate for 127.0.0.1 (a TLS Redis in the test).
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redis.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// rediss:// speaks TLS and verifies the server's certificate: an unknown issuer is refused
// (and the error does not carry the password); skip_verify=true is the explicit opt-out.
func TestConnect_TLSVerifiesTheCertificate(t *testing.T) {
	m := miniredis.NewMiniRedis()
	if err := m.StartTLS(&tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.RequireAuth("s3cret-pass")
	ctx := context.Background()
	_, err := store.Connect(ctx, "rediss://:s3cret-pass@"+m.Addr()+"/0", nil)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a self-signed certificate was accepted: %v", err)
	}
	if strings.Contains(err.Error(), "s3cret-pass") || !strings.Contains(err.Error(), m.Addr()) {
		t.Fatalf("error shows the password or hides the address: %v", err)
	}
	conn, err := store.Connect(ctx, "rediss://:s3cret-pass@"+m.Addr()+"/0?skip_verify=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.Kind != "standalone" {
		t.Fatalf("kind %q", conn.Kind)
	}
	commitAndRead(t, conn.Client)
}

// The Sentinel form: the URL names sentinels and master_name; the client asks a sentinel
// where the master is. A real redis-server and a real sentinel (redis-server --sentinel).
func TestConnect_SentinelForm(t *testing.T) {
	bin := needRedisServer(t)
	master := startRedis(t, bin)
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	os.WriteFile(conf, []byte("sentinel monitor pimbot-test 127.0.0.1 "+strconv.Itoa(master)+" 1\n"), 0o600)
	sentinel := startRedis(t, bin, conf, "--sentinel")
	url := "redis://127.0.0.1:" + strconv.Itoa(sentinel) + "?master_name=pimbot-test"
	conn, err := store.Connect(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.Kind != "sentinel" {
		t.Fatalf("kind %q, want sentinel", conn.Kind)
	}
	commitAndRead(t, conn.Client)
	// It really is the master behind the sentinel that holds the data.
	direct := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(master)})
	defer direct.Close()
	if n, err := direct.DBSize(context.Background()).Result(); err != nil || n == 0 {
		t.Fatalf("master holds %d keys (%v)", n, err)
	}
}

// Bad URLs fail with a message that names REDIS_URL and never shows the password.
func TestConnect_BadURLsSayWhatIsWrong(t *testing.T) {
	dead := freePort(t)
	for _, tc := range []struct{ url, want string }{
		{"redis://:pw-secret@127.0.0.1:%zz", "REDIS_URL is not a URL"},
		{"http://127.0.0.1:6379", "REDIS_URL"},
		{"redis+cluster://:pw-secret@127.0.0.1:" + strconv.Itoa(dead) + "?addr=127.0.0.1:1&bogus=1", "REDIS_URL (cluster form)"},
		{"redis://:pw-secret@127.0.0.1:" + strconv.Itoa(dead) + "/0", "does not answer"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := store.Connect(ctx, tc.url, nil)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw-secret") {
			t.Errorf("%s: the error shows the password: %v", tc.url, err)
		}
	}
}

// Redact shows each secret as *****, not url's %2A%2A%2A%2A%2A, and keeps the rest of
// the URL as it was written (the query's order too).
func TestRedact(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"redis://pimbot:s3cret@h:6379/0", "redis://pimbot:*****@h:6379/0"},
		{"rediss://:s3cret@h:6380", "rediss://:*****@h:6380"},
		{"redis://h:26379?master_name=m&password=s3cret&addr=h2:26379&sentinel_password=s3cret",
			"redis://h:26379?master_name=m&password=*****&addr=h2:26379&sentinel_password=*****"},
		{"redis+cluster://u%40corp:s3cret@h1:6379?addr=h2:6379", "redis+cluster://u%40corp:*****@h1:6379?addr=h2:6379"},
		{"redis://pimbot@h:6379/0", "redis://pimbot@h:6379/0"},
	} {
		if got := store.Redact(tc.url); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.url, got, tc.want)
		}
	}
}

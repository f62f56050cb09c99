// Package graphclient is the bot.Directory over Microsoft Graph (msgraph-sdk-go + azidentity).
//
// Build one Directory at start-up and share it: the SDK's client is safe to share, and
// building clients per request is what made it crash with concurrent map writes elsewhere
// (msgraph-sdk-go #54, kiota-abstractions-go #75/#95).
package graphclient

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	kauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/pimbot/pimbot/bot"
)

// DefaultBaseURL is the public cloud's Graph; GRAPH_API_URL overrides it.
const DefaultBaseURL = "https://graph.microsoft.com/v1.0"

// Timeouts and bounds, named.
const (
	CallTimeout    = 20 * time.Second // one Graph call, its retries included; the job deadline is 30s
	AttemptTimeout = 10 * time.Second // one HTTP exchange with Graph
	MaxInFlight    = 16               // Graph calls at once per process: an expiry wave must not become a throttling storm
	MaxRetries     = 3                // retries of a throttled or failing call within CallTimeout; the job queue retries after that
	UserTTL        = 2 * time.Minute  // a user's id, mail, UPN and accountEnabled (a disabled account is refused within this)
	GroupIDTTL     = time.Hour        // a group's mail -> id (it never changes; kept past the TTL if Graph fails)
	MemberTTL      = time.Minute      // transitive membership answers (eligibility, approvers)
	NegativeTTL    = time.Minute      // "no such user / group"
	cacheEntries   = 50_000
	maxCheckGroups = 20 // checkMemberGroups takes at most 20 group ids
)

// Config of the Graph directory. Zero values take the defaults above.
type Config struct {
	BaseURL     string                 // GRAPH_API_URL; default DefaultBaseURL
	AccessToken string                 // GRAPH_ACCESS_TOKEN: a ready bearer token (development, tests)
	Credential  azcore.TokenCredential // otherwise this; nil: DefaultAzureCredential (AZURE_* variables, workload or managed identity)
	HTTPClient  *http.Client           // optional; its Transport is wrapped by the Graph middleware
	Logger      *slog.Logger
	MaxInFlight int
	CallTimeout time.Duration
	MaxRetries  int
	Now         func() time.Time // the clock of the caches
}

// Directory is the bot.Directory and bot.MemberLister over Microsoft Graph.
type Directory struct {
	client   *msgraphsdk.GraphServiceClient
	cred     azcore.TokenCredential
	scope    string
	base     string
	sem      chan struct{}
	throttle throttle
	timeout  time.Duration
	retries  int
	log      *slog.Logger

	users   *cache[bot.User]
	groups  *cache[string] // group mail -> id
	members *cache[bool]   // user id|group id -> member, transitively

	knownMu sync.Mutex
	known   map[string]bool  // group ids asked about: checked together in one checkMemberGroups
	refused map[string]error // group ids checkMemberGroups refused on their own: never batched
}

var (
	_ bot.Directory    = (*Directory)(nil)
	_ bot.MemberLister = (*Directory)(nil)
)

// staticToken is a TokenCredential that returns GRAPH_ACCESS_TOKEN.
type staticToken string

func (t staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(t), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// New builds the one shared Graph client.
func New(cfg Config) (*Directory, error) {
	u, err := parseBase(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	// The SDK attaches the token only to hosts in this list, compared by host name without
	// the port; with a mismatch it sends requests with no Authorization header at all and
	// reports nothing. So the list is exactly the host of the base URL.
	return newDirectory(cfg, u, []string{u.Hostname()})
}

func parseBase(raw string) (*url.URL, error) {
	base := strings.TrimRight(strings.TrimSpace(raw), "/")
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("GRAPH_API_URL %q is not a URL such as %s", raw, DefaultBaseURL)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("GRAPH_API_URL %q: Graph must be reached over https (plain http only on localhost, for tests)", raw)
	}
	return u, nil
}

func loopback(host string) bool {
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}

// newDirectory builds the client with the given allowed hosts (tests show what a mismatch does).
func newDirectory(cfg Config, base *url.URL, allowedHosts []string) (*Directory, error) {
	cred := cfg.Credential
	var err error
	switch {
	case cfg.AccessToken != "":
		cred = staticToken(cfg.AccessToken)
	case cred == nil:
		if cred, err = azidentity.NewDefaultAzureCredential(nil); err != nil {
			return nil, fmt.Errorf("credentials for Graph (AZURE_* variables, workload or managed identity): %w", err)
		}
	}
	// The token's audience is the Graph host: graph.microsoft.com, or a national cloud's
	// (graph.microsoft.us, dod-graph.microsoft.us, microsoftgraph.chinacloudapi.cn).
	scope := "https://graph.microsoft.com/.default"
	if base.Scheme == "https" && base.Hostname() != "graph.microsoft.com" {
		scope = "https://" + base.Hostname() + "/.default"
	}
	auth, err := kauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, []string{scope}, allowedHosts)
	if err != nil {
		return nil, fmt.Errorf("authentication for Graph: %w", err)
	}
	opts := msgraphsdk.GetDefaultClientOptions()
	var mws []khttp.Middleware
	for _, m := range msgraphcore.GetDefaultMiddlewaresWithOptions(&opts) {
		switch m.(type) {
		case *khttp.CompressionHandler:
			// It gzips request bodies, and its retry then re-sends them plain but still
			// labelled gzip (kiota-http-go #183). Graph bodies here are tiny: leave it out.
			continue
		case *khttp.RetryHandler:
			// Retries are ours (Directory.call): a throttled call waits without holding
			// one of the MaxInFlight slots, within the call's deadline.
			continue
		}
		mws = append(mws, m)
	}
	httpClient := msgraphcore.GetDefaultClient(&opts, mws...)
	if cfg.HTTPClient != nil && cfg.HTTPClient.Transport != nil {
		httpClient.Transport = khttp.NewCustomTransportWithParentTransport(cfg.HTTPClient.Transport, mws...)
	}
	httpClient.Timeout = AttemptTimeout
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, httpClient)
	if err != nil {
		return nil, fmt.Errorf("request adapter for Graph: %w", err)
	}
	baseURL := strings.TrimRight(base.String(), "/")
	adapter.SetBaseUrl(baseURL)
	d := &Directory{
		client: msgraphsdk.NewGraphServiceClient(adapter), cred: cred, scope: scope, base: baseURL,
		sem: make(chan struct{}, orDefault(cfg.MaxInFlight, MaxInFlight)), timeout: orDefault(cfg.CallTimeout, CallTimeout),
		retries: orDefault(cfg.MaxRetries, MaxRetries), log: cfg.Logger, known: map[string]bool{}, refused: map[string]error{},
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	d.users, d.groups, d.members = newCache[bot.User](now, cacheEntries), newCache[string](now, cacheEntries), newCache[bool](now, cacheEntries)
	return d, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// BaseURL is the Graph base the directory talks to.
func (d *Directory) BaseURL() string { return d.base }

// call runs one Graph operation with a deadline and a bound on calls in flight. Throttling
// (429), server errors and network errors are retried here, honouring Retry-After, without
// holding a slot while waiting, so one throttled call does not stall the others. A streak of
// 429s pauses every call of the process until Retry-After (see ThrottleStreak). A wait that
// would outlast the deadline is not started: the job queue retries later, with backoff.
func (d *Directory) call(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var err error
	for attempt := 0; ; attempt++ {
		probe, werr := d.acquire(ctx)
		if werr != nil {
			if err != nil {
				return err // the last answer says more than the wait that ended
			}
			return werr
		}
		err = f(ctx)
		<-d.sem
		d.throttle.observe(err, probe)
		after, again := retryable(err)
		if !again || attempt >= d.retries || ctx.Err() != nil {
			return err
		}
		wait := retryWait(after, attempt)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// acquire takes a call slot once any process-wide throttling pause is over. probe: this
// call is the one sent to see whether Graph still throttles.
func (d *Directory) acquire(ctx context.Context) (probe bool, err error) {
	for {
		if probe, err = d.throttle.wait(ctx); err != nil {
			return false, err
		}
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			if probe {
				d.throttle.giveUp()
			}
			return false, fmt.Errorf("graph: waiting for a free call slot: %w", ctx.Err())
		}
		if !d.throttle.paused() {
			return probe, nil
		}
		<-d.sem // a pause began while this call waited for its slot
		if probe {
			d.throttle.giveUp()
		}
	}
}

// retryWait is Graph's Retry-After plus a little jitter (so that a wave of throttled calls
// does not come back in the same millisecond), or exponential backoff with jitter without
// one: about 0.5s, 1s, 2s.
func retryWait(after time.Duration, attempt int) time.Duration {
	if after >= 0 {
		return after + rand.N(after/10+100*time.Millisecond)
	}
	d := 500 * time.Millisecond << attempt
	return d/2 + rand.N(d/2+1)
}

// Package graphclient is the bot.Directory over Microsoft Graph (msgraph-sdk-go + azidentity).
// Build one Directory at start-up and share it: the SDK's client is safe to share, and
// building clients per request is what made it crash with concurrent map writes elsewhere.
package graphclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
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
	"github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
	"github.com/pimbot/pimbot/bot"
)

// DefaultBaseURL is the public cloud's Graph; GRAPH_API_URL overrides it.
const DefaultBaseURL = "https://graph.microsoft.com/v1.0"

// Timeouts and bounds, named.
const (
	CallTimeout  = 20 * time.Second // one Graph call, retries of the SDK included
	MaxInFlight  = 16               // Graph calls at once per process, so an expiry wave does not become a throttling storm
	MaxRetries   = 3                // retries of a throttled or unavailable call, within CallTimeout; the job queue retries after that
	UserCacheTTL = 10 * time.Minute
	MemberTTL    = time.Minute // transitive membership answers (eligibility, approvers)
	NegativeTTL  = time.Minute
)

// Config of the Graph directory.
type Config struct {
	BaseURL     string                 // GRAPH_API_URL
	AccessToken string                 // GRAPH_ACCESS_TOKEN: a ready bearer token (development, tests)
	Credential  azcore.TokenCredential // otherwise; nil: DefaultAzureCredential
	HTTPClient  *http.Client           // optional; its Transport is wrapped by the Graph middleware
	Logger      *slog.Logger
}

// Directory is the bot.Directory and bot.MemberLister over Microsoft Graph.
type Directory struct {
	client *msgraphsdk.GraphServiceClient
	base   string
	sem    chan struct{}
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	users   map[string]cached[bot.User]
	groups  map[string]cached[string] // group mail/id -> id
	members map[string]cached[bool]   // user|group -> in group (transitively)
}

type cached[T any] struct {
	v   T
	err error
	at  time.Time
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
	base := strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("GRAPH_API_URL %q is not a URL such as %s", cfg.BaseURL, DefaultBaseURL)
	}
	cred := cfg.Credential
	switch {
	case cfg.AccessToken != "":
		cred = staticToken(cfg.AccessToken)
	case cred == nil:
		if cred, err = azidentity.NewDefaultAzureCredential(nil); err != nil {
			return nil, fmt.Errorf("Graph credentials (AZURE_* variables, workload or managed identity): %w", err)
		}
	}
	// The token goes only to hosts listed here, by host name without the port; a mismatch
	// sends requests with no Authorization header at all.
	scope := "https://graph.microsoft.com/.default"
	if u.Hostname() != "graph.microsoft.com" && u.Scheme == "https" {
		scope = "https://" + u.Hostname() + "/.default" // national clouds
	}
	auth, err := kauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, []string{scope}, []string{u.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("Graph authentication: %w", err)
	}
	opts := msgraphsdk.GetDefaultClientOptions()
	var mws []khttp.Middleware
	for _, m := range msgraphcore.GetDefaultMiddlewaresWithOptions(&opts) {
		switch m.(type) {
		case *khttp.CompressionHandler:
			// It gzips bodies, and a retry then re-sends them plain but still labelled gzip
			// (kiota-http-go #183): leave it out.
			continue
		case *khttp.RetryHandler:
			// Retries are ours (call), so a throttled call waits without holding a slot.
			m = khttp.NewRetryHandlerWithOptions(khttp.RetryHandlerOptions{ShouldRetry: func(time.Duration, int, *http.Request, *http.Response) bool { return false }})
		}
		mws = append(mws, m)
	}
	httpClient := msgraphcore.GetDefaultClient(&opts, mws...)
	if cfg.HTTPClient != nil && cfg.HTTPClient.Transport != nil {
		httpClient.Transport = khttp.NewCustomTransportWithParentTransport(cfg.HTTPClient.Transport, mws...)
	}
	httpClient.Timeout = CallTimeout
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, httpClient)
	if err != nil {
		return nil, fmt.Errorf("Graph adapter: %w", err)
	}
	adapter.SetBaseUrl(base)
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Directory{client: msgraphsdk.NewGraphServiceClient(adapter), base: base, sem: make(chan struct{}, MaxInFlight), log: log, now: time.Now,
		users: map[string]cached[bot.User]{}, groups: map[string]cached[string]{}, members: map[string]cached[bool]{}}, nil
}

// call runs one Graph call with a deadline and a bound on calls in flight. Throttling (429)
// and outages (503, 504) are retried here, honouring Retry-After, without holding a slot
// while waiting, so one throttled call does not stall the others.
func (d *Directory) call(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		err := f(ctx)
		<-d.sem
		e, again := retryable(err)
		if !again || attempt > MaxRetries {
			return err
		}
		wait := e.RetryAfter
		if wait < 0 {
			wait = time.Duration(1<<attempt) * time.Second / 2 // 1s, 2s, 4s
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

var guidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func odataQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

var userSelect = []string{"id", "mail", "userPrincipalName", "displayName"}

func toUser(u models.Userable) bot.User {
	return bot.User{ID: deref(u.GetId()), Email: strings.ToLower(deref(u.GetMail())), UPN: strings.ToLower(deref(u.GetUserPrincipalName())), Name: deref(u.GetDisplayName())}
}

// ResolveUser finds a user by object id, UPN, or mail (also when mail and UPN differ).
func (d *Directory) ResolveUser(ctx context.Context, ref string) (bot.User, error) {
	key := strings.ToLower(strings.TrimSpace(ref))
	if key == "" || len(key) > 256 || strings.ContainsAny(key, "/?\\") {
		return bot.User{}, fmt.Errorf("no directory user %q: %w", ref, bot.ErrNotFound)
	}
	d.mu.Lock()
	c, ok := d.users[key]
	d.mu.Unlock()
	if ok && d.now().Sub(c.at) < ttlOf(c.err, UserCacheTTL) {
		return c.v, c.err
	}
	u, err := d.lookupUser(ctx, key)
	if err == nil || errors.Is(err, bot.ErrNotFound) {
		d.mu.Lock()
		d.users[key] = cached[bot.User]{v: u, err: err, at: d.now()}
		d.mu.Unlock()
	}
	return u, err
}

func ttlOf(err error, ok time.Duration) time.Duration {
	if err != nil {
		return NegativeTTL
	}
	return ok
}

func (d *Directory) lookupUser(ctx context.Context, key string) (bot.User, error) {
	// By object id or UPN: GET /users/{id | userPrincipalName}
	if guidRe.MatchString(key) || strings.Contains(key, "@") {
		var got models.Userable
		err := d.call(ctx, func(ctx context.Context) (err error) {
			got, err = d.client.Users().ByUserId(key).Get(ctx, &users.UserItemRequestBuilderGetRequestConfiguration{
				QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{Select: userSelect}})
			return wrap("look up user", err)
		})
		if err == nil {
			return toUser(got), nil
		}
		if !notFound(err) || guidRe.MatchString(key) {
			return bot.User{}, err
		}
	}
	// By mail, when it differs from the UPN: GET /users?$filter=mail eq '...'
	filter := "mail eq " + odataQuote(key)
	var list models.UserCollectionResponseable
	err := d.call(ctx, func(ctx context.Context) (err error) {
		list, err = d.client.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Filter: &filter, Select: userSelect}})
		return wrap("look up user by mail", err)
	})
	if err != nil {
		return bot.User{}, err
	}
	if vs := list.GetValue(); len(vs) == 1 {
		return toUser(vs[0]), nil
	}
	return bot.User{}, fmt.Errorf("no directory user %q: %w", key, bot.ErrNotFound)
}

// groupID turns a group's mail or id into its object id.
func (d *Directory) groupID(ctx context.Context, ref string) (string, error) {
	ref = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(ref, "group:")))
	if guidRe.MatchString(ref) {
		return ref, nil
	}
	d.mu.Lock()
	c, ok := d.groups[ref]
	d.mu.Unlock()
	if ok && d.now().Sub(c.at) < ttlOf(c.err, UserCacheTTL) {
		return c.v, c.err
	}
	filter := "mail eq " + odataQuote(ref)
	var list models.GroupCollectionResponseable
	err := d.call(ctx, func(ctx context.Context) (err error) {
		list, err = d.client.Groups().Get(ctx, &groups.GroupsRequestBuilderGetRequestConfiguration{
			QueryParameters: &groups.GroupsRequestBuilderGetQueryParameters{Filter: &filter, Select: []string{"id"}}})
		return wrap("look up group by mail", err)
	})
	var id string
	if err == nil {
		if vs := list.GetValue(); len(vs) == 1 {
			id = deref(vs[0].GetId())
		} else {
			err = fmt.Errorf("no directory group with mail %q: %w", ref, bot.ErrNotFound)
		}
	}
	if err == nil || errors.Is(err, bot.ErrNotFound) {
		d.mu.Lock()
		d.groups[ref] = cached[string]{v: id, err: err, at: d.now()}
		d.mu.Unlock()
	}
	return id, err
}

// InGroup checks transitive membership with checkMemberGroups, cached for a minute.
func (d *Directory) InGroup(ctx context.Context, userID, groupRef string) (bool, error) {
	gid, err := d.groupID(ctx, groupRef)
	if errors.Is(err, bot.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	key := userID + "|" + gid
	d.mu.Lock()
	c, ok := d.members[key]
	d.mu.Unlock()
	if ok && d.now().Sub(c.at) < MemberTTL {
		return c.v, nil
	}
	body := users.NewItemCheckMemberGroupsPostRequestBody()
	body.SetGroupIds([]string{gid})
	var resp users.ItemCheckMemberGroupsPostResponseable
	err = d.call(ctx, func(ctx context.Context) (err error) {
		resp, err = d.client.Users().ByUserId(userID).CheckMemberGroups().PostAsCheckMemberGroupsPostResponse(ctx, body, nil)
		return wrap("check group membership", err)
	})
	if notFound(err) {
		return false, nil // no such user
	}
	if err != nil {
		return false, err
	}
	in := false
	for _, id := range resp.GetValue() {
		in = in || strings.EqualFold(id, gid)
	}
	d.mu.Lock()
	d.members[key] = cached[bool]{v: in, at: d.now()}
	d.mu.Unlock()
	return in, nil
}

// Add makes the user a member or owner; "already there" is success.
func (d *Directory) Add(ctx context.Context, groupID, userID string, access bot.Access) error {
	ref := models.NewReferenceCreate()
	odataID := d.base + "/directoryObjects/" + userID
	ref.SetOdataId(&odataID)
	op := "add " + string(access)
	err := d.call(ctx, func(ctx context.Context) error {
		g := d.client.Groups().ByGroupId(groupID)
		if access == bot.Owner {
			return wrap(op, g.Owners().Ref().Post(ctx, ref, nil))
		}
		return wrap(op, g.Members().Ref().Post(ctx, ref, nil))
	})
	if alreadyExists(err) {
		return nil
	}
	return err
}

// Remove ends the membership or ownership; "not there" (404) is success.
func (d *Directory) Remove(ctx context.Context, groupID, userID string, access bot.Access) error {
	op := "remove " + string(access)
	err := d.call(ctx, func(ctx context.Context) error {
		g := d.client.Groups().ByGroupId(groupID)
		if access == bot.Owner {
			return wrap(op, g.Owners().ByDirectoryObjectId(userID).Ref().Delete(ctx, nil))
		}
		return wrap(op, g.Members().ByDirectoryObjectId(userID).Ref().Delete(ctx, nil))
	})
	if notFound(err) {
		return nil
	}
	return err
}

// Holders lists the direct members or owners of a group (users only), following pages.
func (d *Directory) Holders(ctx context.Context, groupID string, access bot.Access) ([]bot.User, error) {
	var out []bot.User
	var page models.DirectoryObjectCollectionResponseable
	next := ""
	for i := 0; i < 1000; i++ {
		err := d.call(ctx, func(ctx context.Context) (err error) {
			g := d.client.Groups().ByGroupId(groupID)
			if access == bot.Owner {
				b := g.Owners()
				if next != "" {
					b = b.WithUrl(next)
				}
				page, err = b.Get(ctx, nil)
			} else {
				b := g.Members()
				if next != "" {
					b = b.WithUrl(next)
				}
				page, err = b.Get(ctx, nil)
			}
			return wrap("list "+string(access)+"s", err)
		})
		if err != nil {
			return nil, err
		}
		for _, o := range page.GetValue() {
			if u, ok := o.(models.Userable); ok {
				out = append(out, toUser(u))
			}
		}
		if page.GetOdataNextLink() == nil || *page.GetOdataNextLink() == "" {
			return out, nil
		}
		next = *page.GetOdataNextLink()
	}
	return out, nil
}

// GroupName reads a group's display name (for pimbot check).
func (d *Directory) GroupName(ctx context.Context, groupID string) (string, error) {
	var g models.Groupable
	err := d.call(ctx, func(ctx context.Context) (err error) {
		g, err = d.client.Groups().ByGroupId(groupID).Get(ctx, &groups.GroupItemRequestBuilderGetRequestConfiguration{
			QueryParameters: &groups.GroupItemRequestBuilderGetQueryParameters{Select: []string{"id", "displayName", "isAssignableToRole"}}})
		return wrap("read group", err)
	})
	if err != nil {
		return "", err
	}
	return deref(g.GetDisplayName()), nil
}

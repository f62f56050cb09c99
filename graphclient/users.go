package graphclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
	"github.com/pimbot/pimbot/bot"
)

var guidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// IsObjectID reports whether s has the shape of an Entra object id (a GUID).
func IsObjectID(s string) bool { return guidRe.MatchString(s) }

// odataQuote quotes a string literal for $filter (” escapes a quote).
func odataQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

var userSelect = []string{"id", "mail", "userPrincipalName", "displayName", "accountEnabled"}

// toUser reads a Graph user. accountEnabled is returned only when selected; a user whose
// account is disabled (accountEnabled: false) comes back with Disabled set.
func toUser(u models.Userable) bot.User {
	return bot.User{ID: deref(u.GetId()), Email: strings.ToLower(deref(u.GetMail())),
		UPN: strings.ToLower(deref(u.GetUserPrincipalName())), Name: deref(u.GetDisplayName()),
		Disabled: u.GetAccountEnabled() != nil && !*u.GetAccountEnabled()}
}

// ResolveUser finds a user by object id, UPN, mail or an alias address (proxyAddresses),
// also when mail and UPN differ (guests, tenants whose sign-in names are not their
// addresses). Answers are cached for UserTTL, "no such user" for NegativeTTL.
func (d *Directory) ResolveUser(ctx context.Context, ref string) (bot.User, error) {
	key := strings.ToLower(strings.TrimSpace(ref))
	if key == "" || len(key) > 256 || strings.ContainsAny(key, "/?\\%\x00\r\n") {
		return bot.User{}, fmt.Errorf("no directory user %q: %w", ref, bot.ErrNotFound)
	}
	return d.users.do(ctx, key, func(err error) time.Duration {
		switch {
		case err == nil:
			return UserTTL
		case errors.Is(err, bot.ErrNotFound):
			return NegativeTTL
		}
		return 0 // a failure is not remembered
	}, func(ctx context.Context) (bot.User, error) { return d.lookupUser(ctx, key) })
}

func (d *Directory) lookupUser(ctx context.Context, key string) (bot.User, error) {
	pathRefused := false
	// By object id or UPN: GET /users/{id | userPrincipalName}
	if IsObjectID(key) || strings.Contains(key, "@") {
		var got models.Userable
		err := d.call(ctx, func(ctx context.Context) (err error) {
			got, err = d.client.Users().ByUserId(key).Get(ctx, &users.UserItemRequestBuilderGetRequestConfiguration{
				QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{Select: userSelect}})
			return wrap("look up user", PermUserRead, err)
		})
		if err == nil {
			return toUser(got), nil
		}
		// 404: no user with that UPN or id. 400: not a valid UPN (Graph's "Invalid object
		// identifier"). Either way, the mail may still name someone.
		s := statusOf(err)
		if s != http.StatusNotFound && s != http.StatusBadRequest {
			return bot.User{}, err
		}
		if IsObjectID(key) {
			return bot.User{}, fmt.Errorf("no directory user with id %s: %w", key, bot.ErrNotFound)
		}
		pathRefused = s == http.StatusBadRequest
	}
	// Then by filter: the UPN when Graph would not take it in the path (a UPN Graph reads
	// as something else, such as one starting with $), the primary mail when it is not also
	// the UPN (guests, tenants whose sign-in names are not their addresses), and an alias:
	// proxyAddresses holds "SMTP:primary@…" and "smtp:alias@…", and Graph compares them
	// without regard to case (user resource, https://learn.microsoft.com/graph/api/resources/user:
	// proxyAddresses supports $filter with eq on any()).
	var lookups [][2]string
	if pathRefused {
		lookups = append(lookups, [2]string{"userPrincipalName eq " + odataQuote(key), "look up user by UPN"})
	}
	lookups = append(lookups, [2]string{"mail eq " + odataQuote(key), "look up user by mail"})
	if strings.Count(key, "@") == 1 {
		lookups = append(lookups, [2]string{"proxyAddresses/any(p:p eq " + odataQuote("smtp:"+key) + ")", "look up user by alias"})
	}
	for _, l := range lookups {
		u, found, err := d.findUser(ctx, l[0], l[1], key)
		if err != nil || found {
			return u, err
		}
	}
	return bot.User{}, fmt.Errorf("no directory user %q: %w", key, bot.ErrNotFound)
}

// findUser runs one $filter lookup: GET /users?$filter=…. found is false when nobody matches.
func (d *Directory) findUser(ctx context.Context, filter, op, key string) (u bot.User, found bool, err error) {
	var list models.UserCollectionResponseable
	err = d.call(ctx, func(ctx context.Context) (err error) {
		list, err = d.client.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Filter: &filter, Select: userSelect}})
		return wrap(op, PermUserRead, err)
	})
	if statusOf(err) == http.StatusBadRequest {
		return bot.User{}, false, nil // Graph cannot search for it this way
	}
	if err != nil {
		return bot.User{}, false, err
	}
	switch vs := list.GetValue(); len(vs) {
	case 0:
		return bot.User{}, false, nil
	case 1:
		return toUser(vs[0]), true, nil
	default:
		return bot.User{}, false, fmt.Errorf("%d directory users match %q (%s); name the person by UPN or object id: %w", len(vs), key, filter, bot.ErrNotFound)
	}
}

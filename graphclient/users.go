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

// ResolveUser finds a user by object id, UPN, or mail (also when mail and UPN differ, as
// for guests and for tenants whose sign-in names are not their addresses). Answers are
// cached for UserTTL, "no such user" for NegativeTTL.
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
		if s := statusOf(err); s != http.StatusNotFound && s != http.StatusBadRequest {
			return bot.User{}, err
		}
		if IsObjectID(key) {
			return bot.User{}, fmt.Errorf("no directory user with id %s: %w", key, bot.ErrNotFound)
		}
	}
	// By mail, when it is not also the UPN: GET /users?$filter=mail eq '...'
	filter := "mail eq " + odataQuote(key)
	var list models.UserCollectionResponseable
	err := d.call(ctx, func(ctx context.Context) (err error) {
		list, err = d.client.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Filter: &filter, Select: userSelect}})
		return wrap("look up user by mail", PermUserRead, err)
	})
	if statusOf(err) == http.StatusBadRequest {
		return bot.User{}, fmt.Errorf("no directory user %q (Graph cannot search for it): %w", key, bot.ErrNotFound)
	}
	if err != nil {
		return bot.User{}, err
	}
	switch vs := list.GetValue(); len(vs) {
	case 1:
		return toUser(vs[0]), nil
	case 0:
		return bot.User{}, fmt.Errorf("no directory user %q: %w", key, bot.ErrNotFound)
	default:
		return bot.User{}, fmt.Errorf("%d directory users have the mail %q; name the person by UPN or object id: %w", len(vs), key, bot.ErrNotFound)
	}
}

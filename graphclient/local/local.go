// Package local is the in-memory directory used when no Graph credentials are set:
// users and groups come from the policy file's directory: section and the managed groups.
package local

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// Op is one membership change the directory carried out (for `members`, tests and demos).
type Op struct {
	At      time.Time
	Op      string // add or remove
	GroupID string
	UserID  string
	Access  bot.Access
	Changed bool // false when it was already so (idempotent no-op)
}

type group struct {
	id, mail, name string
	members        map[string]bool // user ids, or "group:<id>" for nested groups
	owners         map[string]bool
}

// Directory is a bot.Directory and bot.MemberLister held in memory.
type Directory struct {
	mu     sync.Mutex
	users  []bot.User
	byKey  map[string]int    // lower-case id, e-mail and UPN -> index in users
	groups map[string]*group // by lower-case id and mail
	ops    []Op
	delay  time.Duration
	fault  func(op, groupID, userID string) error
	// lag imitates Entra's replication lag (0: none): for this long after an add, Holds
	// answers false and Remove answers ErrNotHeld while the holder stays.
	lag     time.Duration
	now     func() time.Time
	addedAt map[string]time.Time // group|access|user
}

var (
	_ bot.Directory    = (*Directory)(nil)
	_ bot.MemberLister = (*Directory)(nil)
	_ bot.Lagging      = (*Directory)(nil)
)

// DerivedID gives a stable, GUID-shaped object id for a seeded user without one.
func DerivedID(email string) string {
	h := sha1.Sum([]byte(strings.ToLower(email)))
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// New seeds a directory from the policy.
func New(p *bot.Policy) *Directory {
	d := &Directory{groups: map[string]*group{}, byKey: map[string]int{}, now: time.Now, addedAt: map[string]time.Time{}}
	for _, su := range p.Users {
		u := bot.User(su)
		if u.UPN == "" {
			u.UPN = u.Email
		}
		if u.Email == "" {
			u.Email = u.UPN
		}
		if u.ID == "" {
			u.ID = DerivedID(u.Email)
		}
		d.addUser(u)
	}
	for _, g := range p.Groups {
		d.addGroup(&group{id: g.ID, name: g.Name})
	}
	for _, sg := range p.DirGroups {
		id := sg.ID
		if id == "" {
			id = DerivedID("group:" + sg.Mail)
		}
		g := d.lookupGroup(id)
		if g == nil && sg.Mail != "" {
			g = d.lookupGroup(sg.Mail)
		}
		if g == nil {
			g = &group{id: id}
		}
		if sg.Mail != "" {
			g.mail = sg.Mail
		}
		if sg.Name != "" {
			g.name = sg.Name
		}
		d.addGroup(g)
	}
	// Members after all groups exist, so nested references resolve.
	for _, sg := range p.DirGroups {
		g := d.lookupGroup(sg.ID)
		if g == nil {
			g = d.lookupGroup(sg.Mail)
		}
		for _, m := range sg.Members {
			g.members[d.memberKey(m)] = true
		}
		for _, m := range sg.Owners {
			g.owners[d.memberKey(m)] = true
		}
	}
	return d
}

func (d *Directory) addGroup(g *group) {
	if g.members == nil {
		g.members, g.owners = map[string]bool{}, map[string]bool{}
	}
	d.groups[strings.ToLower(g.id)] = g
	if g.mail != "" {
		d.groups[strings.ToLower(g.mail)] = g
	}
}

func (d *Directory) lookupGroup(ref string) *group {
	if ref == "" {
		return nil
	}
	return d.groups[strings.ToLower(strings.TrimPrefix(ref, "group:"))]
}

func (d *Directory) memberKey(ref string) string {
	if strings.HasPrefix(ref, "group:") {
		if g := d.lookupGroup(ref); g != nil {
			return "group:" + g.id
		}
		return ref
	}
	if u, ok := d.findUser(ref); ok {
		return u.ID
	}
	return ref
}

// AddUser adds a person to the directory (as an administrator creates an account).
func (d *Directory) AddUser(u bot.User) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addUser(u)
}

func (d *Directory) addUser(u bot.User) {
	d.users = append(d.users, u)
	for _, k := range []string{u.ID, u.Email, u.UPN} {
		if k = strings.ToLower(k); k != "" {
			if _, taken := d.byKey[k]; !taken {
				d.byKey[k] = len(d.users) - 1
			}
		}
	}
}

func (d *Directory) findUser(ref string) (bot.User, bool) {
	r := strings.ToLower(strings.TrimSpace(ref))
	if i, ok := d.byKey[r]; ok {
		return d.users[i], true
	}
	// "alice" for alice@example.com, as people type in the shell
	if !strings.Contains(r, "@") {
		for _, u := range d.users {
			if local, _, ok := strings.Cut(strings.ToLower(u.Email), "@"); ok && local == r {
				return u, true
			}
		}
	}
	return bot.User{}, false
}

// SetLag makes the directory lag as Entra does: for d after an add, the new holder is
// invisible to Holds and a Remove answers ErrNotHeld (and removes nothing).
func (d *Directory) SetLag(lag time.Duration) {
	d.mu.Lock()
	d.lag = lag
	d.mu.Unlock()
}

// ReplicationLag is the lag set with SetLag (bot.Lagging).
func (d *Directory) ReplicationLag() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lag
}

// SetClock sets the clock the lag and the Ops are measured with (tests use a fake one).
func (d *Directory) SetClock(now func() time.Time) {
	d.mu.Lock()
	d.now = now
	d.mu.Unlock()
}

func (d *Directory) lagging(g *group, userID string, access bot.Access) bool {
	at, ok := d.addedAt[g.id+"|"+string(access)+"|"+userID]
	return ok && d.lag > 0 && d.now().Sub(at) < d.lag
}

// SetDelay makes every call wait (to show that surfaces never wait on the directory).
func (d *Directory) SetDelay(delay time.Duration) {
	d.mu.Lock()
	d.delay = delay
	d.mu.Unlock()
}

// SetFault makes Add/Remove fail while f returns an error (a directory outage in tests and demos).
func (d *Directory) SetFault(f func(op, groupID, userID string) error) {
	d.mu.Lock()
	d.fault = f
	d.mu.Unlock()
}

func (d *Directory) wait(ctx context.Context) error {
	d.mu.Lock()
	delay := d.delay
	d.mu.Unlock()
	if delay <= 0 {
		return nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ResolveUser finds a user by e-mail, UPN, object id, or the part of the e-mail before the @.
func (d *Directory) ResolveUser(ctx context.Context, ref string) (bot.User, error) {
	if err := d.wait(ctx); err != nil {
		return bot.User{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if u, ok := d.findUser(ref); ok {
		return u, nil
	}
	return bot.User{}, fmt.Errorf("no directory user %q: %w", ref, bot.ErrNotFound)
}

// Users lists the seeded users.
func (d *Directory) Users() []bot.User {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]bot.User(nil), d.users...)
}

// InGroup checks membership transitively through nested groups.
func (d *Directory) InGroup(ctx context.Context, userID, groupRef string) (bool, error) {
	if err := d.wait(ctx); err != nil {
		return false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.lookupGroup(groupRef)
	if g == nil {
		return false, nil
	}
	seen := map[string]bool{}
	var walk func(g *group) bool
	walk = func(g *group) bool {
		if seen[g.id] {
			return false
		}
		seen[g.id] = true
		if g.members[userID] {
			return true
		}
		for m := range g.members {
			if strings.HasPrefix(m, "group:") {
				if sub := d.lookupGroup(m); sub != nil && walk(sub) {
					return true
				}
			}
		}
		return false
	}
	return walk(g), nil
}

func (d *Directory) change(ctx context.Context, op, groupID, userID string, access bot.Access) error {
	if err := d.wait(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fault != nil {
		if err := d.fault(op, groupID, userID); err != nil {
			return err
		}
	}
	g := d.lookupGroup(groupID)
	if g == nil || !strings.EqualFold(g.id, groupID) {
		return fmt.Errorf("group %s does not exist in the directory: %w", groupID, bot.ErrNotFound)
	}
	set := g.members
	if access == bot.Owner {
		set = g.owners
	}
	changed := set[userID] != (op == "add")
	if op == "remove" && (!set[userID] || d.lagging(g, userID, access)) {
		// Graph answers 404 Request_ResourceNotFound when removing a non-holder.
		return fmt.Errorf("%s does not hold %s of %s: %w", userID, access, g.id, bot.ErrNotHeld)
	}
	if op == "remove" && access == bot.Owner && len(set) == 1 {
		// Graph: "The group must have at least one owner, hence this owner cannot be removed."
		return fmt.Errorf("%s is the last owner of %s: %w", userID, g.id, bot.ErrLastOwner)
	}
	if op == "add" {
		set[userID] = true
		if changed {
			d.addedAt[g.id+"|"+string(access)+"|"+userID] = d.now()
		}
	} else {
		delete(set, userID)
	}
	d.ops = append(d.ops, Op{At: d.now(), Op: op, GroupID: g.id, UserID: userID, Access: access, Changed: changed})
	return nil
}

func (d *Directory) Add(ctx context.Context, groupID, userID string, access bot.Access) error {
	return d.change(ctx, "add", groupID, userID, access)
}

func (d *Directory) Remove(ctx context.Context, groupID, userID string, access bot.Access) error {
	return d.change(ctx, "remove", groupID, userID, access)
}

// Holds reports whether the user holds the access directly.
func (d *Directory) Holds(ctx context.Context, groupID, userID string, access bot.Access) (bool, error) {
	if err := d.wait(ctx); err != nil {
		return false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.lookupGroup(groupID)
	if g == nil || !strings.EqualFold(g.id, groupID) {
		return false, fmt.Errorf("group %s does not exist in the directory: %w", groupID, bot.ErrNotFound)
	}
	if d.lagging(g, userID, access) {
		return false, nil
	}
	if access == bot.Owner {
		return g.owners[userID], nil
	}
	return g.members[userID], nil
}

// SetDisabled disables (or enables) a user's account, as an administrator does in Entra.
func (d *Directory) SetDisabled(ref string, disabled bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.findUser(ref)
	if !ok {
		return fmt.Errorf("no directory user %q: %w", ref, bot.ErrNotFound)
	}
	for i := range d.users {
		if d.users[i].ID == u.ID {
			d.users[i].Disabled = disabled
		}
	}
	return nil
}

// Holders lists who holds the access directly, sorted by e-mail.
func (d *Directory) Holders(ctx context.Context, groupID string, access bot.Access) ([]bot.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.lookupGroup(groupID)
	if g == nil {
		return nil, fmt.Errorf("group %s: %w", groupID, bot.ErrNotFound)
	}
	set := g.members
	if access == bot.Owner {
		set = g.owners
	}
	var out []bot.User
	for id := range set {
		if strings.HasPrefix(id, "group:") {
			continue
		}
		u, ok := d.findUser(id)
		if !ok {
			u = bot.User{ID: id}
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Handle() < out[j].Handle() })
	return out, nil
}

// Ops returns the membership changes carried out so far.
func (d *Directory) Ops() []Op {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Op(nil), d.ops...)
}

// GroupID is the id of the group a policy's group:<mail|id> names, or an error wrapping
// bot.ErrNotFound when no group of the directory has that mail or id (`pimbot check`).
func (d *Directory) GroupID(_ context.Context, ref string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if g := d.lookupGroup(ref); g != nil {
		return g.id, nil
	}
	return "", fmt.Errorf("no directory group %q: %w", strings.TrimPrefix(ref, "group:"), bot.ErrNotFound)
}

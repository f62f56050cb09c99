package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/graphclient"
)

// checkReport collects one line per finding.
type checkReport struct {
	w                  io.Writer
	problems, warnings int
}

func (r *checkReport) ok(format string, args ...any) { fmt.Fprintf(r.w, "ok    "+format+"\n", args...) }
func (r *checkReport) fail(format string, args ...any) {
	r.problems++
	fmt.Fprintf(r.w, "FAIL  "+format+"\n", args...)
}

// warn is a finding that works but is likely not what was meant; it does not fail check.
func (r *checkReport) warn(format string, args ...any) {
	r.warnings++
	fmt.Fprintf(r.w, "warn  "+format+"\n", args...)
}

// checkFunc is one part of `pimbot check`; surfaces and the Graph directory add theirs
// from their own files (extraChecks), so each part lives next to what it checks.
type checkFunc func(ctx context.Context, a *app, r *checkReport)

var extraChecks []checkFunc

// check validates the policy and proves the setup. Exit status 1 on any problem.
func check(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) int {
	r := &checkReport{w: stdout}
	a, err := newApp(ctx, getenv, io.Discard)
	if err != nil {
		r.fail("%v", err)
		return 1
	}
	defer a.Close()
	r.ok("policy %s: %d groups (%s)", a.pol.Source, len(a.pol.Groups), strings.Join(a.pol.GroupNames(), ", "))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := a.store.Ping(pctx); err != nil {
		r.fail("redis (%s): %v", a.conn.Kind, err)
	} else {
		r.ok("redis (%s) answers", a.conn.Kind)
	}
	cancel()
	checkPolicyPeople(ctx, a, r)
	for _, c := range extraChecks {
		c(ctx, a, r)
	}
	if r.problems > 0 {
		warnings := ""
		if r.warnings > 0 {
			warnings = fmt.Sprintf(", %d warning(s)", r.warnings)
		}
		fmt.Fprintf(stdout, "%d problem(s) found%s\n", r.problems, warnings)
		return 1
	}
	if r.warnings > 0 {
		fmt.Fprintf(stdout, "all checks passed, %d warning(s)\n", r.warnings)
		return 0
	}
	fmt.Fprintln(stdout, "all checks passed")
	return 0
}

// groupIDer is a directory that can say which group a group:<mail|id> names (the local one).
type groupIDer interface {
	GroupID(ctx context.Context, ref string) (string, error)
}

// resolveGroupRef finds the group a policy's group:<mail|id> names: its id, and a description
// for the report. An error wrapping bot.ErrNotFound means no group has that mail or id, so
// nobody is eligible (or an approver) through the entry.
func resolveGroupRef(ctx context.Context, dir bot.Directory, ref string) (id, what string, err error) {
	switch d := dir.(type) {
	case *graphclient.Directory:
		info, err := d.ResolveGroup(ctx, ref)
		if err != nil {
			return "", "", err
		}
		return strings.ToLower(info.ID), fmt.Sprintf("is %q (%s, %s)", info.Name, info.ID, info.Kind()), nil
	case groupIDer:
		id, err := d.GroupID(ctx, ref)
		return strings.ToLower(id), "is group " + id, err
	}
	return "", "can be named", nil // a directory that cannot tell: nothing to check
}

// checkPolicyPeople resolves every user and group:… named in eligible and approvers: a user
// or group that matches nothing fails (at run time nobody would be eligible through it), and a
// group that pimbot itself manages is a warning (activating it grants rights on another group).
func checkPolicyPeople(ctx context.Context, a *app, r *checkReport) {
	managed := map[string]*bot.Group{}
	for _, g := range a.pol.Groups {
		managed[strings.ToLower(g.ID)] = g
	}
	type resolved struct {
		id  string
		err error
	}
	groups := map[string]resolved{}
	users := map[string]bool{}
	for _, g := range a.pol.Groups {
		for _, list := range []struct {
			name    string
			entries []string
		}{{"eligible", g.Eligible}, {"approvers", g.Approvers}} {
			for _, entry := range list.entries {
				ref, isGroup := strings.CutPrefix(entry, "group:")
				if !isGroup {
					if users[entry] {
						continue
					}
					users[entry] = true
					cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					if u, err := a.dir.ResolveUser(cctx, entry); err != nil {
						r.fail("user %s (named in %s of %s): %s", entry, list.name, g.Name, graphWords(err))
					} else {
						r.ok("user %s resolves to %s", entry, u.ID)
					}
					cancel()
					continue
				}
				res, seen := groups[ref]
				if !seen {
					cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					id, what, err := resolveGroupRef(cctx, a.dir, ref)
					cancel()
					res = resolved{id, err}
					groups[ref] = res
					switch {
					case errors.Is(err, bot.ErrNotFound):
						r.fail("group %s (named in %s of %s): no directory group has that mail or id, so nobody is %s through it; copy the group's object id or mail from Entra",
							ref, list.name, g.Name, map[string]string{"eligible": "eligible", "approvers": "an approver"}[list.name])
					case err != nil:
						r.fail("group %s (named in %s of %s): %s", ref, list.name, g.Name, graphWords(err))
					default:
						r.ok("group %s (named in %s of %s) %s", ref, list.name, g.Name, what)
					}
				}
				if other := managed[res.id]; res.err == nil && res.id != "" && other != nil {
					switch {
					case other != g:
						r.warn("group %s (named in %s of %s) is %s, which pimbot also manages: activating %s makes its holder %s %s; name the people or a group pimbot does not manage",
							ref, list.name, g.Name, other.Name, other.Name, map[string]string{"eligible": "eligible for", "approvers": "an approver of"}[list.name], g.Name)
					case list.name == "approvers":
						r.warn("group %s (named in approvers of %s) is %s itself: activating it makes its holder an approver of the requests for it; name approvers who do not hold it",
							ref, g.Name, g.Name)
					}
				}
			}
		}
	}
}

// graphWords is an error for the report, without the "graph: " every Graph error starts with.
func graphWords(err error) string { return strings.TrimPrefix(err.Error(), "graph: ") }

package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// checkReport collects one line per finding.
type checkReport struct {
	w        io.Writer
	problems int
}

func (r *checkReport) ok(format string, args ...any) { fmt.Fprintf(r.w, "ok    "+format+"\n", args...) }
func (r *checkReport) fail(format string, args ...any) {
	r.problems++
	fmt.Fprintf(r.w, "FAIL  "+format+"\n", args...)
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
		fmt.Fprintf(stdout, "%d problem(s) found\n", r.problems)
		return 1
	}
	fmt.Fprintln(stdout, "all checks passed")
	return 0
}

// checkPolicyPeople resolves every user and group:… named in eligible and approvers.
func checkPolicyPeople(ctx context.Context, a *app, r *checkReport) {
	seen := map[string]bool{}
	for _, g := range a.pol.Groups {
		for _, entry := range append(append([]string(nil), g.Eligible...), g.Approvers...) {
			if seen[entry] {
				continue
			}
			seen[entry] = true
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if ref, isGroup := strings.CutPrefix(entry, "group:"); isGroup {
				// A membership query for a non-existent user answers false, not an error,
				// so only a directory failure is a finding here.
				if _, err := a.dir.InGroup(cctx, "00000000-0000-0000-0000-000000000000", ref); err != nil {
					r.fail("group %s (named in %s): %v", ref, g.Name, err)
				} else {
					r.ok("group %s (named in %s) can be queried", ref, g.Name)
				}
			} else if u, err := a.dir.ResolveUser(cctx, entry); err != nil {
				r.fail("user %s (named in %s): %v", entry, g.Name, err)
			} else {
				r.ok("user %s resolves to %s", entry, u.ID)
			}
			cancel()
		}
	}
}

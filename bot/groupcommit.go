package bot

import "context"

// groupCommit gathers the commits of the jobs that run at the same moment into one round
// trip (Store.CommitAll), each still applied on its own. A commit waits for no timer: the
// first goes out at once, and those that arrive while it is on the wire go out together
// next. Under load, the fenced intent and the outcome of hundreds of grants cost a few
// round trips instead of two each.
type groupCommit struct {
	store Store
	in    chan commitReq
	done  chan struct{}
}

type commitReq struct {
	tx  *Tx
	err chan error
}

// maxGroupCommit bounds the transactions of one round trip.
const maxGroupCommit = 100

type groupCommitKey struct{}

func newGroupCommit(s Store) *groupCommit {
	g := &groupCommit{store: s, in: make(chan commitReq, maxGroupCommit), done: make(chan struct{})}
	go g.run()
	return g
}

func (g *groupCommit) run() {
	defer close(g.done)
	for first := range g.in {
		batch := []commitReq{first}
	more:
		for len(batch) < maxGroupCommit {
			select {
			case r, ok := <-g.in:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		txs := make([]*Tx, len(batch))
		for i, r := range batch {
			txs[i] = r.tx
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
		errs := g.store.CommitAll(ctx, txs)
		cancel()
		for i, r := range batch {
			r.err <- errs[i]
		}
	}
}

// close waits for the commits under way; no commit may be sent after it.
func (g *groupCommit) close() { close(g.in); <-g.done }

// withGroupCommit runs the jobs started with the returned context through g.
func withGroupCommit(ctx context.Context, g *groupCommit) context.Context {
	return context.WithValue(ctx, groupCommitKey{}, g)
}

// commit applies a job's transaction: with the other jobs' of the moment when the worker
// runs a group commit, else on its own, on a fresh deadline either way.
func (e *Engine) commit(ctx context.Context, tx *Tx) error {
	if g, ok := ctx.Value(groupCommitKey{}).(*groupCommit); ok {
		r := commitReq{tx: tx, err: make(chan error, 1)}
		g.in <- r
		return <-r.err
	}
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	return e.store.Commit(sctx, tx)
}

package executor

import (
	"context"
	"fmt"
	"sync"
)

// Executor executes batches of units.
type Executor interface {
	// Do executes units and returns one outcome per unit, in order. Build
	// units run before run units of the same batch, and a run unit starts
	// only when every build of the batch was built. An error means the
	// batch as a whole could not be executed (bad setup, cancelled); the
	// outcomes of the units that finished are returned with it.
	Do(ctx context.Context, units []Unit, progress func(Progress)) ([]Outcome, error)
	// Name is "local" or "slurm".
	Name() string
}

// Progress is a batch's state, handed to the progress function whenever a
// unit changes state.
type Progress struct {
	Pending, Running, Done, Total int
}

// String renders p for a progress line.
func (p Progress) String() string {
	return fmt.Sprintf("%d/%d done, %d running, %d pending", p.Done, p.Total, p.Running, p.Pending)
}

// Local executes units in this process, at most Jobs at a time.
type Local struct {
	Jobs int // VMs (or builds) at once; 0 means 1
}

// Name returns "local".
func (l *Local) Name() string { return "local" }

// Do runs builds one at a time (they use every CPU), then runs up to Jobs
// at once.
func (l *Local) Do(ctx context.Context, units []Unit, progress func(Progress)) ([]Outcome, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	outs := make([]Outcome, len(units))
	var mu sync.Mutex
	p := Progress{Pending: len(units), Total: len(units)}
	update := func(f func()) {
		mu.Lock()
		f()
		cp := p
		mu.Unlock()
		progress(cp)
	}
	units = append([]Unit(nil), units...)
	for i := range units {
		units[i].Version = Version // as if written to a file and read back
	}
	builtAll := true
	for i, u := range units {
		if u.Kind != KindBuild {
			continue
		}
		if err := ctx.Err(); err != nil {
			return outs, err
		}
		update(func() { p.Pending--; p.Running++ })
		outs[i] = Execute(ctx, u)
		if outs[i].Status != StatusBuilt {
			builtAll = false
		}
		update(func() { p.Running--; p.Done++ })
	}
	jobs := max(l.Jobs, 1)
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for i, u := range units {
		if u.Kind != KindRun {
			continue
		}
		if !builtAll {
			outs[i] = Outcome{Version: Version, ID: u.ID, Kind: u.Kind, Status: StatusInfra, Error: "not run: a build of its batch failed"}
			update(func() { p.Pending--; p.Done++ })
			continue
		}
		wg.Add(1)
		go func(i int, u Unit) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				outs[i] = Outcome{Version: Version, ID: u.ID, Kind: u.Kind, Status: StatusInfra, Error: "not run: " + context.Cause(ctx).Error()}
				update(func() { p.Pending--; p.Done++ })
				return
			}
			defer func() { <-sem }()
			update(func() { p.Pending--; p.Running++ })
			outs[i] = Execute(ctx, u)
			update(func() { p.Running--; p.Done++ })
		}(i, u)
	}
	wg.Wait()
	return outs, ctx.Err()
}

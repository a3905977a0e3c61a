package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/job"
	"github.com/kregress/kregress/results"
)

// ForJob adapts an Executor to job.Executor, so that series tests,
// bisections and nightly runs build and run through it: each Build is a
// build unit, each Run a run unit, and RunMany (which job.Bisect uses for
// a step's repetitions) sends a step's runs as one batch, that is one job
// array on Slurm. Patches are checked locally (CheckApply builds nothing).
func ForJob(ex Executor, progress func(format string, args ...any)) job.Executor {
	if progress == nil {
		progress = func(string, ...any) {}
	}
	return &jobExec{ex: ex, progress: progress, vmlinux: map[string]string{}}
}

type jobExec struct {
	ex       Executor
	progress func(format string, args ...any)
	seq      atomic.Int64
	mu       sync.Mutex
	// vmlinux maps a built bzImage to its vmlinux, for symbolization on
	// the node that runs it.
	vmlinux map[string]string
}

func (j *jobExec) id(kind string) string {
	return fmt.Sprintf("%s-%d-%d", kind, os.Getpid(), j.seq.Add(1))
}

// CheckApply checks the patches here: it builds nothing.
func (j *jobExec) CheckApply(ctx context.Context, req build.Request) error {
	_, err := build.CheckApply(ctx, req)
	return err
}

// Build executes a build unit and returns its result, or the build's error
// class as an error of the same class (no-apply, no-build, bad input).
func (j *jobExec) Build(ctx context.Context, req build.Request) (*build.Result, error) {
	// The node runs the unit in the batch folder: every path of the
	// request is made absolute here (presets and make targets stay names).
	configs := make([]string, len(req.Configs))
	for i, c := range req.Configs {
		configs[i] = absPath(c)
	}
	mods := make([]string, len(req.ExternalModules))
	for i, m := range req.ExternalModules {
		mods[i] = absPath(m)
	}
	u := Unit{ID: j.id("build"), Kind: KindBuild, Build: &BuildUnit{
		Source: absPath(req.Source), Base: req.Base, Series: absPath(req.Series), Patches: req.Patches,
		BaseConfig: absPath(req.BaseConfig), Configs: configs, ExternalModules: mods,
		ConfigureArgs: req.ConfigureArgs, Jobs: req.Jobs,
	}}
	outs, err := j.ex.Do(ctx, []Unit{u}, j.report("build"))
	if err != nil {
		return nil, err
	}
	o := outs[0]
	switch o.Status {
	case StatusBuilt:
		j.mu.Lock()
		j.vmlinux[o.Build.BzImage] = o.Build.Vmlinux
		j.mu.Unlock()
		return o.Build, nil
	case StatusNoApply:
		return nil, &build.ApplyError{Detail: o.Error}
	case StatusNoBuild:
		return nil, &build.CompileError{Err: errors.New(o.Error)}
	case StatusBadInput:
		return nil, &build.InputError{Err: errors.New(o.Error)}
	}
	return nil, fmt.Errorf("build unit %s on %s: %s", u.ID, o.Node, o.Error)
}

// Run executes one run unit.
func (j *jobExec) Run(ctx context.Context, spec job.Spec) (*results.Result, string, error) {
	rs, dirs, errs := j.RunMany(ctx, []job.Spec{spec})
	return rs[0], dirs[0], errs[0]
}

// RunMany executes runs as one batch (one job array on Slurm).
func (j *jobExec) RunMany(ctx context.Context, specs []job.Spec) ([]*results.Result, []string, []error) {
	rs := make([]*results.Result, len(specs))
	dirs := make([]string, len(specs))
	errs := make([]error, len(specs))
	units := make([]Unit, len(specs))
	for i, s := range specs {
		u, err := j.runUnit(s, i)
		if err != nil {
			for k := range errs {
				errs[k] = err
			}
			return rs, dirs, errs
		}
		units[i] = u
	}
	outs, err := j.ex.Do(ctx, units, j.report("runs"))
	for i := range specs {
		if err != nil && (i >= len(outs) || outs[i].ID == "") {
			errs[i] = err
			continue
		}
		o := outs[i]
		dirs[i] = o.RunDir
		if o.RunDir == "" {
			errs[i] = fmt.Errorf("run unit %s on %s: %s", o.ID, o.Node, o.Error)
			continue
		}
		r, rerr := results.ReadResult(o.RunDir)
		if rerr != nil {
			errs[i] = fmt.Errorf("run unit %s on %s: %w", o.ID, o.Node, rerr)
			continue
		}
		if o.Attempts > 1 {
			r.Reason = strings.TrimSpace(r.Reason + fmt.Sprintf(" (attempt %d)", o.Attempts))
		}
		rs[i] = r
	}
	return rs, dirs, errs
}

// runUnit describes a job.Spec as a run unit. What cannot cross to
// another machine (callbacks, an open symbolizer) is rebuilt there from
// paths.
func (j *jobExec) runUnit(s job.Spec, i int) (Unit, error) {
	if s.Suite == nil {
		return Unit{}, errors.New("run unit: no suite")
	}
	suite := s.Suite.File
	if name, ok := strings.CutPrefix(suite, "builtin:"); ok {
		suite = name
	} else if abs, err := filepath.Abs(suite); err == nil {
		suite = abs
	}
	out, err := filepath.Abs(s.Out)
	if err != nil {
		return Unit{}, err
	}
	j.mu.Lock()
	vmlinux := j.vmlinux[s.Kernel]
	j.mu.Unlock()
	return Unit{ID: j.id("run"), Kind: KindRun, Run: &RunUnit{
		Kernel: s.Kernel, Vmlinux: vmlinux, ModulesDir: s.ModulesDir, SourceRoot: s.SourceRoot,
		Modules: s.Modules, ExtraModules: s.ExtraModules, InitrdExtra: s.InitrdExtra,
		Suite: suite, Out: out, Label: s.Label, Append: s.Append, Accel: s.Accel, Boot: s.Boot,
		MemoryMB: s.MemoryMB, CPUs: s.CPUs, BootTimeout: Duration(s.BootTimeout),
		NoOutputTimeout: Duration(s.NoOutputTimeout), Lustre: s.Lustre, Repeat: i,
	}}, nil
}

func (j *jobExec) report(what string) func(Progress) {
	start := time.Now()
	return func(p Progress) {
		j.progress("%s %s: %s (%s)", j.ex.Name(), what, p, time.Since(start).Round(time.Second))
	}
}

// absPath makes p absolute when it names an existing file or folder, so
// that a unit means the same on a node whose working directory differs;
// anything else (a preset, a make target, a git range, "") is kept.
func absPath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if _, err := os.Stat(p); err != nil {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/suites"
)

// SeriesSpec is a series test: a base, a patch series, configs and suites.
type SeriesSpec struct {
	// Build says what to build; its Series is the series under test and
	// its Patches must be empty (the tester sets them per step).
	Build  build.Request
	Suites []*suites.Suite
	// PerPatch tests every prefix of the series even when the tip passes.
	PerPatch bool
	// Run carries the boot and run settings for every step (Kernel,
	// Suite, Out and Label are set per step).
	Run Spec
	// Out is where the series' run directory is made.
	Out string
	// Command is how the user invoked kregress, for reproduce lines.
	Command string
	// Progress gets one line per step.
	Progress func(format string, args ...any)
	// Executor builds the steps' kernels and runs the suites; nil means
	// Local.
	Executor Executor
	// Kernel, when set, is a distribution kernel (bzImage, with its
	// headers installed) that every step boots instead of a kernel built
	// from Build; the series then targets the client.
	Kernel string
	// Client is a Lustre client tree built against every step's kernel
	// and loaded for lustre-target suites.
	Client *ClientSpec
	// ClientSeries says the series (Build.Series) applies to the client
	// tree, not to the kernel's.
	ClientSeries bool
}

// Executor builds kernels and runs suites for TestSeries: Local does it
// on this machine, tests use fakes, a cluster executor submits jobs.
type Executor interface {
	// CheckApply tells whether the request's patches apply to its
	// source, building nothing (see build.CheckApply).
	CheckApply(ctx context.Context, req build.Request) error
	// Build builds a kernel (see build.Build).
	Build(ctx context.Context, req build.Request) (*build.Result, error)
	// Run boots a kernel with one suite (see Run).
	Run(ctx context.Context, spec Spec) (*results.Result, string, error)
}

// Local is the Executor of this machine: build.CheckApply, build.Build and
// Run.
type Local struct{}

// CheckApply calls build.CheckApply.
func (Local) CheckApply(ctx context.Context, req build.Request) error {
	_, err := build.CheckApply(ctx, req)
	return err
}

// Build calls build.Build.
func (Local) Build(ctx context.Context, req build.Request) (*build.Result, error) {
	return build.Build(ctx, req)
}

// Run calls Run.
func (Local) Run(ctx context.Context, spec Spec) (*results.Result, string, error) {
	return Run(ctx, spec)
}

// TestSeries builds and tests the base and the series, and with PerPatch,
// or when the tip is not clean, every prefix, giving each patch a verdict
// (JudgeStep) and the series a status (JudgeSeries). The returned
// directory holds result.json and a folder per step.
//
// Bad input is an error and leaves no run directory: a series that cannot
// be read, a source that is not a kernel tree, and a series that does not
// apply from its first patch (meant for another tree). A series whose
// patch j > 1 does not apply is a result: patches j and later are no-apply
// (none of them is built). When its result.json cannot be written (a full
// disk) the result and directory come back with the error, so the caller
// can still show the verdict.
func TestSeries(ctx context.Context, spec SeriesSpec) (_ *results.SeriesResult, _ string, err error) {
	if spec.Progress == nil {
		spec.Progress = func(string, ...any) {}
	}
	if spec.Executor == nil {
		spec.Executor = Local{}
	}
	if len(spec.Suites) == 0 {
		return nil, "", suites.ErrNoSuite
	}
	if err := checkClientSpec(spec); err != nil {
		return nil, "", err
	}
	tree := spec.Build.Source
	if spec.ClientSeries {
		tree = spec.Client.Tree
	}
	patches, err := build.LoadSeries(ctx, tree, spec.Build.Series)
	if err != nil {
		return nil, "", err
	}
	if len(patches) == 0 {
		return nil, "", fmt.Errorf("series %s holds no patches", spec.Build.Series)
	}
	t := &seriesTester{spec: spec, patches: patches}
	spec.Progress("series: checking that %d patches apply", len(patches))
	if err := t.checkApply(ctx); err != nil {
		if build.Classify(err) != build.ClassNoApply {
			return nil, "", err
		}
		if err := t.noteNoApply(err); err != nil {
			return nil, "", err
		}
	}
	if spec.Out == "" {
		spec.Out = "out"
	}
	dir, err := results.NewDir(spec.Out, "series")
	if err != nil {
		return nil, "", err
	}
	t.dir = dir
	start := time.Now()
	res := &results.SeriesResult{
		Status: results.StatusInfra, Source: spec.Build.Source, BaseRef: spec.Build.Base, Series: spec.Build.Series,
		Configs: spec.Build.Configs, Started: start.UTC(), Kernel: spec.Kernel,
	}
	if spec.Client != nil {
		res.Target, res.Client = "kernel", spec.Client.Tree
	}
	if spec.ClientSeries {
		res.Target = "client"
	}
	for _, s := range spec.Suites {
		res.Suites = append(res.Suites, s.Name)
	}

	spec.Progress("base: build and test")
	base, berr := t.step(ctx, 0)
	if build.Classify(berr) == build.ClassBadInput {
		os.RemoveAll(dir.Path)
		return nil, "", berr
	}
	res.Base = base
	keep := true
	defer func() {
		if keep {
			res.WallSeconds = time.Since(start).Seconds()
			if werr := writeJSON(dir, res); werr != nil && err == nil {
				err = fmt.Errorf("recording the series' verdict: %w", werr)
			}
		}
	}()
	if !BaseUsable(base) {
		v := JudgeSeries(base, nil, len(patches), nil)
		res.Status, res.Reason = v.Status, v.Reason
		return res, dir.Path, nil
	}
	t.base = base
	byIndex := make([]*results.PatchVerdict, len(patches))
	for k := range t.order(ctx, byIndex) {
		p := patches[k-1]
		spec.Progress("patch %d/%d %q: build and test", k, len(patches), p.Subject)
		pv := &results.PatchVerdict{Index: k, Subject: p.Subject}
		if st := t.knownNoApply(k); st != nil {
			pv.Step = *st
		} else {
			st, err := t.step(ctx, k)
			if err := t.noteNoApply(err); err != nil {
				// The first patch does not apply: bad input.
				keep = false
				os.RemoveAll(dir.Path)
				return nil, "", err
			}
			pv.Step = *st
		}
		byIndex[k-1] = pv
	}
	for _, p := range byIndex {
		if p != nil {
			res.Patches = append(res.Patches, p)
		}
	}
	v := JudgeSeries(base, res.Patches, len(patches), ctx.Err())
	res.Status, res.Reason, res.FirstBad = v.Status, v.Reason, v.FirstBad
	if res.FirstBad != nil {
		res.FirstBad.Reproduce = t.reproduce(byIndex[res.FirstBad.Index-1])
	}
	return res, dir.Path, nil
}

type seriesTester struct {
	spec    SeriesSpec
	dir     *results.Dir
	patches []build.Patch
	base    *results.Step
	// noApply is the lowest patch known not to apply (0: none) and
	// noApplyMsg what was said about it: every prefix that holds it
	// fails the same way, so none is built.
	noApply    int
	noApplyMsg string
	// kern is the kernel every step shares when the series targets the
	// client (built once, or the distribution kernel).
	kern *stepKernel
}

// order yields the prefixes to test, as byIndex fills: every prefix in
// order with PerPatch; otherwise the tip first and, when its verdict is
// not pass, the other prefixes in order. It stops when ctx is done.
func (t *seriesTester) order(ctx context.Context, byIndex []*results.PatchVerdict) func(func(int) bool) {
	n := len(t.patches)
	return func(yield func(int) bool) {
		if !t.spec.PerPatch {
			if ctx.Err() != nil || !yield(n) {
				return
			}
			if byIndex[n-1] == nil || byIndex[n-1].Verdict == results.VerdictPass {
				return
			}
			n--
		}
		for k := 1; k <= n; k++ {
			if ctx.Err() != nil || !yield(k) {
				return
			}
		}
	}
}

// request is the build request of the step with the first k patches.
func (t *seriesTester) request(k int) build.Request {
	req := t.spec.Build
	req.Series = ""
	if !t.spec.ClientSeries {
		req.Patches = append([]build.Patch(nil), t.patches[:k]...)
	}
	return req
}

// noteNoApply learns from a build error which patch does not apply; it
// returns an error when that is the first patch: the series is meant for
// another tree, bad input. Other errors are left to the verdict.
func (t *seriesTester) noteNoApply(err error) error {
	var ae *build.ApplyError
	if !errors.As(err, &ae) {
		return nil
	}
	if ae.Patch.Number <= 1 {
		return &build.InputError{Err: t.otherTree(ae, err)}
	}
	if t.noApply == 0 || ae.Patch.Number < t.noApply {
		t.noApply, t.noApplyMsg = ae.Patch.Number, err.Error()
	}
	return nil
}

// knownNoApply is the step of prefix k when it holds the patch known not
// to apply; nil otherwise.
func (t *seriesTester) knownNoApply(k int) *results.Step {
	if t.noApply == 0 || k < t.noApply {
		return nil
	}
	msg := t.noApplyMsg
	if k > t.noApply {
		msg = fmt.Sprintf("patch %d does not apply", t.noApply)
	}
	return &results.Step{Verdict: results.VerdictNoApply, Message: msg, Crashes: []results.SeriesCrash{}}
}

// step builds the base plus the first k patches, boots it with every
// suite, and judges it against the base. The build's error is returned
// too, for the caller to learn from.
func (t *seriesTester) step(ctx context.Context, k int) (*results.Step, error) {
	name := "base"
	if k > 0 {
		name = fmt.Sprintf("patch-%02d", k)
	}
	stepDir := t.dir.File(name)
	os.MkdirAll(stepDir, 0o755)
	bstart := time.Now()
	kern, err := t.kernel(ctx, k)
	var client *stepClient
	if err == nil && t.spec.Client != nil {
		client, err = t.buildClient(ctx, k, kern, stepDir)
	}
	buildSeconds := time.Since(bstart).Seconds()
	if err != nil {
		st := JudgeStep(t.base, err, nil)
		st.BuildSeconds = buildSeconds
		return st, err
	}
	br := kern.br
	// The build folder is reused by the next step: keep this kernel.
	kernel := filepath.Join(stepDir, "bzImage")
	if kern.keep != "" {
		kernel = kern.keep
	}
	var runs []SuiteRun
	if err := kern.keepAt(kernel); err != nil {
		runs = append(runs, SuiteRun{Err: fmt.Errorf("keeping the step's kernel: %w", err)})
	} else {
		rs := t.spec.Run
		closeSym := rs.useKernel(kern, client)
		defer closeSym()
		rs.Kernel, rs.Out = kernel, stepDir
		for _, s := range t.spec.Suites {
			rs.Suite, rs.Label = s, s.Name
			r, runDir, err := t.spec.Executor.Run(ctx, rs)
			run := SuiteRun{Suite: s.Name, Dir: runDir, Result: r, Err: err}
			runs = append(runs, run)
			if RunIsInfra(run) {
				break
			}
		}
	}
	st := JudgeStep(t.base, nil, runs)
	st.BuildSeconds = buildSeconds
	if br != nil && !t.spec.ClientSeries {
		st.BuildKey, st.Incremental, st.Compiled = br.Key, br.Incremental, br.Compiled
		for _, w := range br.Warnings {
			st.Warnings = append(st.Warnings, w.String())
		}
	}
	st.Kernel = kernel
	client.note(st, t.spec.ClientSeries)
	return st, nil
}

// reproduce is a one-line command that boots the step's kernel with the
// suites again.
func (t *seriesTester) reproduce(p *results.PatchVerdict) string {
	if p.Kernel == "" {
		return t.spec.Command
	}
	var names []string
	for _, s := range t.spec.Suites {
		if strings.HasPrefix(s.File, "builtin:") {
			names = append(names, s.Name)
		} else {
			names = append(names, s.File)
		}
	}
	cmd := fmt.Sprintf("kregress run --kernel %s --suite %s", p.Kernel, strings.Join(names, ","))
	if p.ClientModules != "" {
		cmd += " --lustre-modules " + p.ClientModules
	}
	return cmd
}

// DemoConfigs are the config fragments of the README's demonstration:
// the qemu-minimal, lockdep and debug-info presets and the seed series'
// own fragment (CONFIG_SEEDFS=y), relative to the repository root.
func DemoConfigs(repoRoot string) []string {
	return []string{"qemu-minimal", "lockdep", "debug-info", filepath.Join(repoRoot, "examples", "seed-series", "seedfs.config")}
}

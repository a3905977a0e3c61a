package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/triage/symbolize"
	"github.com/kregress/kregress/runner"
	"github.com/kregress/kregress/suites"
)

// Patch verdicts, from best to worst.
const (
	VerdictPass    = "pass"     // applies, builds, boots, no new failure or crash
	VerdictFail    = "fail"     // a test that passes on the base fails
	VerdictCrash   = "crash"    // a crash the base does not show
	VerdictNoApply = "no-apply" // the patch (or an earlier one) does not apply
	VerdictNoBuild = "no-build" // the kernel does not build
	VerdictNoBoot  = "no-boot"  // the kernel does not boot to the agent
	VerdictInfra   = "infra"    // kregress could not tell
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
}

// SeriesResult is the series run directory's result.json.
type SeriesResult struct {
	Status      string          `json:"status"` // pass (no regression), regression, infra
	Reason      string          `json:"reason,omitempty"`
	Source      string          `json:"source"`
	BaseRef     string          `json:"base_ref,omitempty"`
	Series      string          `json:"series"`
	Configs     []string        `json:"configs"`
	Suites      []string        `json:"suites"`
	Started     time.Time       `json:"started"`
	WallSeconds float64         `json:"wall_seconds"`
	Base        *Step           `json:"base"`
	Patches     []*PatchVerdict `json:"patches"`
	FirstBad    *FirstBad       `json:"first_bad"`
}

// Step is one built and tested kernel: the base or a prefix of the series.
type Step struct {
	Verdict      string            `json:"verdict"`
	Message      string            `json:"message,omitempty"`
	BuildKey     string            `json:"build_key,omitempty"`
	BuildSeconds float64           `json:"build_seconds"`
	Incremental  bool              `json:"incremental"`
	Compiled     int               `json:"compiled"`
	Kernel       string            `json:"kernel,omitempty"` // the bzImage kept in the step's folder
	Runs         []string          `json:"runs,omitempty"`   // run directories, one per suite
	Tests        map[string]string `json:"tests,omitempty"`  // suite/test -> status
	Crashes      []SeriesCrash     `json:"crashes"`
	Warnings     []string          `json:"warnings,omitempty"`
}

// PatchVerdict is one patch's verdict: the step that ends with it.
type PatchVerdict struct {
	Index   int    `json:"index"`
	Subject string `json:"subject"`
	Step
}

// SeriesCrash is a crash seen at a step, marked new or pre-existing
// (also seen on the base).
type SeriesCrash struct {
	results.Crash
	Status string `json:"status"` // new, pre-existing
	Run    string `json:"run"`    // the run directory that saw it
}

// FirstBad names the first patch whose verdict is not pass.
type FirstBad struct {
	Index     int    `json:"index"`
	Subject   string `json:"subject"`
	Verdict   string `json:"verdict"`
	Title     string `json:"title,omitempty"`
	Reproduce string `json:"reproduce"`
}

// TestSeries builds and tests the base and the series, and with PerPatch,
// or when the tip is not clean, every prefix, giving each patch a verdict.
// The returned directory holds result.json and a folder per step.
func TestSeries(ctx context.Context, spec SeriesSpec) (*SeriesResult, string, error) {
	if spec.Progress == nil {
		spec.Progress = func(string, ...any) {}
	}
	if len(spec.Suites) == 0 {
		return nil, "", suites.ErrNoSuite
	}
	patches, err := readSeries(ctx, spec.Build)
	if err != nil {
		return nil, "", err
	}
	if len(patches) == 0 {
		return nil, "", fmt.Errorf("series %s holds no patches", spec.Build.Series)
	}
	if spec.Out == "" {
		spec.Out = "out"
	}
	dir, err := results.NewDir(spec.Out, "series")
	if err != nil {
		return nil, "", err
	}
	start := time.Now()
	res := &SeriesResult{
		Status: "infra", Source: spec.Build.Source, BaseRef: spec.Build.Base, Series: spec.Build.Series,
		Configs: spec.Build.Configs, Started: start.UTC(),
	}
	for _, s := range spec.Suites {
		res.Suites = append(res.Suites, s.Name)
	}
	t := &seriesTester{spec: spec, dir: dir, patches: patches}
	defer func() {
		res.WallSeconds = time.Since(start).Seconds()
		writeJSON(dir, res)
	}()

	spec.Progress("base: build and test")
	res.Base = t.step(ctx, 0)
	if res.Base.Verdict != VerdictPass && res.Base.Verdict != VerdictFail && res.Base.Verdict != VerdictCrash {
		res.Reason = "the base does not build or boot: " + res.Base.Message
		return res, dir.Path, nil
	}
	t.base = res.Base
	res.Patches = make([]*PatchVerdict, len(patches))
	n := len(patches)
	order := []int{n}
	if spec.PerPatch {
		order = nil
		for k := 1; k <= n; k++ {
			order = append(order, k)
		}
	}
	for i := 0; i < len(order); i++ {
		k := order[i]
		if ctx.Err() != nil {
			break
		}
		p := patches[k-1]
		spec.Progress("patch %d/%d %q: build and test", k, n, p.Subject)
		pv := &PatchVerdict{Index: k, Subject: p.Subject}
		if prev := earlierNoApply(res.Patches, k); prev != nil {
			pv.Step = Step{Verdict: VerdictNoApply, Message: fmt.Sprintf("patch %d does not apply", prev.Index), Crashes: []SeriesCrash{}}
		} else {
			pv.Step = *t.step(ctx, k)
		}
		res.Patches[k-1] = pv
		// The tip is not clean: go back and test every prefix.
		if !spec.PerPatch && k == n && pv.Verdict != VerdictPass {
			for j := 1; j < n; j++ {
				order = append(order, j)
			}
		}
	}
	var tested []*PatchVerdict
	for _, p := range res.Patches {
		if p != nil {
			tested = append(tested, p)
		}
	}
	res.Patches = tested
	res.Status = "pass"
	for _, p := range res.Patches {
		switch p.Verdict {
		case VerdictPass:
			continue
		case VerdictInfra:
			if res.Status == "pass" {
				res.Status, res.Reason = "infra", fmt.Sprintf("patch %d: %s", p.Index, p.Message)
			}
			continue
		}
		res.Status = "regression"
		res.FirstBad = &FirstBad{Index: p.Index, Subject: p.Subject, Verdict: p.Verdict, Reproduce: t.reproduce(p)}
		for _, c := range p.Crashes {
			if c.Status == "new" {
				res.FirstBad.Title = c.Title
				break
			}
		}
		res.Reason = fmt.Sprintf("patch %d/%d %q: %s", p.Index, len(patches), p.Subject, p.Verdict)
		if res.FirstBad.Title != "" {
			res.Reason += ": " + res.FirstBad.Title
		}
		break
	}
	if ctx.Err() != nil {
		res.Status, res.Reason = "infra", "canceled: "+ctx.Err().Error()
	}
	return res, dir.Path, nil
}

func earlierNoApply(done []*PatchVerdict, k int) *PatchVerdict {
	for j := 0; j < k-1 && j < len(done); j++ {
		if done[j] != nil && done[j].Verdict == VerdictNoApply && done[j].Message == "" {
			return done[j]
		}
	}
	return nil
}

func readSeries(ctx context.Context, req build.Request) ([]build.Patch, error) {
	if st, err := os.Stat(req.Series); err == nil && (st.IsDir() || st.Mode().IsRegular()) {
		return build.ReadSeries(req.Series)
	}
	return build.SeriesFromGit(ctx, req.Source, req.Series)
}

type seriesTester struct {
	spec    SeriesSpec
	dir     *results.Dir
	patches []build.Patch
	base    *Step
}

// step builds the base plus the first k patches, boots it with every
// suite, and judges it against the base.
func (t *seriesTester) step(ctx context.Context, k int) *Step {
	st := &Step{Crashes: []SeriesCrash{}, Tests: map[string]string{}}
	name := "base"
	if k > 0 {
		name = fmt.Sprintf("patch-%02d", k)
	}
	stepDir := t.dir.File(name)
	os.MkdirAll(stepDir, 0o755)
	req := t.spec.Build
	req.Series = ""
	req.Patches = append([]build.Patch(nil), t.patches[:k]...)
	bstart := time.Now()
	br, err := build.Build(ctx, req)
	st.BuildSeconds = time.Since(bstart).Seconds()
	if err != nil {
		var ae *build.ApplyError
		var ce *build.CompileError
		switch {
		case errors.As(err, &ae):
			st.Verdict = VerdictNoApply
		case errors.As(err, &ce):
			st.Verdict = VerdictNoBuild
		default:
			st.Verdict = VerdictInfra
		}
		st.Message = err.Error()
		return st
	}
	st.BuildKey, st.Incremental, st.Compiled = br.Key, br.Incremental, br.Compiled
	for _, w := range br.Warnings {
		st.Warnings = append(st.Warnings, w.String())
	}
	// The build folder is reused by the next step: keep this kernel.
	st.Kernel = filepath.Join(stepDir, "bzImage")
	if err := copyFile(br.BzImage, st.Kernel); err != nil {
		st.Verdict, st.Message = VerdictInfra, err.Error()
		return st
	}
	modDir := ""
	if br.ModulesDir != "" {
		modDir = filepath.Join(br.ModulesDir, "lib", "modules", br.Release)
	}
	var sym *symbolize.Symbolizer
	if s, err := symbolize.New(br.Vmlinux, modDir); err == nil {
		sym = s
		defer s.Close()
	}
	var failedNew, crashedNew, noBoot bool
	for _, s := range t.spec.Suites {
		rs := t.spec.Run
		rs.Kernel, rs.Suite, rs.Out, rs.Label = st.Kernel, s, stepDir, s.Name
		rs.ModulesDir = modDir
		rs.Symbolizer, rs.SourceRoot = sym, br.Source
		r, runDir, err := Run(ctx, rs)
		if err != nil {
			st.Verdict, st.Message = VerdictInfra, err.Error()
			return st
		}
		st.Runs = append(st.Runs, runDir)
		for _, tt := range r.Tests {
			key := s.Name + "/" + tt.Name
			st.Tests[key] = tt.Status
			if k > 0 && tt.Status != results.StatusPass && tt.Status != results.StatusSkip && t.base.Tests[key] == results.StatusPass {
				failedNew = true
			}
		}
		for _, c := range r.Crashes {
			sc := SeriesCrash{Crash: c, Status: "new", Run: runDir}
			if k > 0 && t.base.hasCrash(c) {
				sc.Status = "pre-existing"
			} else {
				crashedNew = true
			}
			st.Crashes = append(st.Crashes, sc)
		}
		if r.Status == results.StatusInfra && len(r.Crashes) == 0 {
			// Only a VM that ended before it booted is the kernel's
			// not booting; one that died mid-test is infrastructure.
			if r.BootSeconds == 0 && (r.Outcome == string(runner.OutcomeBootTimeout) || r.Outcome == string(runner.OutcomeExited)) {
				noBoot = true
				st.Message = r.Reason
			} else {
				st.Verdict, st.Message = VerdictInfra, r.Reason
				return st
			}
		}
	}
	switch {
	case k == 0:
		st.Verdict = VerdictPass
		if len(st.Crashes) > 0 {
			st.Verdict = VerdictCrash
		} else if noBoot {
			st.Verdict = VerdictNoBoot
		}
	case crashedNew:
		st.Verdict = VerdictCrash
	case noBoot:
		st.Verdict = VerdictNoBoot
	case failedNew:
		st.Verdict = VerdictFail
		var failed []string
		for key, s := range st.Tests {
			if s != results.StatusPass && s != results.StatusSkip && t.base.Tests[key] == results.StatusPass {
				failed = append(failed, key)
			}
		}
		st.Message = "newly failing: " + strings.Join(failed, ", ")
	default:
		st.Verdict = VerdictPass
	}
	return st
}

func (s *Step) hasCrash(c results.Crash) bool {
	names := map[string]bool{c.Title: true}
	for _, a := range c.AltTitles {
		names[a] = true
	}
	for _, b := range s.Crashes {
		if names[b.Title] {
			return true
		}
		for _, a := range b.AltTitles {
			if names[a] {
				return true
			}
		}
	}
	return false
}

// reproduce is a one-line command that boots the step's kernel with the
// suites again.
func (t *seriesTester) reproduce(p *PatchVerdict) string {
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
	return fmt.Sprintf("kregress run --kernel %s --suite %s", p.Kernel, strings.Join(names, ","))
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// SeriesSummary writes the verdict table.
func SeriesSummary(w io.Writer, r *SeriesResult, dir string) {
	fmt.Fprintf(w, "series %s on %s (configs %s; suites %s)\n", r.Series, r.Source, strings.Join(r.Configs, ","), strings.Join(r.Suites, ","))
	row := func(idx, subject string, s *Step) {
		extra := ""
		for _, c := range s.Crashes {
			extra += fmt.Sprintf("  %s [%s]", c.Title, c.Status)
		}
		if extra == "" && s.Verdict != VerdictPass && s.Message != "" {
			extra = "  " + firstLine(s.Message)
		}
		build := ""
		if s.BuildKey != "" {
			how := "clean"
			if s.Incremental {
				how = "incr"
			}
			build = fmt.Sprintf("%5.0fs %-5s", s.BuildSeconds, how)
		}
		fmt.Fprintf(w, "  %-3s %-58s %-12s %-9s%s\n", idx, truncate(subject, 58), build, s.Verdict, extra)
	}
	fmt.Fprintf(w, "  %-3s %-58s %-12s %-9s%s\n", "#", "patch", "build", "verdict", "  crash")
	if r.Base != nil {
		row("-", "(base)", r.Base)
	}
	for _, p := range r.Patches {
		row(fmt.Sprint(p.Index), p.Subject, &p.Step)
	}
	if fb := r.FirstBad; fb != nil {
		fmt.Fprintf(w, "\nfirst bad: patch %d %q: %s", fb.Index, fb.Subject, fb.Verdict)
		if fb.Title != "" {
			fmt.Fprintf(w, ": %s", fb.Title)
		}
		fmt.Fprintln(w)
		for _, p := range r.Patches {
			if p.Index != fb.Index {
				continue
			}
			for _, c := range p.Crashes {
				if c.Status != "new" {
					continue
				}
				if c.Lockdep != nil && c.Lockdep.Summary != "" {
					fmt.Fprintf(w, "  lockdep: %s", c.Lockdep.Summary)
					if c.Lockdep.Acquiring != nil {
						fmt.Fprintf(w, " (class %s)", c.Lockdep.Acquiring.Class)
					}
					fmt.Fprintln(w)
				}
				writeStack(w, c.Crash)
				fmt.Fprintf(w, "  report: %s/console.log lines %d-%d\n", c.Run, c.StartLine, c.EndLine)
				break
			}
		}
		fmt.Fprintf(w, "  reproduce: %s\n", fb.Reproduce)
	}
	status := strings.ToUpper(r.Status)
	if r.Status == "pass" {
		status = "PASS (no regression)"
	}
	fmt.Fprintf(w, "\nstatus   %s", status)
	if r.Reason != "" && r.Status != "regression" {
		fmt.Fprintf(w, ": %s", r.Reason)
	}
	fmt.Fprintf(w, "\nwall     %.0fs\nresults  %s\n", r.WallSeconds, dir)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// DemoConfigs are the config fragments of the README's demonstration:
// the qemu-minimal, lockdep and debug-info presets and the seed series'
// own fragment (CONFIG_SEEDFS=y), relative to the repository root.
func DemoConfigs(repoRoot string) []string {
	return []string{"qemu-minimal", "lockdep", "debug-info", filepath.Join(repoRoot, "examples", "seed-series", "seedfs.config")}
}

// writeStack prints a crash's guilty frames, guilty first, each with its
// source position (and inlined callees) when symbolization found one.
func writeStack(w io.Writer, c results.Crash) {
	fmt.Fprintf(w, "  stack:\n")
	for i, fn := range c.Frames {
		if i == 10 {
			fmt.Fprintf(w, "    ...\n")
			break
		}
		loc := ""
		for _, f := range c.Stack {
			if f.Func != fn || f.File == "" {
				continue
			}
			for _, in := range f.Inlined {
				fmt.Fprintf(w, "    %-28s %s:%d (inlined)\n", in.Func, in.File, in.Line)
			}
			loc = fmt.Sprintf("%s:%d", f.File, f.Line)
			break
		}
		fmt.Fprintf(w, "    %-28s %s\n", fn, loc)
	}
}

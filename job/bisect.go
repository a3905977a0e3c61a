package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kregress/kregress/internal/proc"

	"github.com/kregress/kregress/bisect"
	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/triage"
	"github.com/kregress/kregress/suites"
)

// BisectSpec is a bisection: which change between a good and a bad end
// brings a crash.
type BisectSpec struct {
	// Build says what to build. With Good and Bad empty, Build.Series is
	// bisected over its prefixes (the base is good, the whole series bad);
	// otherwise Build.Source is a git tree and Good..Bad a commit range in
	// it (Build.Series and Base must be empty).
	Build     build.Request
	Good, Bad string
	Suites    []*suites.Suite
	// Run carries the boot settings of every run (Kernel, Suite, Out and
	// Label are set per run).
	Run Spec
	// Runs per step before the crash is seen to be flaky (bisect.DefaultRuns
	// when 0); Jobs is how many VMs run at once.
	Runs, Jobs int
	// Crash is the title to bisect; "" takes the first crash of the bad
	// end. AnyCrash counts every crash instead (syzkaller's choice).
	Crash    string
	AnyCrash bool
	// VerifyGood tests the good end too (always for a series' base).
	VerifyGood bool
	// BuildBase (git mode, optional) is an ancestor of Good every step is
	// built on, as the diff from it to the step; default Good. Steps built
	// on one base share its build folder, so builds after the first are
	// incremental.
	BuildBase string
	Out       string
	Command   string
	Progress  func(format string, args ...any)
	// Executor builds and runs; nil means Local.
	Executor Executor
}

// Bisect runs a bisection and writes its run directory: result.json, the
// bisect log (git), and a folder per step with its kernel and runs.
func Bisect(ctx context.Context, spec BisectSpec) (*results.BisectResult, string, error) {
	if spec.Progress == nil {
		spec.Progress = func(string, ...any) {}
	}
	if spec.Executor == nil {
		spec.Executor = Local{}
	}
	if len(spec.Suites) == 0 {
		return nil, "", suites.ErrNoSuite
	}
	if spec.Runs <= 0 {
		spec.Runs = bisect.DefaultRuns
	}
	if spec.Jobs <= 0 {
		spec.Jobs = 1
	}
	res := &results.BisectResult{Source: spec.Build.Source, Configs: spec.Build.Configs,
		Crash: spec.Crash, AnyCrash: spec.AnyCrash, RunsPerStep: spec.Runs, Started: time.Now().UTC()}
	for _, s := range spec.Suites {
		res.Suites = append(res.Suites, s.Name)
	}
	t := &bisectTester{spec: spec, res: res, labels: map[string]string{}, builds: map[string]*build.Result{}, sigs: map[string]string{}}
	var patches []build.Patch
	gitMode := spec.Good != "" || spec.Bad != ""
	if gitMode {
		if spec.Good == "" || spec.Bad == "" {
			return nil, "", &build.InputError{Err: errors.New("a git range needs both --good and --bad")}
		}
		if spec.Build.Series != "" || spec.Build.Base != "" {
			return nil, "", &build.InputError{Err: errors.New("give a git range (--good/--bad) or a series, not both")}
		}
		if st, err := os.Stat(filepath.Join(spec.Build.Source, ".git")); err != nil || st == nil {
			return nil, "", &build.InputError{Err: fmt.Errorf("%s is not a git tree: a commit range needs one", spec.Build.Source)}
		}
		res.Mode, res.Good, res.Bad = "git", spec.Good, spec.Bad
		if t.base = revParse(ctx, spec.Build.Source, spec.Good); t.base == "" {
			return nil, "", &build.InputError{Err: fmt.Errorf("--good %s is not a commit in %s", spec.Good, spec.Build.Source)}
		}
		if b := revParse(ctx, spec.Build.Source, spec.BuildBase); b != "" && isAncestor(ctx, spec.Build.Source, b, t.base) {
			t.base = b
		}
	} else {
		if spec.Build.Series == "" {
			return nil, "", &build.InputError{Err: errors.New("give --series (its prefixes are bisected) or --good and --bad commits")}
		}
		var err error
		patches, err = build.LoadSeries(ctx, spec.Build.Source, spec.Build.Series)
		if err != nil {
			return nil, "", err
		}
		if len(patches) == 0 {
			return nil, "", &build.InputError{Err: fmt.Errorf("series %s holds no patches", spec.Build.Series)}
		}
		res.Mode, res.Series, res.Good, res.Bad = "series", spec.Build.Series, "base", fmt.Sprintf("patch %d", len(patches))
		t.patches = patches
		spec.VerifyGood = true // the base is one build more, and cheap to trust
		t.spec.VerifyGood = true
	}
	if spec.Out == "" {
		spec.Out = "out"
	}
	dir, err := results.NewDir(spec.Out, "bisect")
	if err != nil {
		return nil, "", err
	}
	t.dir = dir
	start := time.Now()
	defer func() {
		res.WallSeconds = time.Since(start).Seconds()
		writeJSON(dir, res)
	}()
	opt := bisect.Options{Runs: spec.Runs, VerifyGood: spec.VerifyGood}
	var br *bisect.Result
	if gitMode {
		br, err = bisect.Git(ctx, spec.Build.Source, spec.Good, spec.Bad, dir.File("scratch"), t, opt)
		os.RemoveAll(dir.File("scratch"))
	} else {
		br, err = bisect.Prefixes(ctx, len(patches), t, opt)
	}
	if br != nil {
		t.record(br)
	}
	if err != nil {
		res.Status, res.Reason = results.StatusInfra, err.Error()
		if errors.Is(err, bisect.ErrEndpoint) {
			// Not the machinery's fault: the crash does not reproduce
			// at the bad end (or shows at the good end).
			res.Status, res.Reason = results.StatusFail, "nothing to bisect: "+err.Error()
		}
		if ctx.Err() != nil {
			res.Reason = "interrupted: " + err.Error()
		}
		return res, dir.Path, nil
	}
	if br.Log != "" {
		dir.WriteFile("bisect.log", []byte(br.Log))
		res.Log = "bisect.log"
	}
	if br.Inconclusive() {
		res.Status = results.StatusFail
		res.Reason = fmt.Sprintf("inconclusive: only skipped changes are left (%d candidates)", len(br.Candidates))
		res.Candidates = t.labelsOf(br.Candidates)
		return res, dir.Path, nil
	}
	res.Status = results.StatusPass
	c := &results.Culprit{ID: br.Culprit, Subject: br.Subject, Author: br.Author}
	parent := ""
	if gitMode {
		if out, err := proc.Command(ctx, "git", "-C", spec.Build.Source, "rev-parse", br.Culprit+"^").Output(); err == nil {
			parent = strings.TrimSpace(string(out))
		}
	} else {
		k, _ := strconv.Atoi(br.Culprit)
		p := patches[k-1]
		c.Index, c.Subject, c.Author = k, p.Subject, p.From
		parent = strconv.Itoa(k - 1)
	}
	c.Signature, c.ParentSignature = t.signature(ctx, br.Culprit), t.signature(ctx, parent)
	c.SameImage = c.Signature != "" && c.Signature == c.ParentSignature
	if b := t.builds[br.Culprit]; b != nil {
		c.Reproduce = fmt.Sprintf("kregress run --kernel %s --suite %s", filepath.Join(t.stepDir(br.Culprit), "bzImage"), suiteArgs(spec.Suites))
	}
	res.Culprit = c
	res.Reason = fmt.Sprintf("first bad: %s", t.label(br.Culprit))
	if c.SameImage {
		res.Reason += " (suspect: its kernel image is the same as its parent's)"
	}
	if !br.Reliable {
		res.Reason += fmt.Sprintf(" (unreliable: confidence %.3f)", br.Confidence)
	}
	return res, dir.Path, nil
}

// bisectTester builds and runs the steps of a bisection.
type bisectTester struct {
	spec    BisectSpec
	res     *results.BisectResult
	dir     *results.Dir
	patches []build.Patch
	// target is the crash being bisected, once known.
	target *triage.Identity
	mu     sync.Mutex
	steps  []results.BisectStep
	labels map[string]string
	builds map[string]*build.Result
	// sigs are the image signatures of the steps built, taken right
	// after each build: steps share a build folder (the patches of a
	// series, the commits of a range), so a later build rewrites it.
	sigs map[string]string
	// base is the commit every step is built on (git mode: BuildBase,
	// else the good end): a step is base plus the diff base..step, so all
	// steps share one build folder and each build after the first is
	// incremental.
	base string
}

func (t *bisectTester) stepDir(id string) string {
	if t.patches != nil {
		return t.dir.File(fmt.Sprintf("step-%02s", id))
	}
	return t.dir.File("step-" + shortHash(id))
}

func (t *bisectTester) label(id string) string {
	if l, ok := t.labels[id]; ok {
		return l
	}
	var l string
	if t.patches != nil {
		k, _ := strconv.Atoi(id)
		if k == 0 {
			l = "base"
		} else {
			l = t.patches[k-1].Label()
		}
	} else {
		l = shortHash(id)
		if out, err := proc.Command(context.Background(), "git", "-C", t.spec.Build.Source, "log", "-1", "--format=%s", id).Output(); err == nil {
			l += " " + strings.TrimSpace(string(out))
		}
	}
	t.labels[id] = l
	return l
}

func (t *bisectTester) labelsOf(ids []string) []string {
	var out []string
	for _, id := range ids {
		out = append(out, t.label(id))
	}
	return out
}

func (t *bisectTester) request(ctx context.Context, id string) build.Request {
	req := t.spec.Build
	if t.patches != nil {
		k, _ := strconv.Atoi(id)
		req.Series = ""
		req.Patches = append([]build.Patch(nil), t.patches[:k]...)
		return req
	}
	req.Base = id
	if id != t.base {
		if p, ok := rangePatch(ctx, req.Source, t.base, id); ok {
			req.Base = t.base
			if p != nil {
				req.Patches = []build.Patch{*p}
			}
		}
	}
	return req
}

// maxRangePatch bounds the diff a git step is built from; a larger range
// builds the commit itself (a build folder of its own, not incremental).
const maxRangePatch = 64 << 20

// rangePatch is the change from commit base to commit id of repo as one
// patch: building base plus it builds id's tree in base's build folder,
// so a bisection's builds after the first are incremental (a build
// folder is keyed by base commit and config, not by the patches on top).
// The patch is nil when the trees are the same; ok is false when git
// cannot make it or it is too large.
func rangePatch(ctx context.Context, repo, base, id string) (p *build.Patch, ok bool) {
	diff, err := proc.Command(ctx, "git", "-C", repo, "diff", "--binary", "--full-index", "--no-color", "--no-ext-diff", "--no-textconv", base, id).Output()
	if err != nil || len(diff) > maxRangePatch {
		return nil, false
	}
	if len(diff) == 0 {
		return nil, true
	}
	names, err := proc.Command(ctx, "git", "-C", repo, "diff", "--name-only", "-z", "--no-renames", base, id).Output()
	if err != nil {
		return nil, false
	}
	var files []string
	for _, f := range strings.Split(string(names), "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	return &build.Patch{Number: 1, Total: 1, Subject: fmt.Sprintf("changes %s..%s", shortHash(base), shortHash(id)),
		Origin: "git diff", Data: diff, Files: files}, true
}

// Test builds step id and runs every suite n times, Jobs VMs at a time.
func (t *bisectTester) Test(ctx context.Context, id string, n int) (bisect.Counts, string, error) {
	label := t.label(id)
	st := results.BisectStep{ID: id, Label: label, Dir: filepath.Base(t.stepDir(id))}
	// Steps share one build folder, which the next build (of this or
	// another kregress) rewrites: the runs boot the step's own copy.
	kernel := filepath.Join(t.stepDir(id), "bzImage")
	// A step tested again (more runs for a flaky crash) reuses its build
	// and numbers its runs on from those it had.
	br, first := t.builds[id], t.runsOf(id)
	if br == nil {
		t.spec.Progress("bisect: %s: build", label)
		var err error
		br, err = t.spec.Executor.Build(ctx, t.request(ctx, id))
		if err != nil {
			switch build.Classify(err) {
			case build.ClassNoApply, build.ClassNoBuild:
				st.Verdict, st.Reason = string(bisect.Skip), headLine(err.Error())
				t.addStep(st)
				return bisect.Counts{}, "does not build: " + headLine(err.Error()), nil
			}
			return bisect.Counts{}, "", fmt.Errorf("build %s: %w", label, err)
		}
		t.builds[id] = br
		t.sigs[id] = imageSignature(br)
		if err := os.MkdirAll(t.stepDir(id), 0o755); err != nil {
			return bisect.Counts{}, "", err
		}
		if err := results.CopyFile(br.BzImage, kernel); err != nil {
			return bisect.Counts{}, "", fmt.Errorf("keep %s's kernel: %w", label, err)
		}
	} else {
		t.spec.Progress("bisect: %s: the crash is flaky: %d more runs", label, n)
	}
	spec := t.spec.Run
	closeSym := spec.UseBuild(br)
	defer closeSym()
	spec.Kernel = kernel

	var c bisect.Counts
	var noBoot int
	titles := map[string]bool{}
	// judge counts one run: the suite runs of one repetition.
	judge := func(runs []SuiteRun) {
		var crashes []results.Crash
		infra, booted := false, true
		for _, sr := range runs {
			switch r := sr.Result; {
			case sr.Err != nil || r == nil:
				infra = true
			case len(r.Crashes) > 0:
				crashes = append(crashes, r.Crashes...)
			case runNoBoot(r):
				booted = false
			case RunIsInfra(sr):
				infra = true
			}
		}
		for _, cr := range crashes {
			titles[cr.Title] = true
		}
		switch {
		case len(crashes) > 0:
			c.Add(t.classify(crashes))
		case !booted:
			noBoot++
			c.Add(bisect.Infra)
		case infra:
			c.Add(bisect.Infra)
		default:
			c.Add(bisect.Clean)
		}
		t.spec.Progress("bisect: %s: run %d/%d: %d crashing, %d clean, %d other, %d infra", label, first+c.Runs, first+n, c.Bad, c.Good, c.Other, c.Infra)
	}
	specs := func(from, to int) []Spec {
		var out []Spec
		for i := from; i < to; i++ {
			for _, s := range t.spec.Suites {
				rs := spec
				rs.Suite, rs.Out, rs.Label, rs.Progress = s, t.stepDir(id), fmt.Sprintf("run%02d-%s", first+i, s.Name), nil
				out = append(out, rs)
			}
		}
		return out
	}
	// runBatch runs repetitions from..to and judges each.
	runBatch := func(from, to int) {
		ss := specs(from, to)
		srs := make([]SuiteRun, len(ss))
		if many, ok := t.spec.Executor.(interface {
			RunMany(context.Context, []Spec) ([]*results.Result, []string, []error)
		}); ok {
			// One batch: a job array on a cluster.
			rs, dirs, errs := many.RunMany(ctx, ss)
			for i := range ss {
				srs[i] = SuiteRun{Suite: ss[i].Suite.Name, Dir: dirs[i], Result: rs[i], Err: errs[i]}
			}
		} else {
			sem := make(chan struct{}, t.spec.Jobs)
			var wg sync.WaitGroup
			for i := range ss {
				if ctx.Err() != nil {
					srs[i] = SuiteRun{Suite: ss[i].Suite.Name, Err: ctx.Err()}
					continue
				}
				wg.Add(1)
				sem <- struct{}{}
				go func(i int) {
					defer wg.Done()
					defer func() { <-sem }()
					r, dir, err := t.spec.Executor.Run(ctx, ss[i])
					srs[i] = SuiteRun{Suite: ss[i].Suite.Name, Dir: dir, Result: r, Err: err}
				}(i)
			}
			wg.Wait()
		}
		per := len(t.spec.Suites)
		for k := 0; k+per <= len(srs); k += per {
			judge(srs[k : k+per])
		}
	}
	// The bad end's first run names the crash when none was given: run it
	// alone first.
	start := 0
	if t.target == nil && t.spec.Crash == "" && !t.spec.AnyCrash && first == 0 {
		runBatch(0, 1)
		start = 1
	}
	runBatch(start, n)
	if err := ctx.Err(); err != nil {
		return c, "", err
	}
	for tt := range titles {
		st.Crashes = append(st.Crashes, tt)
	}
	st.Bad, st.Good, st.Other, st.Infra = c.Bad, c.Good, c.Other, c.Infra
	if 2*noBoot > n {
		st.Verdict, st.Reason = string(bisect.Skip), fmt.Sprintf("does not boot (%d of %d runs)", noBoot, n)
		t.addStep(st)
		return bisect.Counts{}, st.Reason, nil
	}
	v, derr := bisect.Decide(c, n, false)
	st.Verdict = string(v)
	if derr != nil {
		st.Reason = derr.Error()
	}
	t.addStep(st)
	return c, "", nil
}

// classify says whether a run's crashes are the one being bisected.
func (t *bisectTester) classify(crashes []results.Crash) bisect.Outcome {
	if t.spec.AnyCrash {
		return bisect.Crash
	}
	if t.target == nil {
		id := triage.Identity{Title: t.spec.Crash}
		if id.Title == "" {
			id = crashes[0].Identity()
			t.res.Crash = id.Title
		}
		t.target = &id
	}
	for _, cr := range crashes {
		if triage.SameCrash(*t.target, cr.Identity()) {
			return bisect.Crash
		}
	}
	return bisect.Other
}

// runsOf is how many runs step id has had so far (its record's counts).
func (t *bisectTester) runsOf(id string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.steps {
		if p.ID == id {
			return p.Bad + p.Good + p.Other + p.Infra
		}
	}
	return 0
}

// addStep records a step; a step tested again (more runs) adds its
// counts and crash titles to its first record.
func (t *bisectTester) addStep(st results.BisectStep) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.steps {
		if p := &t.steps[i]; p.ID == st.ID {
			p.Bad, p.Good, p.Other, p.Infra = p.Bad+st.Bad, p.Good+st.Good, p.Other+st.Other, p.Infra+st.Infra
			for _, c := range st.Crashes {
				if !slices.Contains(p.Crashes, c) {
					p.Crashes = append(p.Crashes, c)
				}
			}
			p.Verdict, p.Reason = st.Verdict, st.Reason
			return
		}
	}
	t.steps = append(t.steps, st)
}

// record copies the search's figures into the result. The step verdicts
// are the search's (it knows flakiness), the counts the tester's.
func (t *bisectTester) record(br *bisect.Result) {
	r := t.res
	r.Builds, r.Runs, r.Confidence, r.CrashRate, r.Flaky, r.Reliable = br.Builds, br.Runs, br.Confidence, br.CrashRate, br.Flaky, br.Reliable
	verdicts := map[string]bisect.StepResult{}
	for _, s := range br.Steps {
		verdicts[s.ID] = s
	}
	r.Steps = nil
	for _, st := range t.steps {
		if s, ok := verdicts[st.ID]; ok {
			st.Verdict = string(s.Verdict)
			if st.Reason == "" {
				st.Reason = s.Reason
			}
		}
		r.Steps = append(r.Steps, st)
	}
}

// signature is a step's image signature: the one taken when it was built
// in this bisection, else (the culprit's parent was not a step) that of a
// build made now (cached when it was built before); "" when it cannot be
// built.
func (t *bisectTester) signature(ctx context.Context, id string) string {
	if id == "" {
		return ""
	}
	if sig, ok := t.sigs[id]; ok {
		return sig
	}
	b, err := t.spec.Executor.Build(ctx, t.request(ctx, id))
	if err != nil {
		return ""
	}
	t.sigs[id] = imageSignature(b)
	return t.sigs[id]
}

// imageSignature hashes a build's image now, "" when it cannot.
func imageSignature(br *build.Result) string {
	sig, err := bisect.ImageSignature(br.Vmlinux, br.ModulesDir)
	if err != nil {
		return ""
	}
	return sig
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func suiteArgs(ss []*suites.Suite) string {
	var names []string
	for _, s := range ss {
		if strings.HasPrefix(s.File, "builtin:") {
			names = append(names, s.Name)
		} else {
			names = append(names, s.File)
		}
	}
	return strings.Join(names, ",")
}

// headLine is the first line of s.
func headLine(s string) string {
	h, _, _ := strings.Cut(s, "\n")
	return h
}

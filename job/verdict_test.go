package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/runner"
	"github.com/kregress/kregress/suites"
)

// fakeStep is what the fake executor gives for one prefix (0 = the base).
type fakeStep struct {
	buildErr error
	// runs maps a suite to its result; a missing suite passes t1 and t2.
	runs   map[string]*results.Result
	runErr error
}

// fakeExec is an Executor with fixed outcomes per prefix; it records the
// prefixes it was asked to build, in order (TestSeries builds one at a
// time).
type fakeExec struct {
	t     *testing.T
	n     int
	steps map[int]fakeStep
	// noApply is the patch that does not apply (0: none); checkSilent
	// makes CheckApply say nothing, so that only building finds it.
	noApply     int
	checkSilent bool
	// cancel, when set, is called once the prefix cancelAt is built.
	cancel   func()
	cancelAt int

	builds []int
}

func (f *fakeExec) applyErr(req build.Request) error {
	if f.noApply == 0 || len(req.Patches) < f.noApply {
		return nil
	}
	return &build.ApplyError{Patch: req.Patches[f.noApply-1], File: "fs/x.c", Detail: "patch does not apply"}
}

func (f *fakeExec) CheckApply(ctx context.Context, req build.Request) error {
	if f.checkSilent {
		return nil
	}
	return f.applyErr(req)
}

func (f *fakeExec) Build(ctx context.Context, req build.Request) (*build.Result, error) {
	k := len(req.Patches)
	f.builds = append(f.builds, k)
	if f.cancel != nil && k == f.cancelAt {
		f.cancel()
	}
	for i, p := range req.Patches {
		if p.Number != i+1 || p.Total != f.n {
			f.t.Errorf("prefix %d: patch %d numbered %d/%d", k, i, p.Number, p.Total)
		}
	}
	if err := f.applyErr(req); err != nil {
		return nil, err
	}
	if err := f.steps[k].buildErr; err != nil {
		return nil, err
	}
	dir := f.t.TempDir()
	img := filepath.Join(dir, "bzImage")
	if err := os.WriteFile(img, []byte(fmt.Sprintf("kernel %d", k)), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return &build.Result{Key: fmt.Sprintf("key%d", k), BzImage: img, Vmlinux: filepath.Join(dir, "vmlinux")}, nil
}

func (f *fakeExec) Run(ctx context.Context, spec Spec) (*results.Result, string, error) {
	k := 0
	if step := filepath.Base(spec.Out); step != "base" {
		fmt.Sscanf(step, "patch-%d", &k)
	}
	if data, err := os.ReadFile(spec.Kernel); err != nil || string(data) != fmt.Sprintf("kernel %d", k) {
		f.t.Errorf("step %s boots %s (%q, %v), not its own kernel", filepath.Base(spec.Out), spec.Kernel, data, err)
	}
	st := f.steps[k]
	if st.runErr != nil {
		return nil, "", st.runErr
	}
	dir := filepath.Join(spec.Out, spec.Label)
	os.MkdirAll(dir, 0o755)
	if r := st.runs[spec.Suite.Name]; r != nil {
		return r, dir, nil
	}
	return passing(), dir, nil
}

func passing() *results.Result {
	return fakeRun(results.StatusPass, "t1", results.StatusPass, "t2", results.StatusPass)
}

// fakeRun makes a result with tests given as name, status pairs.
func fakeRun(status results.Status, tests ...any) *results.Result {
	r := &results.Result{Status: status, Crashes: []results.Crash{}}
	for i := 0; i+1 < len(tests); i += 2 {
		r.Tests = append(r.Tests, results.Test{Name: tests[i].(string), Status: tests[i+1].(results.Status)})
	}
	return r
}

func crashed(c ...results.Crash) *results.Result {
	r := fakeRun(results.StatusCrash, "t1", results.StatusCrash, "t2", results.StatusSkip)
	r.Crashes = c
	return r
}

// writeSeries writes a series of n patches into a folder.
func writeSeries(t *testing.T, n int) string {
	dir := t.TempDir()
	for i := 1; i <= n; i++ {
		p := fmt.Sprintf("From: Dev <dev@example.org>\nSubject: [PATCH %d/%d] change %d\n\n---\ndiff --git a/f%d.c b/f%d.c\n--- a/f%d.c\n+++ b/f%d.c\n@@ -1 +1 @@\n-a\n+b\n", i, n, i, i, i, i, i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%04d.patch", i)), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSeriesVerdicts drives TestSeries with a fake executor: no kernel is
// built or booted, every case runs in milliseconds.
func TestSeriesVerdicts(t *testing.T) {
	lockdep := results.Crash{Title: "possible deadlock in seedfs_lookup", Type: "LOCKDEP"}
	oops := results.Crash{Title: "BUG: unable to handle kernel NULL pointer dereference in ll_lookup_it_finish", AltTitles: []string{"BUG: unable to handle kernel NULL pointer dereference in ll_splice_alias"}}
	// A corrupted report whose untrusted stack names the same function.
	corrupted := results.Crash{Title: "BUG: unable to handle kernel NULL pointer dereference in corrupted", Corrupted: true,
		AltTitles: []string{"BUG: unable to handle kernel NULL pointer dereference in ll_lookup_it_finish"}}
	type want struct {
		builds   []int
		base     results.Verdict
		verdicts string // "index:verdict ..." of the tested patches
		status   results.Status
		firstBad int
		title    string
		reason   string // a substring of the reason
	}
	cases := []struct {
		name     string
		perPatch bool
		fake     fakeExec
		want     want
	}{
		{name: "clean tip: only base and tip are built",
			want: want{builds: []int{0, 4}, base: "pass", verdicts: "4:pass", status: "pass"}},
		{name: "per-patch: every prefix in order", perPatch: true,
			want: want{builds: []int{0, 1, 2, 3, 4}, base: "pass", verdicts: "1:pass 2:pass 3:pass 4:pass", status: "pass"}},
		{name: "tip crash: tip first, then the prefixes back-filled",
			fake: fakeExec{steps: map[int]fakeStep{
				3: {runs: map[string]*results.Result{"s1": crashed(lockdep)}},
				4: {runs: map[string]*results.Result{"s1": crashed(lockdep)}},
			}},
			want: want{builds: []int{0, 4, 1, 2, 3}, base: "pass", verdicts: "1:pass 2:pass 3:crash 4:crash", status: "regression",
				firstBad: 3, title: lockdep.Title, reason: `patch 3/4 "change 3": crash: possible deadlock`}},
		{name: "no-apply chain found by building: later prefixes are not built", perPatch: true,
			fake: fakeExec{noApply: 2, checkSilent: true},
			want: want{builds: []int{0, 1, 2}, base: "pass", verdicts: "1:pass 2:no-apply 3:no-apply 4:no-apply", status: "regression",
				firstBad: 2, reason: `patch 2/4 "change 2": no-apply`}},
		{name: "no-apply chain found by building the tip: only the clean prefixes are built",
			fake: fakeExec{noApply: 3, checkSilent: true},
			want: want{builds: []int{0, 4, 1, 2}, base: "pass", verdicts: "1:pass 2:pass 3:no-apply 4:no-apply", status: "regression", firstBad: 3}},
		{name: "no-apply chain found by the apply check: nothing that holds it is built",
			fake: fakeExec{noApply: 3},
			want: want{builds: []int{0, 1, 2}, base: "pass", verdicts: "1:pass 2:pass 3:no-apply 4:no-apply", status: "regression", firstBad: 3}},
		{name: "failing base: fail on the base, the same failure on a patch is not new",
			fake: fakeExec{steps: map[int]fakeStep{
				0: {runs: map[string]*results.Result{"s1": fakeRun(results.StatusFail, "t1", results.StatusFail, "t2", results.StatusPass)}},
				4: {runs: map[string]*results.Result{"s1": fakeRun(results.StatusFail, "t1", results.StatusFail, "t2", results.StatusPass)}},
			}},
			want: want{builds: []int{0, 4}, base: "fail", verdicts: "4:pass", status: "pass"}},
		{name: "a test passing on the base fails on a patch", perPatch: true,
			fake: fakeExec{steps: map[int]fakeStep{
				2: {runs: map[string]*results.Result{"s2": fakeRun(results.StatusFail, "t1", results.StatusPass, "t2", results.StatusTimeout)}},
			}},
			want: want{builds: []int{0, 1, 2, 3, 4}, base: "pass", verdicts: "1:pass 2:fail 3:pass 4:pass", status: "regression", firstBad: 2,
				reason: `patch 2/4 "change 2": fail`}},
		{name: "flaky tests: failing or skipped on the base, or new, never count",
			fake: fakeExec{steps: map[int]fakeStep{
				0: {runs: map[string]*results.Result{"s1": fakeRun(results.StatusFail, "t1", results.StatusFail, "t2", results.StatusSkip)}},
				4: {runs: map[string]*results.Result{"s1": fakeRun(results.StatusFail, "t1", results.StatusPass, "t2", results.StatusFail, "t3", results.StatusFail)}},
			}},
			want: want{builds: []int{0, 4}, base: "fail", verdicts: "4:pass", status: "pass"}},
		{name: "pre-existing crash: on the base by title, on a patch by alternative title",
			fake: fakeExec{steps: map[int]fakeStep{
				0: {runs: map[string]*results.Result{"s1": crashed(oops)}},
				4: {runs: map[string]*results.Result{"s1": crashed(results.Crash{Title: oops.AltTitles[0]})}},
			}},
			want: want{builds: []int{0, 4}, base: "crash", verdicts: "4:pass", status: "pass"}},
		{name: "a corrupted base crash does not make a new crash pre-existing",
			fake: fakeExec{steps: map[int]fakeStep{
				0: {runs: map[string]*results.Result{"s1": crashed(corrupted)}},
				4: {runs: map[string]*results.Result{"s1": crashed(oops)}},
				3: {runs: map[string]*results.Result{"s1": crashed(oops)}},
			}},
			want: want{builds: []int{0, 4, 1, 2, 3}, base: "crash", verdicts: "1:pass 2:pass 3:crash 4:crash", status: "regression", firstBad: 3, title: oops.Title}},
		{name: "infra run on the tip: prefixes back-filled, status infra",
			fake: fakeExec{steps: map[int]fakeStep{
				4: {runs: map[string]*results.Result{"s1": {Status: results.StatusInfra, Reason: "image: no space left on device"}}},
			}},
			want: want{builds: []int{0, 4, 1, 2, 3}, base: "pass", verdicts: "1:pass 2:pass 3:pass 4:infra", status: "infra", reason: "patch 4: image: no space left"}},
		{name: "infra build and run errors are infra, a later bad patch still wins", perPatch: true,
			fake: fakeExec{steps: map[int]fakeStep{
				1: {buildErr: errors.New("build: make: context deadline exceeded")},
				2: {runErr: errors.New("results: create run dir: read-only file system")},
				3: {buildErr: &build.CompileError{Target: "bzImage", Err: errors.New("exit status 2")}},
			}},
			want: want{builds: []int{0, 1, 2, 3, 4}, base: "pass", verdicts: "1:infra 2:infra 3:no-build 4:pass", status: "regression", firstBad: 3}},
		{name: "no-boot patch",
			fake: fakeExec{steps: map[int]fakeStep{
				4: {runs: map[string]*results.Result{"s1": {Status: results.StatusInfra, Outcome: string(runner.OutcomeBootTimeout), Reason: "agent not ready"}}},
			}},
			want: want{builds: []int{0, 4, 1, 2, 3}, base: "pass", verdicts: "1:pass 2:pass 3:pass 4:no-boot", status: "regression", firstBad: 4}},
		{name: "the base does not boot: nothing else is built",
			fake: fakeExec{steps: map[int]fakeStep{
				0: {runs: map[string]*results.Result{"s1": {Status: results.StatusInfra, Outcome: string(runner.OutcomeExited), Reason: "QEMU exited"}}},
			}},
			want: want{builds: []int{0}, base: "no-boot", status: "infra", reason: "the base does not build or boot: QEMU exited"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := c.fake
			f.t, f.n = t, 4
			res, dir, err := testSeries(t, &f, c.perPatch)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range res.Patches {
				got = append(got, fmt.Sprintf("%d:%s", p.Index, p.Verdict))
			}
			if !reflect.DeepEqual(f.builds, c.want.builds) {
				t.Errorf("built prefixes %v, want %v", f.builds, c.want.builds)
			}
			if res.Base.Verdict != c.want.base {
				t.Errorf("base %s (%s), want %s", res.Base.Verdict, res.Base.Message, c.want.base)
			}
			if g := strings.Join(got, " "); g != c.want.verdicts {
				t.Errorf("verdicts %q, want %q", g, c.want.verdicts)
			}
			if res.Status != c.want.status || !strings.Contains(res.Reason, c.want.reason) {
				t.Errorf("status %s (%s), want %s (%s)", res.Status, res.Reason, c.want.status, c.want.reason)
			}
			switch fb := res.FirstBad; {
			case c.want.firstBad == 0 && fb != nil:
				t.Errorf("first bad %+v, want none", fb)
			case c.want.firstBad != 0 && (fb == nil || fb.Index != c.want.firstBad || fb.Title != c.want.title || fb.Reproduce == ""):
				t.Errorf("first bad %+v, want patch %d %q with a reproduce line", fb, c.want.firstBad, c.want.title)
			}
			var back results.SeriesResult
			if err := readJSON(filepath.Join(dir, "result.json"), &back); err != nil || back.Status != res.Status {
				t.Errorf("result.json: %v, status %q", err, back.Status)
			}
		})
	}
}

// testSeries runs TestSeries on a 4-patch series with suites s1 and s2.
func testSeries(t *testing.T, f *fakeExec, perPatch bool) (*results.SeriesResult, string, error) {
	t.Helper()
	return TestSeries(t.Context(), SeriesSpec{
		Build:    build.Request{Source: "/src/linux", Series: writeSeries(t, f.n)},
		Suites:   []*suites.Suite{{Name: "s1", File: "builtin:s1"}, {Name: "s2", File: "/suites/s2.yaml"}},
		PerPatch: perPatch, Out: t.TempDir(), Executor: f, Command: "kregress test --series x",
	})
}

// TestSeriesFirstPatchNoApply: a series that does not apply from its first
// patch is bad input, whether the apply check or a build finds it: an
// error, no run directory, never a regression of patch 1.
func TestSeriesFirstPatchNoApply(t *testing.T) {
	for _, silent := range []bool{false, true} {
		f := &fakeExec{t: t, n: 3, noApply: 1, checkSilent: silent}
		out := t.TempDir()
		res, dir, err := TestSeries(t.Context(), SeriesSpec{
			Build:  build.Request{Source: "/src/linux", Series: writeSeries(t, 3)},
			Suites: []*suites.Suite{{Name: "s1"}}, Out: out, Executor: f,
		})
		if err == nil || build.Classify(err) != build.ClassBadInput || !strings.Contains(err.Error(), "from its first patch") {
			t.Errorf("apply check silent %v: %+v %q, %v; want a bad-input error", silent, res, dir, err)
		}
		if left, _ := os.ReadDir(out); len(left) != 0 {
			t.Errorf("apply check silent %v: %s holds %d entries after bad input", silent, out, len(left))
		}
		want := []int(nil)
		if silent {
			want = []int{0, 3}
		}
		if !reflect.DeepEqual(f.builds, want) {
			t.Errorf("apply check silent %v: built %v, want %v", silent, f.builds, want)
		}
	}
}

// TestSeriesBadInputBase: a base that is bad input (not a kernel tree) is
// an error and leaves no run directory.
func TestSeriesBadInputBase(t *testing.T) {
	f := &fakeExec{t: t, n: 2, steps: map[int]fakeStep{0: {buildErr: &build.InputError{Err: errors.New("build: source /src is not a kernel tree")}}}}
	out := t.TempDir()
	_, _, err := TestSeries(t.Context(), SeriesSpec{
		Build:  build.Request{Source: "/src", Series: writeSeries(t, 2)},
		Suites: []*suites.Suite{{Name: "s1"}}, Out: out, Executor: f,
	})
	if build.Classify(err) != build.ClassBadInput {
		t.Errorf("err %v, want bad input", err)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("%s holds %d entries after bad input", out, len(left))
	}
}

// TestSeriesCanceled: a canceled series stops building and says so.
func TestSeriesCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f := &fakeExec{t: t, n: 4, cancel: cancel, cancelAt: 2}
	res, _, err := TestSeries(ctx, SeriesSpec{
		Build:  build.Request{Source: "/src/linux", Series: writeSeries(t, 4)},
		Suites: []*suites.Suite{{Name: "s1"}}, PerPatch: true, Out: t.TempDir(), Executor: f,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.builds, []int{0, 1, 2}) || res.Status != results.StatusInfra || !strings.Contains(res.Reason, "canceled") {
		t.Errorf("built %v, status %s (%s); want 0 1 2, infra: canceled", f.builds, res.Status, res.Reason)
	}
}

// TestJudgeStep pins the step rules on their own.
func TestJudgeStep(t *testing.T) {
	base := &results.Step{Verdict: results.VerdictPass, Tests: map[string]results.Status{"s/a": results.StatusPass, "s/b": results.StatusPass}}
	ok := func(r *results.Result) []SuiteRun { return []SuiteRun{{Suite: "s", Dir: "/r", Result: r}} }
	for _, c := range []struct {
		name    string
		base    *results.Step
		err     error
		runs    []SuiteRun
		verdict results.Verdict
		message string
	}{
		{"apply error", base, &build.ApplyError{Patch: build.Patch{Number: 2, Total: 3}}, nil, results.VerdictNoApply, "does not apply"},
		{"compile error", base, fmt.Errorf("wrapped: %w", &build.CompileError{Err: errors.New("exit status 2")}), nil, results.VerdictNoBuild, "make"},
		{"bad input in a step", base, &build.InputError{Err: errors.New("no such preset")}, nil, results.VerdictInfra, "no such preset"},
		{"run error", base, nil, []SuiteRun{{Suite: "s", Err: errors.New("no run dir")}}, results.VerdictInfra, "no run dir"},
		{"newly failing, sorted", base, nil, ok(fakeRun(results.StatusFail, "b", results.StatusFail, "a", results.StatusCrash)), results.VerdictFail, "newly failing: s/a, s/b"},
		{"base failing", nil, nil, ok(fakeRun(results.StatusFail, "a", results.StatusFail)), results.VerdictFail, "failing on the base: s/a"},
		{"base skipping", nil, nil, ok(fakeRun(results.StatusPass, "a", results.StatusSkip)), results.VerdictPass, ""},
		{"VM ended before booting", base, nil, ok(&results.Result{Status: results.StatusInfra, Outcome: string(runner.OutcomeExited), Reason: "QEMU exited"}), results.VerdictNoBoot, "QEMU exited"},
		{"VM ended after booting", base, nil, ok(&results.Result{Status: results.StatusInfra, Outcome: string(runner.OutcomeExited), BootSeconds: 2.5, Reason: "QEMU killed by signal 9"}), results.VerdictInfra, "signal 9"},
	} {
		st := JudgeStep(c.base, c.err, c.runs)
		if st.Verdict != c.verdict || !strings.Contains(st.Message, c.message) {
			t.Errorf("%s: %s %q, want %s %q", c.name, st.Verdict, st.Message, c.verdict, c.message)
		}
	}
}

// TestJudgeStepSameCrashInTwoRuns: a crash two suites of one step show is
// listed once, from the first run (its run, lines and status), with the
// second run in AlsoIn and the second run's title among its alternative
// ones; different crashes stay apart, and merging keeps a crash the base
// shows pre-existing.
func TestJudgeStepSameCrashInTwoRuns(t *testing.T) {
	lockdep := results.Crash{Title: "possible deadlock in seedfs_lookup", AltTitles: append(make([]string, 0, 4), "possible deadlock in walk_component"), Type: "LOCKDEP", StartLine: 120, EndLine: 160}
	// The same bug in the second suite's console: its own lines, and its
	// title is another of the bug's (triage.SameCrash: lockdep's title is
	// among its alternative ones).
	lockdep2 := results.Crash{Title: "possible deadlock in seedfs_find", AltTitles: []string{lockdep.Title}, Type: "LOCKDEP", StartLine: 300, EndLine: 341}
	merged := []string{"possible deadlock in walk_component", lockdep2.Title}
	oops := results.Crash{Title: "BUG: unable to handle kernel NULL pointer dereference in ll_lookup_it_finish", StartLine: 80, EndLine: 110}
	// oopsAlias names lockdep2's title, not lockdep's.
	oopsAlias := results.Crash{Title: oops.Title, AltTitles: []string{lockdep2.Title}, StartLine: 80, EndLine: 110}
	// A corrupted report is known by its title only: it could not carry
	// lockdep2's other names.
	corrupted := results.Crash{Title: lockdep.Title, Corrupted: true, StartLine: 120, EndLine: 130}
	two := func(a, b results.Crash) []SuiteRun {
		return []SuiteRun{{Suite: "s1", Dir: "/out/patch-02/s1", Result: crashed(a)}, {Suite: "s2", Dir: "/out/patch-02/s2", Result: crashed(b)}}
	}
	type entry struct {
		title      string
		alts       []string
		status     results.CrashStatus
		run        string
		start, end int
		alsoIn     []string
	}
	entries := func(st *results.Step) []entry {
		var out []entry
		for _, c := range st.Crashes {
			out = append(out, entry{c.Title, c.AltTitles, c.Status, c.Run, c.StartLine, c.EndLine, c.AlsoIn})
		}
		return out
	}
	pass := &results.Step{Verdict: results.VerdictPass, Crashes: []results.SeriesCrash{}}
	baseLockdep := &results.Step{Verdict: results.VerdictCrash, Crashes: []results.SeriesCrash{{Crash: results.Crash{Title: lockdep.Title}, Status: results.CrashNew, Run: "/out/base/s1"}}}
	for _, c := range []struct {
		name    string
		base    *results.Step
		runs    []SuiteRun
		verdict results.Verdict
		want    []entry
	}{
		{"same crash in both runs", pass, two(lockdep, lockdep2), results.VerdictCrash, []entry{
			{lockdep.Title, merged, results.CrashNew, "/out/patch-02/s1", 120, 160, []string{"/out/patch-02/s2"}}}},
		{"different crashes", pass, two(lockdep, oops), results.VerdictCrash, []entry{
			{lockdep.Title, lockdep.AltTitles, results.CrashNew, "/out/patch-02/s1", 120, 160, nil},
			{oops.Title, nil, results.CrashNew, "/out/patch-02/s2", 80, 110, nil}}},
		{"the base's crash in both runs stays pre-existing", baseLockdep, two(lockdep, lockdep2), results.VerdictPass, []entry{
			{lockdep.Title, merged, results.CrashPreExisting, "/out/patch-02/s1", 120, 160, []string{"/out/patch-02/s2"}}}},
		{"on the base itself", nil, two(lockdep, lockdep2), results.VerdictCrash, []entry{
			{lockdep.Title, merged, results.CrashNew, "/out/patch-02/s1", 120, 160, []string{"/out/patch-02/s2"}}}},
		// lockdep2 is on the base through lockdep's title; oopsAlias only
		// meets lockdep2: it is new and stays listed as new.
		{"a new crash is not folded into a pre-existing one", baseLockdep, two(lockdep2, oopsAlias), results.VerdictCrash, []entry{
			{lockdep2.Title, lockdep2.AltTitles, results.CrashPreExisting, "/out/patch-02/s1", 300, 341, nil},
			{oopsAlias.Title, oopsAlias.AltTitles, results.CrashNew, "/out/patch-02/s2", 80, 110, nil}}},
		{"a sound crash is not folded into a corrupted one", pass, two(corrupted, lockdep2), results.VerdictCrash, []entry{
			{corrupted.Title, nil, results.CrashNew, "/out/patch-02/s1", 120, 130, nil},
			{lockdep2.Title, lockdep2.AltTitles, results.CrashNew, "/out/patch-02/s2", 300, 341, nil}}},
	} {
		st := JudgeStep(c.base, nil, c.runs)
		if st.Verdict != c.verdict {
			t.Errorf("%s: verdict %s (%s), want %s", c.name, st.Verdict, st.Message, c.verdict)
		}
		if got := entries(st); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: crashes\n%+v\nwant\n%+v", c.name, got, c.want)
		}
		if !reflect.DeepEqual(st.Runs, []string{"/out/patch-02/s1", "/out/patch-02/s2"}) {
			t.Errorf("%s: runs %q", c.name, st.Runs)
		}
	}
	// The run's own crash, which shares lockdep's alternative titles, is
	// not written through.
	if all := lockdep.AltTitles[:cap(lockdep.AltTitles)]; all[1] != "" {
		t.Errorf("merging wrote into the run's crash: alternative titles %q", all)
	}

	// A base that shows the bug under two titles, one per suite: a patch
	// crash known only by the second run's title is still pre-existing.
	base := JudgeStep(nil, nil, []SuiteRun{{Suite: "s1", Dir: "/out/base/s1", Result: crashed(results.Crash{Title: lockdep.Title})},
		{Suite: "s2", Dir: "/out/base/s2", Result: crashed(results.Crash{Title: lockdep2.Title, AltTitles: []string{lockdep.Title}})}})
	if len(base.Crashes) != 1 {
		t.Fatalf("base: %d crashes, want the one merged", len(base.Crashes))
	}
	st := JudgeStep(base, nil, []SuiteRun{{Suite: "s2", Dir: "/out/patch-01/s2", Result: crashed(results.Crash{Title: lockdep2.Title})}})
	if st.Verdict != results.VerdictPass || len(st.Crashes) != 1 || st.Crashes[0].Status != results.CrashPreExisting {
		t.Errorf("patch: %s %+v; want pass, the crash pre-existing", st.Verdict, st.Crashes)
	}
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

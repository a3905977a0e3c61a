package job

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kregress/kregress/bisect"
	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/suites"
)

// bisectFake builds prefix k as a file holding k and crashes runs of a
// prefix >= culprit with probability rate (the title "BUG: planted"); a
// prefix in other crashes with an unrelated title; noBuild prefixes fail
// to compile.
type bisectFake struct {
	dir     string
	culprit int
	rate    float64
	other   map[int]bool
	noBuild map[int]bool
	mu      sync.Mutex
	rng     *rand.Rand
	built   []int
	// crashAt, when set, replaces rate: a step at or after the culprit
	// crashes on exactly these of its runs (counted from 0 per step).
	crashAt map[int]bool
	runsOf  map[int]int
}

func (f *bisectFake) CheckApply(context.Context, build.Request) error { return nil }

func (f *bisectFake) Build(_ context.Context, req build.Request) (*build.Result, error) {
	k := len(req.Patches)
	f.built = append(f.built, k)
	if f.noBuild[k] {
		return nil, &build.CompileError{Err: fmt.Errorf("make: exit status 2")}
	}
	p := filepath.Join(f.dir, fmt.Sprintf("bzImage-%d", k))
	os.WriteFile(p, []byte(strconv.Itoa(k)), 0o644)
	return &build.Result{BzImage: p, Vmlinux: p + ".nope"}, nil
}

func (f *bisectFake) Run(_ context.Context, spec Spec) (*results.Result, string, error) {
	data, _ := os.ReadFile(spec.Kernel)
	k, _ := strconv.Atoi(string(data))
	f.mu.Lock()
	roll := f.rng.Float64()
	if f.crashAt != nil {
		if f.runsOf == nil {
			f.runsOf = map[int]int{}
		}
		roll = 1
		if f.crashAt[f.runsOf[k]] {
			roll = 0
		}
		f.runsOf[k]++
	}
	f.mu.Unlock()
	switch {
	case f.other[k]:
		return crashed(results.Crash{Title: "WARNING in unrelated_function"}), "", nil
	case k >= f.culprit && roll < f.rate:
		return crashed(results.Crash{Title: "BUG: planted in seedfs_find", AltTitles: []string{"BUG: planted"}}), "", nil
	}
	return fakeRun(results.StatusPass, "t1", results.StatusPass), "", nil
}

func bisectSeries(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	for i := 1; i <= n; i++ {
		body := fmt.Sprintf("From: Dev <dev@example.org>\nSubject: [PATCH %d/%d] change %d\n\n---\ndiff --git a/f%d b/f%d\nnew file mode 100644\n--- /dev/null\n+++ b/f%d\n@@ -0,0 +1 @@\n+x\n", i, n, i, i, i, i)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%04d-change.patch", i)), []byte(body), 0o644)
	}
	return dir
}

func TestBisectSeriesFake(t *testing.T) {
	suite := &suites.Suite{Name: "fake", File: "builtin:fake"}
	for _, tc := range []struct {
		name          string
		n, culprit    int
		rate          float64
		other         map[int]bool
		noBuild       map[int]bool
		crashAt       map[int]bool
		runs          int
		want          string // culprit index, "" for inconclusive
		wantCrash     string
		wantReliable  bool
		wantCandidate string
	}{
		{name: "deterministic", n: 7, culprit: 5, rate: 1, runs: 2, want: "5", wantCrash: "BUG: planted in seedfs_find", wantReliable: true},
		{name: "unrelated crash on a step", n: 7, culprit: 6, rate: 1, runs: 4, other: map[int]bool{3: true}, want: "6", wantReliable: true},
		{name: "no-build step skipped", n: 8, culprit: 6, rate: 1, runs: 2, noBuild: map[int]bool{4: true}, want: "6", wantReliable: true},
		{name: "culprit does not build", n: 4, culprit: 3, rate: 1, runs: 2, noBuild: map[int]bool{3: true}, want: "", wantCandidate: "patch 3/4"},
		{name: "flaky", n: 6, culprit: 4, rate: 0.5, runs: 10, want: "4"},
		{name: "rare flaky", n: 6, culprit: 4, rate: 1, crashAt: map[int]bool{5: true, 12: true, 15: true, 19: true}, runs: 10, want: "4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &bisectFake{dir: t.TempDir(), culprit: tc.culprit, rate: tc.rate, other: tc.other, noBuild: tc.noBuild, rng: rand.New(rand.NewSource(3)), crashAt: tc.crashAt}
			res, dir, err := Bisect(context.Background(), BisectSpec{
				Build:  build.Request{Source: "/nonexistent/linux", Series: bisectSeries(t, tc.n)},
				Suites: []*suites.Suite{suite}, Runs: tc.runs, Jobs: 2, Out: t.TempDir(), Executor: f,
			})
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if res.Culprit != nil {
				got = res.Culprit.ID
			}
			if got != tc.want {
				t.Fatalf("culprit %q, want %q (%s; steps %+v)", got, tc.want, res.Reason, res.Steps)
			}
			if tc.want != "" {
				if res.Status != results.StatusPass || res.Culprit.Subject != "change "+tc.want || res.Culprit.Author != "Dev <dev@example.org>" {
					t.Errorf("status %s culprit %+v", res.Status, res.Culprit)
				}
				if !strings.Contains(res.Culprit.Reproduce, "bzImage") {
					t.Errorf("reproduce %q", res.Culprit.Reproduce)
				}
			} else if res.Status != results.StatusFail || !strings.Contains(strings.Join(res.Candidates, "|"), tc.wantCandidate) {
				t.Errorf("inconclusive: status %s candidates %v", res.Status, res.Candidates)
			}
			if tc.wantCrash != "" && res.Crash != tc.wantCrash {
				t.Errorf("bisected crash %q, want %q", res.Crash, tc.wantCrash)
			}
			if tc.wantReliable && (!res.Reliable || res.Confidence != 1) {
				t.Errorf("reliable %v confidence %v", res.Reliable, res.Confidence)
			}
			for _, st := range res.Steps {
				if tc.other[mustAtoi(st.ID)] && st.Verdict == "bad" {
					t.Errorf("a step with only an unrelated crash was judged bad: %+v", st)
				}
			}
			// One record per step, even for a step that got more runs
			// once the crash was seen to be flaky; the counts add up.
			ids, sum := map[string]bool{}, 0
			for _, st := range res.Steps {
				if ids[st.ID] {
					t.Errorf("step %s recorded twice: %+v", st.ID, res.Steps)
				}
				ids[st.ID] = true
				sum += st.Bad + st.Good + st.Other + st.Infra
			}
			if sum != res.Runs {
				t.Errorf("steps count %d runs, the result %d", sum, res.Runs)
			}
			if tc.crashAt != nil {
				// Once in the bad end's first ten runs: ten more, four in
				// twenty, bad; every later step runs twenty times; one
				// build per step.
				if st := res.Steps[0]; st.Bad != 4 || st.Good != 16 || st.Verdict != "bad" {
					t.Errorf("bad end: %+v, want bad on 4 of 20 runs", st)
				}
				if len(f.built) != len(res.Steps) || res.Builds != len(res.Steps) {
					t.Errorf("builds %v (result %d) for %d steps", f.built, res.Builds, len(res.Steps))
				}
				for _, st := range res.Steps {
					if n := st.Bad + st.Good + st.Other + st.Infra; n != 20 {
						t.Errorf("step %s: %d runs, want 20", st.ID, n)
					}
				}
				if want := 1 - math.Pow(0.8, 20); res.CrashRate != 0.2 || res.Confidence < want*want*want-1e-9 || !res.Reliable {
					t.Errorf("rate %v confidence %v reliable %v", res.CrashRate, res.Confidence, res.Reliable)
				}
			}
			if strings.Contains(tc.name, "flaky") && (!res.Flaky || res.Confidence <= 0 || res.Confidence >= 1 || res.CrashRate >= 1) {
				t.Errorf("flaky: flaky %v rate %v confidence %v", res.Flaky, res.CrashRate, res.Confidence)
			}
			var onDisk results.BisectResult
			data, err := os.ReadFile(filepath.Join(dir, "result.json"))
			if err != nil || json.Unmarshal(data, &onDisk) != nil || onDisk.Status != res.Status {
				t.Errorf("result.json: %v %s", err, data)
			}
		})
	}
}

func TestBisectBadInput(t *testing.T) {
	suite := &suites.Suite{Name: "fake"}
	out := t.TempDir()
	for name, spec := range map[string]BisectSpec{
		"good without bad":   {Build: build.Request{Source: t.TempDir()}, Good: "v1"},
		"range and series":   {Build: build.Request{Source: t.TempDir(), Series: "x.mbox"}, Good: "a", Bad: "b"},
		"range in a non-git": {Build: build.Request{Source: t.TempDir()}, Good: "a", Bad: "b"},
		"nothing to bisect":  {Build: build.Request{Source: t.TempDir()}},
	} {
		spec.Suites, spec.Out, spec.Executor = []*suites.Suite{suite}, out, &bisectFake{}
		if _, _, err := Bisect(context.Background(), spec); build.Classify(err) != build.ClassBadInput {
			t.Errorf("%s: err %v, want bad input", name, err)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("bad input left %d entries under out/", len(entries))
	}
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestBisectSeedSeries bisects examples/seed-series for real: the
// kernels of its prefixes (cached by TestSeriesDemo's builds), two runs
// a step; patch 3 is the culprit, found within the build bound, with its
// image differing from its parent's.
func TestBisectSeedSeries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and boots kernels: not in -short mode")
	}
	if _, err := os.Stat(linuxSource); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing: install Debian's linux-source-6.1 (make setup)", linuxSource)
		}
		t.Skipf("%s missing: install Debian's linux-source-6.1 (make setup)", linuxSource)
	}
	root, _ := filepath.Abs("..")
	suite, err := suites.Load(filepath.Join(root, "examples", "seedfs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, dir, err := Bisect(context.Background(), BisectSpec{
		Build: build.Request{
			Source: linuxSource, Series: filepath.Join(root, "examples", "seed-series"),
			Configs: DemoConfigs(root),
		},
		Suites: []*suites.Suite{suite}, Runs: 2, Jobs: 2, Out: t.TempDir(),
		Run:      Spec{BootTimeout: 5 * time.Minute},
		Progress: func(f string, a ...any) { t.Logf(f, a...) },
	})
	if err != nil {
		t.Fatal(err)
	}
	checkSeedBisect(t, res, dir, bisect.BuildBound(4, true), func(c *results.Culprit) bool {
		return c.Index == 3 && strings.Contains(c.Subject, "return from the lookup loop")
	})
}

// sharedFolderFake builds every prefix into one folder, as the build cache
// does for the patches of a series (and for the commits of a range): the
// image of prefix k is /bin/false from the culprit on, /bin/true before,
// copied over the same vmlinux path; runs crash from the culprit on.
type sharedFolderFake struct {
	bisectFake
	same bool // the culprit does not change the image
}

func (f *sharedFolderFake) Build(ctx context.Context, req build.Request) (*build.Result, error) {
	r, err := f.bisectFake.Build(ctx, req)
	if err != nil {
		return nil, err
	}
	img := "/bin/true"
	if len(req.Patches) >= f.culprit && !f.same {
		img = "/bin/false"
	}
	data, err := os.ReadFile(img)
	if err != nil {
		return nil, err
	}
	r.Vmlinux = filepath.Join(f.dir, "vmlinux")
	return r, os.WriteFile(r.Vmlinux, data, 0o644)
}

// TestBisectSignatureSharedFolder: the culprit's and its parent's image
// signatures are those of their own builds even when a later build
// rewrote the folder they were built in.
func TestBisectSignatureSharedFolder(t *testing.T) {
	for _, same := range []bool{false, true} {
		f := &sharedFolderFake{bisectFake: bisectFake{dir: t.TempDir(), culprit: 3, rate: 1, rng: rand.New(rand.NewSource(1))}, same: same}
		res, _, err := Bisect(context.Background(), BisectSpec{
			Build:  build.Request{Source: "/nonexistent/linux", Series: bisectSeries(t, 4)},
			Suites: []*suites.Suite{{Name: "fake", File: "builtin:fake"}}, Runs: 2, Out: t.TempDir(), Executor: f,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Culprit == nil || res.Culprit.Index != 3 {
			t.Fatalf("culprit %+v, want patch 3 (builds %v)", res.Culprit, f.built)
		}
		if res.Culprit.Signature == "" || res.Culprit.ParentSignature == "" || res.Culprit.SameImage != same {
			t.Errorf("image changes %v: signature %q parent %q same %v (builds %v)", !same, res.Culprit.Signature, res.Culprit.ParentSignature, res.Culprit.SameImage, f.built)
		}
	}
}

// checkSeedBisect checks a bisection of the seed series' bug: the culprit
// (isCulprit), the lockdep crash in seedfs_find, within bound builds, an
// image that differs from the parent's, reliable.
func checkSeedBisect(t *testing.T, res *results.BisectResult, dir string, bound int, isCulprit func(*results.Culprit) bool) {
	t.Helper()
	var sum bytes.Buffer
	results.BisectSummary(&sum, res, dir)
	t.Logf("\n%s", sum.String())
	if res.Culprit == nil || !isCulprit(res.Culprit) {
		t.Fatalf("culprit %+v, not the seed series' patch 3", res.Culprit)
	}
	if !strings.Contains(res.Crash, "seedfs_find") {
		t.Errorf("bisected crash %q, want the lockdep report in seedfs_find", res.Crash)
	}
	if res.Builds > bound {
		t.Errorf("%d builds, bound %d", res.Builds, bound)
	}
	if res.Culprit.Signature == "" || res.Culprit.SameImage {
		t.Errorf("culprit image signature %q, same as parent %v", res.Culprit.Signature, res.Culprit.SameImage)
	}
	if !res.Reliable || res.Status != results.StatusPass {
		t.Errorf("status %s reliable %v confidence %v", res.Status, res.Reliable, res.Confidence)
	}
}

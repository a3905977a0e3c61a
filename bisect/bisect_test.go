package bisect

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name  string
		c     Counts
		n     int
		flaky bool
		want  Verdict
		infra bool
	}{
		{"all crash", Counts{Runs: 10, Bad: 10}, 10, false, Bad, false},
		{"all clean", Counts{Runs: 10, Good: 10}, 10, false, Good, false},
		{"one crash of ten is not enough", Counts{Runs: 10, Bad: 1, Good: 9}, 10, false, Skip, false},
		{"two crashes of ten are bad", Counts{Runs: 10, Bad: 2, Good: 8}, 10, false, Bad, false},
		{"twenty runs need three", Counts{Runs: 20, Bad: 2, Good: 18}, 20, true, Skip, false},
		{"twenty runs, three crashes", Counts{Runs: 20, Bad: 3, Good: 17}, 20, true, Bad, false},
		{"half judged is enough for good", Counts{Runs: 10, Good: 5, Other: 5}, 10, false, Good, false},
		{"fewer than half judged", Counts{Runs: 10, Good: 4, Other: 6}, 10, false, Skip, false},
		{"flaky wants three quarters clean", Counts{Runs: 20, Good: 14, Other: 6}, 20, true, Skip, false},
		{"flaky, fifteen of twenty clean", Counts{Runs: 20, Good: 15, Other: 5}, 20, true, Good, false},
		{"unrelated crashes never make it bad", Counts{Runs: 10, Other: 10}, 10, false, Skip, false},
		{"infra under half", Counts{Runs: 10, Good: 6, Infra: 4}, 10, false, Good, false},
		{"infra over half aborts", Counts{Runs: 10, Good: 4, Infra: 6}, 10, false, Skip, true},
		{"one run, one crash", Counts{Runs: 1, Bad: 1}, 1, false, Bad, false},
		{"one run, clean", Counts{Runs: 1, Good: 1}, 1, false, Good, false},
		{"a crash among clean runs is never good", Counts{Runs: 10, Good: 9, Bad: 1}, 10, true, Skip, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Decide(tc.c, tc.n, tc.flaky)
			if tc.infra != errors.Is(err, ErrInfra) {
				t.Fatalf("Decide(%+v, %d, %v) error %v, want infra=%v", tc.c, tc.n, tc.flaky, err, tc.infra)
			}
			if v != tc.want {
				t.Errorf("Decide(%+v, %d, %v) = %s, want %s", tc.c, tc.n, tc.flaky, v, tc.want)
			}
		})
	}
}

func TestConfidence(t *testing.T) {
	var c Confidence
	if c.Value() != 1 {
		t.Fatalf("empty confidence %v, want 1", c.Value())
	}
	c.ObserveBad(Counts{Bad: 10})
	c.ObserveGood(Counts{Good: 10})
	if c.Value() != 1 {
		t.Errorf("deterministic crash, ten clean runs: %v, want 1", c.Value())
	}
	c.ObserveBad(Counts{Bad: 3, Good: 7}) // lowers p to 0.3
	c.ObserveBad(Counts{Bad: 9, Good: 1}) // never raises it again
	if c.Rate() != 0.3 {
		t.Fatalf("rate %v, want 0.3", c.Rate())
	}
	c.ObserveGood(Counts{Good: 20})
	want := (1 - math.Pow(0.7, 10)) * (1 - math.Pow(0.7, 20))
	if math.Abs(c.Value()-want) > 1e-12 {
		t.Errorf("confidence %v, want %v", c.Value(), want)
	}
	var low Confidence
	low.ObserveBad(Counts{Bad: 1, Good: 9})
	low.ObserveGood(Counts{Good: 5})
	low.ObserveGood(Counts{Good: 5})
	if v := low.Value(); v >= Unreliable {
		t.Errorf("p=0.1 with two 5-run good steps: confidence %v, want below %v", v, Unreliable)
	}
}

// planted is a fake build-and-run: steps at or after culprit crash with
// probability rate, skip lists steps that do not build.
type planted struct {
	culprit int
	rate    float64
	skip    map[int]bool
	other   map[int]bool // steps where an unrelated crash shows in every run
	rng     *rand.Rand
	tested  []int
}

func (p *planted) Test(_ context.Context, id string, n int) (Counts, string, error) {
	k, _ := strconv.Atoi(id)
	p.tested = append(p.tested, k)
	if p.skip[k] {
		return Counts{}, "does not build", nil
	}
	var c Counts
	for i := 0; i < n; i++ {
		switch {
		case p.other[k]:
			c.Add(Other)
		case k >= p.culprit && p.rng.Float64() < p.rate:
			c.Add(Crash)
		default:
			c.Add(Clean)
		}
	}
	return c, "", nil
}

func TestPrefixesFindsCulprit(t *testing.T) {
	for n := 1; n <= 17; n++ {
		for culprit := 1; culprit <= n; culprit++ {
			p := &planted{culprit: culprit, rate: 1, rng: rand.New(rand.NewSource(1))}
			r, err := Prefixes(context.Background(), n, p, Options{Runs: 1})
			if err != nil {
				t.Fatalf("n=%d culprit=%d: %v", n, culprit, err)
			}
			if r.Culprit != fmt.Sprint(culprit) {
				t.Fatalf("n=%d culprit=%d: got %q (steps %v)", n, culprit, r.Culprit, p.tested)
			}
			if bound := BuildBound(n, false); r.Builds > bound {
				t.Errorf("n=%d culprit=%d: %d builds, bound %d", n, culprit, r.Builds, bound)
			}
			if !r.Reliable || r.Confidence != 1 {
				t.Errorf("n=%d culprit=%d: deterministic crash: confidence %v reliable %v", n, culprit, r.Confidence, r.Reliable)
			}
		}
	}
}

func TestPrefixesSkipsAndInconclusive(t *testing.T) {
	// Patch 4 does not build: a culprit at 6 is still found.
	p := &planted{culprit: 6, rate: 1, skip: map[int]bool{4: true}, rng: rand.New(rand.NewSource(1))}
	r, err := Prefixes(context.Background(), 8, p, Options{Runs: 1})
	if err != nil || r.Culprit != "6" {
		t.Fatalf("culprit 6 around a skip: %+v, %v", r, err)
	}
	if r.Builds > BuildBound(8, false)+1 {
		t.Errorf("%d builds with one skip, bound %d plus one", r.Builds, BuildBound(8, false))
	}
	// The culprit itself cannot be built: the result lists it and the one
	// after it, and names no culprit.
	p = &planted{culprit: 3, rate: 1, skip: map[int]bool{3: true}, rng: rand.New(rand.NewSource(1))}
	r, err = Prefixes(context.Background(), 4, p, Options{Runs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Inconclusive() || strings.Join(r.Candidates, ",") != "3,4" || r.Reliable {
		t.Errorf("skipped culprit: culprit %q candidates %v reliable %v, want inconclusive 3,4", r.Culprit, r.Candidates, r.Reliable)
	}
	// An unrelated crash on a step makes it skip, not bad.
	p = &planted{culprit: 4, rate: 1, other: map[int]bool{2: true}, rng: rand.New(rand.NewSource(1))}
	r, err = Prefixes(context.Background(), 4, p, Options{Runs: 10})
	if err != nil || r.Culprit != "4" {
		t.Fatalf("unrelated crash at 2, culprit 4: %+v, %v", r, err)
	}
	for _, st := range r.Steps {
		if st.ID == "2" && st.Verdict != Skip {
			t.Errorf("step with only unrelated crashes: %s, want skip", st.Verdict)
		}
	}
}

func TestPrefixesEndpoints(t *testing.T) {
	p := &planted{culprit: 99, rate: 1, rng: rand.New(rand.NewSource(1))}
	if _, err := Prefixes(context.Background(), 4, p, Options{Runs: 1}); !errors.Is(err, ErrEndpoint) {
		t.Errorf("no crash at the tip: err %v, want ErrEndpoint", err)
	}
	p = &planted{culprit: 0, rate: 1, rng: rand.New(rand.NewSource(1))}
	if _, err := Prefixes(context.Background(), 4, p, Options{Runs: 1, VerifyGood: true}); !errors.Is(err, ErrEndpoint) {
		t.Errorf("crash on the base: err %v, want ErrEndpoint", err)
	}
}

// A bug that crashes in about 30 % of runs is still found, the run count
// goes up to FlakyRuns once it is seen to be flaky, and the result carries
// a confidence figure.
func TestPrefixesFlaky(t *testing.T) {
	found := 0
	const trials = 50
	for seed := int64(0); seed < trials; seed++ {
		p := &planted{culprit: 5, rate: 0.3, rng: rand.New(rand.NewSource(seed))}
		r, err := Prefixes(context.Background(), 8, p, Options{})
		if err != nil {
			if errors.Is(err, ErrEndpoint) {
				continue // the tip's twenty runs crashed fewer than three times
			}
			t.Fatal(err)
		}
		if !r.Flaky || r.CrashRate <= 0 || r.CrashRate >= 1 {
			t.Fatalf("seed %d: flaky %v rate %v", seed, r.Flaky, r.CrashRate)
		}
		if r.Culprit == "5" {
			found++
		}
		for i, st := range r.Steps {
			if i > 0 && st.Counts.Runs != FlakyRuns {
				t.Fatalf("seed %d: step %s ran %d times after the crash was seen flaky, want %d", seed, st.ID, st.Counts.Runs, FlakyRuns)
			}
		}
		if r.Culprit == "5" && r.Confidence < 0.9 {
			t.Errorf("seed %d: culprit found with confidence %v", seed, r.Confidence)
		}
	}
	if found < trials*9/10 {
		t.Errorf("flaky culprit found in %d of %d trials", found, trials)
	}
}

// scripted is a fake tester whose answers are given per call: calls[id]
// holds the counts of the first, second, ... call for that step.
type scripted struct {
	calls map[string][]Counts
	asked []string // "id:n" per call
}

func (s *scripted) Test(_ context.Context, id string, n int) (Counts, string, error) {
	s.asked = append(s.asked, fmt.Sprintf("%s:%d", id, n))
	k := 0
	for _, a := range s.asked[:len(s.asked)-1] {
		if strings.HasPrefix(a, id+":") {
			k++
		}
	}
	if k >= len(s.calls[id]) {
		return Counts{}, "", fmt.Errorf("step %s called %d times", id, k+1)
	}
	c := s.calls[id][k]
	if c.Runs != n {
		return Counts{}, "", fmt.Errorf("step %s call %d: asked %d runs, script has %d", id, k+1, n, c.Runs)
	}
	return c, "", nil
}

// A step whose ten runs show the crash once is not skipped on the spot:
// the crash is flaky, so the step gets ten more runs and is judged on all
// twenty, and every later step runs twenty times.
func TestFlakyStepTopUp(t *testing.T) {
	s := &scripted{calls: map[string][]Counts{
		"2": {{Runs: 10, Bad: 1, Good: 9}, {Runs: 10, Bad: 3, Good: 7}},
		"1": {{Runs: 20, Good: 20}},
	}}
	r, err := Prefixes(context.Background(), 2, s, Options{})
	if err != nil {
		t.Fatalf("%v (calls %v)", err, s.asked)
	}
	if got := strings.Join(s.asked, " "); got != "2:10 2:10 1:20" {
		t.Errorf("calls %s, want 2:10 2:10 1:20", got)
	}
	if r.Culprit != "2" || !r.Flaky || r.Builds != 2 || r.Runs != 40 {
		t.Errorf("culprit %q flaky %v builds %d runs %d, want 2, flaky, 2 builds, 40 runs", r.Culprit, r.Flaky, r.Builds, r.Runs)
	}
	if st := r.Steps[0]; st.Verdict != Bad || st.Counts != (Counts{Runs: 20, Bad: 4, Good: 16}) {
		t.Errorf("bad end: %s %+v, want bad on 4 of 20", st.Verdict, st.Counts)
	}
	if r.CrashRate != 0.2 {
		t.Errorf("crash rate %v, want 0.2", r.CrashRate)
	}
	if want := 1 - math.Pow(0.8, 20); math.Abs(r.Confidence-want) > 1e-12 {
		t.Errorf("confidence %v, want %v", r.Confidence, want)
	}

	// Still too rare after twenty runs: the bad end does not reproduce
	// the crash; no confidence is claimed and the rate seen is given.
	s = &scripted{calls: map[string][]Counts{"2": {{Runs: 10, Bad: 1, Good: 9}, {Runs: 10, Good: 10}}}}
	r, err = Prefixes(context.Background(), 2, s, Options{})
	if !errors.Is(err, ErrEndpoint) {
		t.Fatalf("err %v, want ErrEndpoint", err)
	}
	if r.Confidence != 0 || r.CrashRate != 0.05 || r.Reliable || r.Steps[0].Counts.Runs != 20 {
		t.Errorf("confidence %v rate %v reliable %v runs %d, want 0, 0.05, unreliable, 20", r.Confidence, r.CrashRate, r.Reliable, r.Steps[0].Counts.Runs)
	}
}

// gitRepo makes a repository with n commits on top of a root commit; the
// file "bug" holds "1" from commit culprit on.
func gitRepo(t *testing.T, n, culprit int) (dir string, hashes []string) {
	t.Helper()
	dir = t.TempDir()
	run := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(cmd.Environ(), "GIT_AUTHOR_NAME=Ann Author", "GIT_AUTHOR_EMAIL=ann@example.org",
			"GIT_COMMITTER_NAME=c", "GIT_COMMITTER_EMAIL=c@example.org")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("init", "-q", "-b", "main")
	for i := 0; i <= n; i++ {
		bug := "0"
		if i >= culprit && i > 0 {
			bug = "1"
		}
		writeFile(t, filepath.Join(dir, "bug"), bug)
		writeFile(t, filepath.Join(dir, "n"), fmt.Sprint(i))
		run("add", "bug", "n")
		run("commit", "-q", "-m", fmt.Sprintf("change %d", i))
		hashes = append(hashes, run("rev-parse", "HEAD"))
	}
	return dir, hashes
}

func TestGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed: install Debian's git")
	}
	dir, hashes := gitRepo(t, 12, 7)
	byHash := map[string]int{}
	for i, h := range hashes {
		byHash[h] = i
	}
	fake := func(skip map[int]bool) TesterFunc {
		return func(_ context.Context, id string, n int) (Counts, string, error) {
			k, ok := byHash[id]
			if !ok {
				return Counts{}, "", fmt.Errorf("unknown commit %s", id)
			}
			if skip[k] {
				return Counts{}, "does not build", nil
			}
			var c Counts
			for i := 0; i < n; i++ {
				if k >= 7 {
					c.Add(Crash)
				} else {
					c.Add(Clean)
				}
			}
			return c, "", nil
		}
	}
	r, err := Git(context.Background(), dir, hashes[0], "main", t.TempDir(), fake(nil), Options{Runs: 2, VerifyGood: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Culprit != hashes[7] || r.Subject != "change 7" || r.Author != "Ann Author <ann@example.org>" {
		t.Fatalf("culprit %s %q %q, want %s change 7", r.Culprit, r.Subject, r.Author, hashes[7])
	}
	if bound := BuildBound(12, true); r.Builds > bound {
		t.Errorf("%d builds over 12 commits, bound %d", r.Builds, bound)
	}
	if !strings.Contains(r.Log, "# first bad commit") {
		t.Errorf("bisect log lacks the first bad commit:\n%s", r.Log)
	}
	// Skipped commits around the culprit: git says only skipped are left.
	r, err = Git(context.Background(), dir, hashes[0], hashes[12], t.TempDir(), fake(map[int]bool{6: true, 7: true}), Options{Runs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Inconclusive() || len(r.Candidates) < 2 {
		t.Fatalf("culprit %q candidates %v, want an inconclusive result", r.Culprit, r.Candidates)
	}
	var got []int
	for _, c := range r.Candidates {
		got = append(got, byHash[c])
	}
	if !containsAll(got, 7, 8) {
		t.Errorf("candidates %v should include commits 7 and 8", got)
	}
	if out, _ := exec.Command("git", "-C", dir, "worktree", "list").Output(); strings.Count(string(out), "\n") != 1 {
		t.Errorf("the user's repository got worktrees:\n%s", out)
	}
	if _, err := Git(context.Background(), dir, hashes[12], hashes[0], t.TempDir(), fake(nil), Options{}); err == nil {
		t.Error("a reversed range was accepted")
	}
	if _, err := Git(context.Background(), dir, "nosuchref", "main", t.TempDir(), fake(nil), Options{}); err == nil || !strings.Contains(err.Error(), "nosuchref") {
		t.Errorf("a bad ref: %v", err)
	}
}

func containsAll(have []int, want ...int) bool {
	set := map[int]bool{}
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

package bisect

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// StepResult is one tested step of a search: which change, its run counts
// and the verdict drawn from them.
type StepResult struct {
	// ID names the step: a commit hash for a git range, the prefix length
	// ("3" = base plus patches 1-3) for a series.
	ID      string  `json:"id"`
	Verdict Verdict `json:"verdict"`
	Counts  Counts  `json:"counts"`
	// Reason says why a step was skipped (build failure, boot failure, too
	// few judged runs) and carries the titles of unrelated crashes.
	Reason string `json:"reason,omitempty"`
	// Built says the step needed a build (false when a result was reused).
	Built bool `json:"built"`
}

// Tester builds and runs one step. It returns the step's counts, or a
// skip reason when the step could not be built or booted (counts are then
// ignored). An error ends the search (cancelled, infrastructure).
type Tester interface {
	// Test runs the step with the given ID n times. It may be called a
	// second time for the same ID, to add n more runs to a step whose
	// runs showed the crash to be flaky: the tester then reuses the
	// step's build and returns the counts of the new runs only.
	Test(ctx context.Context, id string, n int) (c Counts, skipReason string, err error)
}

// TesterFunc adapts a function to Tester.
type TesterFunc func(ctx context.Context, id string, n int) (Counts, string, error)

// Test calls f.
func (f TesterFunc) Test(ctx context.Context, id string, n int) (Counts, string, error) {
	return f(ctx, id, n)
}

// Result is a finished search.
type Result struct {
	// Culprit is the first bad change; empty when the result is
	// inconclusive.
	Culprit string `json:"culprit,omitempty"`
	// Candidates are the changes the culprit could be when skipped steps
	// left more than one.
	Candidates []string     `json:"candidates,omitempty"`
	Steps      []StepResult `json:"steps"`
	Builds     int          `json:"builds"`
	Runs       int          `json:"runs"`
	Confidence float64      `json:"confidence"`
	CrashRate  float64      `json:"crash_rate"`
	Flaky      bool         `json:"flaky"`
	// Reliable is false when Confidence is below Unreliable.
	Reliable bool `json:"reliable"`
	// Subject and Author describe the culprit commit (git ranges).
	Subject string `json:"subject,omitempty"`
	Author  string `json:"author,omitempty"`
	// Log is git's bisect log (git ranges).
	Log string `json:"log,omitempty"`
}

// Inconclusive says whether the search could not name one culprit.
func (r *Result) Inconclusive() bool { return r.Culprit == "" }

// session carries the state that every search shares: run counts per
// step, flakiness, confidence and the log of steps.
type session struct {
	t     Tester
	runs  int // runs per step now
	flaky bool
	conf  Confidence
	res   Result
}

func newSession(t Tester, runs int) *session {
	if runs <= 0 {
		runs = DefaultRuns
	}
	return &session{t: t, runs: runs}
}

// test runs one step, raising the run count once the crash is seen to be
// flaky, and records the step.
func (s *session) test(ctx context.Context, id string) (Verdict, error) {
	n := s.runs
	c, skip, err := s.t.Test(ctx, id, n)
	if err != nil {
		return Skip, err
	}
	s.res.Builds++
	st := StepResult{ID: id, Counts: c, Built: true}
	if skip != "" {
		st.Verdict, st.Reason = Skip, skip
		s.res.Steps = append(s.res.Steps, st)
		return Skip, nil
	}
	s.res.Runs += c.Runs
	v, err := Decide(c, n, s.flaky)
	if err == nil && v == Skip && IsFlaky(c) && n < FlakyRuns {
		// The crash showed up, but too rarely for the step to be bad
		// (one crash in ten runs): it is flaky. Give the step the runs a
		// flaky crash gets and judge all of them.
		s.seenFlaky()
		more, skip, merr := s.t.Test(ctx, id, FlakyRuns-n)
		if merr != nil {
			return Skip, merr
		}
		if skip == "" {
			c = c.Plus(more)
			s.res.Runs += more.Runs
			n = FlakyRuns
			st.Counts = c
			v, err = Decide(c, n, true)
		}
	}
	if err != nil {
		st.Verdict, st.Reason = Skip, err.Error()
		s.res.Steps = append(s.res.Steps, st)
		return Skip, fmt.Errorf("step %s: %w", id, err)
	}
	st.Verdict = v
	switch v {
	case Bad:
		s.conf.ObserveBad(c)
		if IsFlaky(c) {
			s.seenFlaky()
		}
	case Good:
		s.conf.ObserveGood(c)
	case Skip:
		st.Reason = fmt.Sprintf("%d crashing, %d clean, %d other, %d infra of %d runs: neither good nor bad", c.Bad, c.Good, c.Other, c.Infra, n)
	}
	s.res.Steps = append(s.res.Steps, st)
	return v, nil
}

// seenFlaky records that the crash is flaky: every step from now on gets
// at least FlakyRuns runs, and good ones need more clean runs.
func (s *session) seenFlaky() {
	s.flaky = true
	s.runs = max(s.runs, FlakyRuns)
}

func (s *session) finish() *Result {
	s.res.Confidence = s.conf.Value()
	s.res.CrashRate = s.conf.Rate()
	if !s.conf.rated {
		// No step was bad (the bad end did not reproduce the crash):
		// there is no culprit to be confident in, and the crash rate is
		// the highest one seen.
		s.res.Confidence, s.res.CrashRate = 0, 0
		for _, st := range s.res.Steps {
			s.res.CrashRate = max(s.res.CrashRate, st.Counts.Rate())
		}
	}
	s.res.Flaky = s.flaky
	s.res.Reliable = !s.res.Inconclusive() && s.res.Confidence >= Unreliable
	return &s.res
}

// ErrEndpoint is returned (wrapped) when the bad end does not reproduce
// the crash or the good end does: there is nothing to bisect.
var ErrEndpoint = errors.New("the range's ends do not bracket the crash")

// Options tune a search.
type Options struct {
	// Runs per step before the crash is seen to be flaky (DefaultRuns
	// when 0).
	Runs int
	// VerifyGood tests the good end too (one more build); leave it off
	// when the good end was tested already (a series' base, last night's
	// run).
	VerifyGood bool
}

// Prefixes bisects a patch series: step k is the base plus patches 1..k;
// step 0 (the base) is good and step n (the whole series) bad. It returns
// the first bad prefix's index as Culprit ("3" = patch 3).
func Prefixes(ctx context.Context, n int, t Tester, opt Options) (*Result, error) {
	if n < 1 {
		return nil, fmt.Errorf("bisect: a series of %d patches has nothing to bisect", n)
	}
	ids := make([]string, n+1)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	return Linear(ctx, ids, t, opt)
}

// Linear bisects an ordered list of changes: ids[0] is the good end,
// ids[len-1] the bad end, and the culprit is the first bad one after the
// good end. Skipped steps are stepped around (the untested candidate
// nearest the middle is tried next); when only skipped ones are left, the
// result is inconclusive and lists them.
func Linear(ctx context.Context, ids []string, t Tester, opt Options) (*Result, error) {
	if len(ids) < 2 {
		return nil, fmt.Errorf("bisect: %d changes: need a good and a bad end", len(ids))
	}
	s := newSession(t, opt.Runs)
	last := len(ids) - 1
	v, err := s.test(ctx, ids[last])
	if err != nil {
		return s.finish(), err
	}
	if v != Bad {
		return s.finish(), fmt.Errorf("bad end %s is %s: %w", ids[last], v, ErrEndpoint)
	}
	if opt.VerifyGood {
		v, err := s.test(ctx, ids[0])
		if err != nil {
			return s.finish(), err
		}
		if v != Good {
			return s.finish(), fmt.Errorf("good end %s is %s: %w", ids[0], v, ErrEndpoint)
		}
	}
	lo, hi := 0, last // lo good, hi bad
	skipped := map[int]bool{}
	for hi-lo > 1 {
		if err := ctx.Err(); err != nil {
			return s.finish(), err
		}
		m := pick(lo, hi, skipped)
		if m < 0 {
			// Only skipped changes are left between the ends.
			for i := lo + 1; i <= hi; i++ {
				s.res.Candidates = append(s.res.Candidates, ids[i])
			}
			return s.finish(), nil
		}
		v, err := s.test(ctx, ids[m])
		if err != nil {
			return s.finish(), err
		}
		switch v {
		case Good:
			lo = m
		case Bad:
			hi = m
		default:
			skipped[m] = true
		}
	}
	s.res.Culprit = ids[hi]
	return s.finish(), nil
}

// pick returns the untested, unskipped index strictly between lo and hi
// nearest their middle (the lower one on a tie), or -1.
func pick(lo, hi int, skipped map[int]bool) int {
	var cand []int
	for i := lo + 1; i < hi; i++ {
		if !skipped[i] {
			cand = append(cand, i)
		}
	}
	if len(cand) == 0 {
		return -1
	}
	mid := (lo + hi) / 2
	sort.SliceStable(cand, func(a, b int) bool {
		da, db := abs(cand[a]-mid), abs(cand[b]-mid)
		if da != db {
			return da < db
		}
		return cand[a] < cand[b]
	})
	return cand[0]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Package bisect finds the change that introduced a crash: over a patch
// series' prefixes or a git range, it tests a step several times, decides
// good, bad or skip from the counts, and narrows the range until one change
// is left. The decisions are pure functions of run counts, so they are
// tested with fake builds and runs; the search drives git's own bisection in
// a private clone for a git range, and a binary search over the prefixes of
// a series.
//
// The decision rules (how many crashing runs make a step bad, how flakiness
// raises the run count, how confidence is computed) follow the ones
// syzkaller's pkg/bisect uses; see the repository's NOTICE.
package bisect

import (
	"errors"
	"fmt"
	"math"
)

// Verdict is what a step of the search is judged to be.
type Verdict string

// Step verdicts.
const (
	Good Verdict = "good" // the crash does not reproduce
	Bad  Verdict = "bad"  // the crash reproduces
	Skip Verdict = "skip" // cannot tell: build or boot failure, too few clean or crashing runs
)

// Outcome is what one run of the suite at a step showed.
type Outcome int

// Run outcomes.
const (
	Clean Outcome = iota // booted, ran, no crash (a failed test is not a crash)
	Crash                // the crash being bisected (any crash with AnyCrash)
	Other                // a crash, but not the one being bisected: recorded, counts neither way
	Infra                // the run could not be judged (VM or host trouble)
)

// String names an outcome as the bisect log prints it.
func (o Outcome) String() string {
	switch o {
	case Clean:
		return "clean"
	case Crash:
		return "crash"
	case Other:
		return "other-crash"
	case Infra:
		return "infra"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Counts are the outcomes of the runs of one step.
type Counts struct {
	Runs  int `json:"runs"`  // runs started
	Bad   int `json:"bad"`   // runs that showed the crash
	Good  int `json:"good"`  // clean runs
	Other int `json:"other"` // runs with an unrelated crash
	Infra int `json:"infra"` // runs that could not be judged
}

// Add counts one run's outcome.
func (c *Counts) Add(o Outcome) {
	c.Runs++
	switch o {
	case Clean:
		c.Good++
	case Crash:
		c.Bad++
	case Other:
		c.Other++
	case Infra:
		c.Infra++
	}
}

// Plus returns the sum of two steps' counts.
func (c Counts) Plus(o Counts) Counts {
	return Counts{Runs: c.Runs + o.Runs, Bad: c.Bad + o.Bad, Good: c.Good + o.Good, Other: c.Other + o.Other, Infra: c.Infra + o.Infra}
}

// Rate is the share of judged runs (good or bad) that crashed; 0 when
// none was judged.
func (c Counts) Rate() float64 {
	if c.Bad+c.Good == 0 {
		return 0
	}
	return float64(c.Bad) / float64(c.Bad+c.Good)
}

// Runs per step: DefaultRuns at first, FlakyRuns once the crash has been
// seen to be flaky (a step with both crashing and clean runs). A step
// whose DefaultRuns show the crash too rarely to be bad (once in ten) gets
// the runs it lacks to FlakyRuns and is judged on all of them.
const (
	DefaultRuns = 10
	FlakyRuns   = 20
)

// ErrInfra is returned (wrapped) by Decide when more than half of a step's
// runs failed for infrastructure reasons: the bisection cannot go on and
// must not guess.
var ErrInfra = errors.New("too many runs failed for infrastructure reasons")

// Decide judges a step from its counts. n is the number of runs the step
// was meant to have; flaky says the crash has already been seen to be
// flaky, which asks for more clean runs before a step is called good.
//
//   - bad when bad >= max(2, (n-infra)/6) and good+bad >= n/2 (with one
//     run, one crash is enough);
//   - good when bad == 0 and good >= n/2 (3n/4 once flaky);
//   - skip otherwise: an unrelated crash never makes a step bad, it only
//     leaves fewer runs to judge;
//   - an error wrapping ErrInfra when more than half the runs were infra.
func Decide(c Counts, n int, flaky bool) (Verdict, error) {
	if n <= 0 {
		n = c.Runs
	}
	if n <= 0 {
		return Skip, nil
	}
	if 2*c.Infra > n {
		return Skip, fmt.Errorf("%d of %d runs: %w", c.Infra, n, ErrInfra)
	}
	need := max(2, (n-c.Infra)/6)
	need = min(need, max(n-c.Infra, 1))
	if c.Bad >= need && 2*(c.Good+c.Bad) >= n {
		return Bad, nil
	}
	goodNeed := n // good >= n/2, in integers: 2*good >= n
	if flaky {
		goodNeed = 3 * n // good >= 3n/4: 4*good >= 3n
		if c.Bad == 0 && 4*c.Good >= goodNeed {
			return Good, nil
		}
		return Skip, nil
	}
	if c.Bad == 0 && 2*c.Good >= goodNeed {
		return Good, nil
	}
	return Skip, nil
}

// IsFlaky reports whether a bad step's counts show a flaky crash: some
// judged runs were clean.
func IsFlaky(c Counts) bool {
	return c.Bad > 0 && c.Good > 0
}

// Unreliable is the confidence below which a result is called unreliable.
const Unreliable = 0.66

// Confidence accumulates how sure a bisection is that its good steps are
// really good. The crash rate p is the lowest rate seen on a bad step
// (never raised once lowered); each good step with g clean runs would have
// missed a crash with probability (1-p)^g, so it contributes 1-(1-p)^g,
// and the confidence is the product over good steps. Its zero value is
// ready to use.
type Confidence struct {
	rate  float64
	rated bool
	goods []int
}

// ObserveBad records a bad step's counts, lowering the crash rate when
// this step crashed less often.
func (c *Confidence) ObserveBad(cnt Counts) {
	r := cnt.Rate()
	if r <= 0 {
		return
	}
	if !c.rated || r < c.rate {
		c.rate, c.rated = r, true
	}
}

// ObserveGood records a good step's clean runs.
func (c *Confidence) ObserveGood(cnt Counts) {
	c.goods = append(c.goods, cnt.Good)
}

// Rate is the crash rate used: the lowest seen on a bad step (1 before
// any was seen).
func (c *Confidence) Rate() float64 {
	if !c.rated {
		return 1
	}
	return c.rate
}

// Value is the confidence in [0, 1]; 1 when there were no good steps.
func (c *Confidence) Value() float64 {
	v := 1.0
	p := c.Rate()
	for _, g := range c.goods {
		v *= 1 - math.Pow(1-p, float64(g))
	}
	return v
}

// BuildBound is the most builds a bisection over n changes needs when no
// step is skipped: the bad end is verified, and each further build halves
// the candidates, ceil(log2(n+1)) in all; the good end, when it has not
// been tested before, adds one.
func BuildBound(n int, verifyGood bool) int {
	b := int(math.Ceil(math.Log2(float64(n+1)))) + 1
	if verifyGood {
		b++
	}
	return b
}

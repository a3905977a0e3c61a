package history

import (
	"sort"

	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/triage"
)

// Crash and test changes between two runs of the same job.
const (
	ChangeNew          = "new"           // a crash the previous run did not show
	ChangeStill        = "still"         // a crash both runs showed
	ChangeFixed        = "fixed"         // a crash (or failing test) the previous run showed and this one does not
	ChangeRegressed    = "regressed"     // a test that passed (or did not exist) and now fails
	ChangeStillFailing = "still failing" // a test that failed in both runs
	ChangeUnknown      = "unknown"       // this run could not tell (infrastructure failure)
)

// Snapshot is what one run of a job showed, the input of Compare.
type Snapshot struct {
	// Infra is set when the run failed for infrastructure reasons: what it
	// did not see, it cannot call fixed.
	Infra bool
	// Tests maps "suite/test" to a results status.
	Tests map[string]string
	// Crashes are the run's distinct crashes.
	Crashes []results.Crash
}

// CrashChange is one crash's fate between two runs.
type CrashChange struct {
	Change string `json:"change"`
	Title  string `json:"title"`
	// Prev and Cur are the crash as each run showed it (nil when absent).
	Prev *results.Crash `json:"prev,omitempty"`
	Cur  *results.Crash `json:"cur,omitempty"`
}

// TestChange is one test's fate between two runs.
type TestChange struct {
	Change string `json:"change"`
	Test   string `json:"test"`
	Prev   string `json:"prev,omitempty"` // status in the previous run, "" when absent
	Cur    string `json:"cur,omitempty"`
}

// Comparison is what changed between a job's previous run and this one.
type Comparison struct {
	Crashes []CrashChange `json:"crashes"`
	Tests   []TestChange  `json:"tests"`
}

// Count returns how many crash and test changes are of kind change.
func (c Comparison) Count(change string) int {
	n := 0
	for _, x := range c.Crashes {
		if x.Change == change {
			n++
		}
	}
	for _, x := range c.Tests {
		if x.Change == change {
			n++
		}
	}
	return n
}

// Compare says, for each crash, whether it is new, still there or fixed,
// and for each test whether it regressed, still fails or was fixed, going
// from prev to cur. Crashes are the same crash when triage.SameCrash says so. A
// nil prev (the job's first run) makes every crash new and every failing
// test regressed. When cur is an infrastructure failure, what prev showed
// and cur did not is unknown, not fixed. Passing tests that passed before
// are not listed.
func Compare(prev, cur *Snapshot) Comparison {
	if prev == nil {
		prev = &Snapshot{}
	}
	out := Comparison{Crashes: []CrashChange{}, Tests: []TestChange{}}
	matched := make([]bool, len(prev.Crashes))
	for i := range cur.Crashes {
		c := &cur.Crashes[i]
		ch := CrashChange{Change: ChangeNew, Title: c.Title, Cur: c}
		for j := range prev.Crashes {
			if triage.SameCrash(prev.Crashes[j].Identity(), c.Identity()) {
				ch.Change, ch.Prev = ChangeStill, &prev.Crashes[j]
				matched[j] = true
				break
			}
		}
		out.Crashes = append(out.Crashes, ch)
	}
	for j := range prev.Crashes {
		if matched[j] {
			continue
		}
		ch := CrashChange{Change: ChangeFixed, Title: prev.Crashes[j].Title, Prev: &prev.Crashes[j]}
		if cur.Infra {
			ch.Change = ChangeUnknown
		}
		out.Crashes = append(out.Crashes, ch)
	}
	names := map[string]bool{}
	for n := range prev.Tests {
		names[n] = true
	}
	for n := range cur.Tests {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		p, pok := prev.Tests[n]
		c, cok := cur.Tests[n]
		pf, cf := failing(p), failing(c)
		var change string
		switch {
		case cok && cf && pf:
			change = ChangeStillFailing
		case cok && cf:
			change = ChangeRegressed
		case pf && cok && c == string(results.StatusPass):
			change = ChangeFixed
		case pf && (cur.Infra || !cok || c == string(results.StatusSkip)):
			change = ChangeUnknown
		default:
			continue
		}
		tc := TestChange{Change: change, Test: n, Cur: c}
		if pok {
			tc.Prev = p
		}
		out.Tests = append(out.Tests, tc)
	}
	return out
}

// failing reports whether a test status is a failure of the tested code.
func failing(status string) bool {
	switch results.Status(status) {
	case results.StatusFail, results.StatusTimeout, results.StatusCrash:
		return true
	}
	return false
}

// SnapshotOf returns what a run directory showed: a single run's tests
// ("suite/test") and crashes, or a series' tip step.
func SnapshotOf(rd *RunDir) *Snapshot {
	s := &Snapshot{Tests: map[string]string{}}
	if rd.Run != nil {
		s.Infra = rd.Run.Status == results.StatusInfra && len(rd.Run.Crashes) == 0
		for _, t := range rd.Run.Tests {
			s.Tests[rd.Run.Suite+"/"+t.Name] = string(t.Status)
		}
		s.Crashes = append(s.Crashes, rd.Run.Crashes...)
		return s
	}
	tip := rd.Series.Tip()
	if tip == nil {
		s.Infra = true
		return s
	}
	s.Infra = tip.Verdict == "infra" || tip.Verdict == "no-boot" || tip.Verdict == "no-build" || tip.Verdict == "no-apply"
	for k, v := range tip.Tests {
		s.Tests[k] = string(v)
	}
	for _, c := range tip.Crashes {
		s.Crashes = append(s.Crashes, c.Crash)
	}
	return s
}

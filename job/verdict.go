package job

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/runner"
)

// SuiteRun is one suite's run on a step's kernel, as JudgeStep reads it.
type SuiteRun struct {
	Suite string
	// Dir is the run directory ("" when none was made).
	Dir string
	// Result is the run's result; nil when the run could not start (Err).
	Result *results.Result
	Err    error
}

// RunIsInfra reports whether a run tells nothing about the kernel: it
// could not start, or it ended as infrastructure without a crash and not
// as a boot failure. A step stops at such a run: its verdict is infra.
func RunIsInfra(r SuiteRun) bool {
	if r.Err != nil || r.Result == nil {
		return true
	}
	return r.Result.Status == results.StatusInfra && len(r.Result.Crashes) == 0 && !runNoBoot(r.Result)
}

// runNoBoot reports whether the run is a kernel that did not boot to the
// agent (and did not crash): its VM timed out or ended before it booted. A
// VM that ends after booting is infrastructure unless it crashed.
func runNoBoot(r *results.Result) bool {
	return r.Status == results.StatusInfra && len(r.Crashes) == 0 && r.BootSeconds == 0 &&
		(r.Outcome == string(runner.OutcomeBootTimeout) || r.Outcome == string(runner.OutcomeExited))
}

// JudgeStep decides one step's verdict from what it produced: buildErr,
// the build's error (nil when it built), and the runs of every suite on
// its kernel. base is the base step, or nil when the step is the base
// itself. It returns a Step with Verdict, Message, Runs, Tests and
// Crashes (each new, or pre-existing when triage.SameCrash finds it on the
// base); the caller adds what the build says (key, times, kernel). A
// crash an earlier run of the step already showed (triage.SameCrash, with
// the same status) is listed once: the first run's entry, with the later
// run directories in its AlsoIn and the later titles among its alternative
// ones.
//
// The rules: a build error is no-apply, no-build or infra by its class
// (build.Classify); a run that tells nothing (RunIsInfra) makes the step
// infra; then a crash the base does not show (every crash, on the base)
// is crash; a kernel that does not boot is no-boot; a test that passes on
// the base and fails here (on the base: any failing test) is fail; else
// pass. A test failing on both, or missing from the base, is not new.
func JudgeStep(base *results.Step, buildErr error, runs []SuiteRun) *results.Step {
	st := &results.Step{Crashes: []results.SeriesCrash{}, Tests: map[string]results.Status{}}
	if buildErr != nil {
		switch build.Classify(buildErr) {
		case build.ClassNoApply:
			st.Verdict = results.VerdictNoApply
		case build.ClassNoBuild:
			st.Verdict = results.VerdictNoBuild
		default:
			st.Verdict = results.VerdictInfra
		}
		st.Message = buildErr.Error()
		return st
	}
	var crashedNew, noBoot bool
	var failed []string
	noBootMsg := ""
	fromRun := []int{} // the index in runs of each st.Crashes entry
	for i, r := range runs {
		if r.Dir != "" {
			st.Runs = append(st.Runs, r.Dir)
		}
		if r.Err != nil || r.Result == nil {
			st.Verdict, st.Message = results.VerdictInfra, fmt.Sprint(r.Err)
			return st
		}
		res := r.Result
		for _, tt := range res.Tests {
			key := r.Suite + "/" + tt.Name
			st.Tests[key] = tt.Status
			if tt.Status.Failed() && (base == nil || base.Tests[key] == results.StatusPass) {
				failed = append(failed, key)
			}
		}
		for _, c := range res.Crashes {
			sc := results.SeriesCrash{Crash: c, Status: results.CrashNew, Run: r.Dir}
			if base != nil && base.HasCrash(c) {
				sc.Status = results.CrashPreExisting
			} else {
				crashedNew = true
			}
			if first := sameCrashEarlier(st.Crashes, fromRun, i, sc); first != nil {
				if r.Dir != "" && !slices.Contains(first.AlsoIn, r.Dir) {
					first.AlsoIn = append(first.AlsoIn, r.Dir)
				}
				continue
			}
			st.Crashes = append(st.Crashes, sc)
			fromRun = append(fromRun, i)
		}
		if RunIsInfra(r) {
			st.Verdict, st.Message = results.VerdictInfra, res.Reason
			return st
		}
		if runNoBoot(res) {
			noBoot, noBootMsg = true, res.Reason
		}
	}
	if noBoot {
		st.Message = noBootMsg
	}
	sort.Strings(failed)
	switch {
	case crashedNew:
		st.Verdict = results.VerdictCrash
	case noBoot:
		st.Verdict = results.VerdictNoBoot
	case len(failed) > 0:
		st.Verdict = results.VerdictFail
		if base == nil {
			st.Message = "failing on the base: " + strings.Join(failed, ", ")
		} else {
			st.Message = "newly failing: " + strings.Join(failed, ", ")
		}
	default:
		st.Verdict = results.VerdictPass
	}
	return st
}

// sameCrashEarlier folds c into the entry of crashes, recorded from a run
// before run (fromRun[i] is entry i's run), that is the same crash with
// the same status (results.Crash.Merge), and returns that entry; nil when
// there is none. A new crash is not folded into a pre-existing one: the
// two can differ when alternative titles chain (a ~ b and b ~ c, but not
// a ~ c), and a new crash must stay listed as new.
func sameCrashEarlier(crashes []results.SeriesCrash, fromRun []int, run int, c results.SeriesCrash) *results.SeriesCrash {
	for j := range crashes {
		e := &crashes[j]
		if fromRun[j] < run && e.Status == c.Status && e.Merge(c.Crash) {
			return e
		}
	}
	return nil
}

// BaseUsable reports whether patches can be judged against the base: it
// built and booted (it may fail tests or crash: those are compared).
func BaseUsable(base *results.Step) bool {
	switch base.Verdict {
	case results.VerdictPass, results.VerdictFail, results.VerdictCrash:
		return true
	}
	return false
}

// SeriesVerdict is a whole series' outcome.
type SeriesVerdict struct {
	Status   results.Status
	Reason   string
	FirstBad *results.FirstBad // nil unless Status is regression; Reproduce is the caller's
}

// JudgeSeries decides a series' status from its base and the patches that
// were tested (in index order; total is the series' length), and err, the
// context's error when the run was cut short. The status is infra when the
// base is not usable or the run was cut short; regression when a patch's
// verdict is neither pass nor infra (the first such patch is the first
// bad; its title is its first new crash's); infra when a patch could not
// be judged and none is bad; else pass.
func JudgeSeries(base *results.Step, patches []*results.PatchVerdict, total int, err error) SeriesVerdict {
	if base == nil || !BaseUsable(base) {
		msg := ""
		if base != nil {
			msg = base.Message
		}
		return SeriesVerdict{Status: results.StatusInfra, Reason: "the base does not build or boot: " + msg}
	}
	v := SeriesVerdict{Status: results.StatusPass}
	for _, p := range patches {
		switch p.Verdict {
		case results.VerdictPass:
			continue
		case results.VerdictInfra:
			if v.Status == results.StatusPass {
				v.Status, v.Reason = results.StatusInfra, fmt.Sprintf("patch %d: %s", p.Index, p.Message)
			}
			continue
		}
		v.Status = results.StatusRegression
		v.FirstBad = &results.FirstBad{Index: p.Index, Subject: p.Subject, Verdict: p.Verdict}
		for _, c := range p.Crashes {
			if c.Status == results.CrashNew {
				v.FirstBad.Title = c.Title
				break
			}
		}
		v.Reason = fmt.Sprintf("patch %d/%d %q: %s", p.Index, total, p.Subject, p.Verdict)
		if v.FirstBad.Title != "" {
			v.Reason += ": " + v.FirstBad.Title
		}
		break
	}
	if err != nil {
		v.Status, v.Reason = results.StatusInfra, "canceled: "+err.Error()
	}
	return v
}

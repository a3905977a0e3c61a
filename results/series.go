package results

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/kregress/kregress/results/triage"
)

// Verdict is one step's verdict in a series: the base's, or a patch's (the
// step that ends with that patch).
type Verdict string

// Patch verdicts, from best to worst.
const (
	VerdictPass    Verdict = "pass"     // applies, builds, boots, no new failure or crash
	VerdictFail    Verdict = "fail"     // a test that passes on the base fails (on the base: a test fails)
	VerdictCrash   Verdict = "crash"    // a crash the base does not show
	VerdictNoApply Verdict = "no-apply" // the patch (or an earlier one) does not apply
	VerdictNoBuild Verdict = "no-build" // the kernel does not build
	VerdictNoBoot  Verdict = "no-boot"  // the kernel does not boot to the agent
	VerdictInfra   Verdict = "infra"    // kregress could not tell
)

// CrashStatus says whether a crash seen at a series step is also on the
// base.
type CrashStatus string

// Crash statuses of a series step.
const (
	CrashNew         CrashStatus = "new"
	CrashPreExisting CrashStatus = "pre-existing"
)

// SeriesResult is a series run directory's result.json.
type SeriesResult struct {
	Status      Status          `json:"status"` // pass (no regression), regression, infra
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
	// Target is the tree the series applies to: kernel or client ("" for
	// a kernel series without a client).
	Target string `json:"target,omitempty"`
	// Kernel is the distribution kernel every step booted, if any.
	Kernel string `json:"kernel,omitempty"`
	// Client is the Lustre client tree built for every step, if any.
	Client string `json:"client,omitempty"`
}

// Steps returns the base (when it ran) and the tested patches, in order.
func (r *SeriesResult) Steps() []*Step {
	var out []*Step
	if r.Base != nil {
		out = append(out, r.Base)
	}
	for _, p := range r.Patches {
		out = append(out, &p.Step)
	}
	return out
}

// Tip is the last tested patch's step, or the base when no patch ran.
func (r *SeriesResult) Tip() *Step {
	var tip *PatchVerdict
	for _, p := range r.Patches {
		if tip == nil || p.Index > tip.Index {
			tip = p
		}
	}
	if tip == nil {
		return r.Base
	}
	return &tip.Step
}

// Step is one built and tested kernel: the base or a prefix of the series.
type Step struct {
	Verdict      Verdict           `json:"verdict"`
	Message      string            `json:"message,omitempty"`
	BuildKey     string            `json:"build_key,omitempty"`
	BuildSeconds float64           `json:"build_seconds"`
	Incremental  bool              `json:"incremental"`
	Compiled     int               `json:"compiled"`
	Kernel       string            `json:"kernel,omitempty"` // the bzImage kept in the step's folder
	Runs         []string          `json:"runs,omitempty"`   // run directories, one per suite
	Tests        map[string]Status `json:"tests,omitempty"`  // suite/test -> status
	Crashes      []SeriesCrash     `json:"crashes"`
	Warnings     []string          `json:"warnings,omitempty"`
	// ClientModules is the folder of the Lustre client modules the step
	// built and loaded; ClientConfigured says configure ran for it.
	ClientModules    string `json:"client_modules,omitempty"`
	ClientConfigured bool   `json:"client_configured,omitempty"`
}

// HasCrash reports whether the step saw c (triage.SameCrash).
func (s *Step) HasCrash(c Crash) bool {
	for _, b := range s.Crashes {
		if triage.SameCrash(b.Identity(), c.Identity()) {
			return true
		}
	}
	return false
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
	Crash
	Status CrashStatus `json:"status"`
	Run    string      `json:"run"` // the run directory that saw it
	// AlsoIn are the step's later run directories whose console showed
	// the same crash (triage.SameCrash, same status), in run order; the
	// step lists the crash once, from Run, with the titles those runs gave
	// it among its AltTitles.
	AlsoIn []string `json:"also_in,omitempty"`
}

// Merge folds o, the crash as another run of the step showed it, into c,
// when they are the same crash (triage.SameCrash) and c can stand for
// both: c takes o's titles among its alternative ones (a new slice), and
// then matches whatever o matched. It reports whether it did; c is left
// alone when they differ, or when c could not carry o's names (a
// corrupted crash is known by its title only).
func (c *Crash) Merge(o Crash) bool {
	if !triage.SameCrash(c.Identity(), o.Identity()) {
		return false
	}
	m := *c
	m.AltTitles = slices.Clone(c.AltTitles)
	for _, n := range append([]string{o.Title}, o.AltTitles...) {
		if n != "" && n != m.Title && !slices.Contains(m.AltTitles, n) {
			m.AltTitles = append(m.AltTitles, n)
		}
	}
	names := m.Identity().Names()
	for _, n := range o.Identity().Names() {
		if !slices.Contains(names, n) {
			return false
		}
	}
	*c = m
	return true
}

// FirstBad names the first patch whose verdict is not pass.
type FirstBad struct {
	Index     int     `json:"index"`
	Subject   string  `json:"subject"`
	Verdict   Verdict `json:"verdict"`
	Title     string  `json:"title,omitempty"`
	Reproduce string  `json:"reproduce"`
}

// listOrNone joins a list for a person: "none" when it is empty.
func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ",")
}

// SeriesSummary writes the verdict table.
func SeriesSummary(w io.Writer, r *SeriesResult, dir string) {
	switch {
	case r.Target == "client" && r.Kernel != "":
		fmt.Fprintf(w, "series %s applied to the client tree %s, built against %s (suites %s)\n", r.Series, r.Client, r.Kernel, listOrNone(r.Suites))
	case r.Target == "client":
		fmt.Fprintf(w, "series %s applied to the client tree %s, built against %s (configs %s; suites %s)\n", r.Series, r.Client, r.Source, listOrNone(r.Configs), listOrNone(r.Suites))
	case r.Client != "":
		fmt.Fprintf(w, "series %s applied to the kernel tree %s (configs %s; suites %s); client tree %s built against each step's kernel\n", r.Series, r.Source, listOrNone(r.Configs), listOrNone(r.Suites), r.Client)
	default:
		fmt.Fprintf(w, "series %s on %s (configs %s; suites %s)\n", r.Series, r.Source, listOrNone(r.Configs), listOrNone(r.Suites))
	}
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
				if c.Status != CrashNew {
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
	status := strings.ToUpper(string(r.Status))
	if r.Status == StatusPass {
		status = "PASS (no regression)"
	}
	fmt.Fprintf(w, "\nstatus   %s", status)
	if r.Reason != "" && r.Status != StatusRegression {
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

// writeStack prints a crash's guilty frames, guilty first, each with its
// source position (and inlined callees) when symbolization found one.
func writeStack(w io.Writer, c Crash) {
	fmt.Fprintf(w, "  stack:\n")
	for i, fn := range c.Frames {
		if i == 10 {
			fmt.Fprintf(w, "    ...\n")
			break
		}
		loc := ""
		for _, f := range c.Stack {
			if f.Func != fn || f.File == "" || f.Lock {
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

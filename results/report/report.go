// Package report renders a run directory (a single run or a series) for
// people and for other tools: a static HTML page, JUnit XML, KCIDB JSON
// (schema v5.3) and a mail reply to the patch thread. Every format is
// made from one Model, read from the run directory alone.
package report

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/history"
	"github.com/kregress/kregress/results/triage"
)

// Options tune what a report shows.
type Options struct {
	// SourceURL links source positions to the tree: a URL in which
	// {file} and {line} are replaced, e.g.
	// "https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git/tree/{file}?h=v6.1#n{line}".
	// Empty: no links.
	SourceURL string
	// Mbox is the patch thread the series came from, for the mail reply's
	// threading headers; empty: the series path the run recorded.
	Mbox string
	// Context is how many console lines to show before and after a
	// report (default 8).
	Context int
}

// Model is a run directory as every report format sees it.
type Model struct {
	// Dir is the run directory, as given.
	Dir string
	// Kind is "run" or "series".
	Kind string
	// Status is the overall status: pass, fail, crash, infra (run) or
	// pass, regression, infra (series).
	Status string
	Reason string
	// Headline says what happened in one sentence.
	Headline string
	Started  time.Time
	Wall     float64
	// Tree, Base, Series, Configs and Suites say what was tested.
	Tree    string
	Base    string
	Series  string
	Configs []string
	Suites  []string
	// Target is the tree the series applies to ("client" or "kernel");
	// Client is the Lustre client tree, Kernel the distribution kernel
	// every step booted, when there are.
	Target, Client, Kernel string
	// Steps are the series' base and patches, or the single run.
	Steps []*Step
	// FirstBad is the first patch that is not pass (series only).
	FirstBad *Step
	// Reproduce is a command that shows the problem again.
	Reproduce string
}

// Step is one kernel that was booted: a series step or the single run.
type Step struct {
	// ID is "base", "patch-03" or "run".
	ID string
	// Label is "(base)", "patch 3/4" or the suite name.
	Label   string
	Index   int // patch index, 0 for the base and single runs
	Subject string
	Verdict string
	Message string
	// Build facts (series steps).
	BuildKey     string
	BuildSeconds float64
	Incremental  bool
	Kernel       string
	Release      string
	Accel        string
	BootSeconds  float64
	WallSeconds  float64
	Started      time.Time
	Tests        []Test
	Crashes      []*Crash
	// Patch is the patch this step ends with, when the series could be read.
	Patch *build.Patch
}

// Test is one test of a step.
type Test struct {
	Suite, Name, Status, Message string
	Seconds                      float64
	// Output is the test's output file, relative to the run directory
	// of its suite ("" when none).
	Output string
	RunDir string
}

// Crash is one crash of a step, with the console around it.
type Crash struct {
	results.Crash
	// Status is "new" or "pre-existing" for series steps, "" for runs.
	Status string
	// RunDir is the run directory whose console.log shows it.
	RunDir string
	// Console is the console excerpt around the report.
	Console []Line
	// Guilty is the first guilty frame's function.
	Guilty string
	// Also are the same crash (triage.SameCrash, same status) as the
	// step's later runs showed it, each with its own RunDir, lines and
	// console, in run order; series steps only. The step lists the crash
	// once, from its first run.
	Also []*Crash
}

// Line is one numbered console line.
type Line struct {
	N      int
	Text   string
	Report bool // inside the report's lines
}

// Load reads the run directory dir into a Model.
func Load(dir string, opt Options) (*Model, error) {
	if opt.Context <= 0 {
		opt.Context = 8
	}
	rd, err := history.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	dir = filepath.Clean(dir)
	m := &Model{Dir: dir}
	if rd.Run != nil {
		r := rd.Run
		m.Kind, m.Status, m.Reason, m.Started, m.Wall = "run", string(r.Status), r.Reason, r.Started, r.WallSeconds
		m.Suites = []string{r.Suite}
		st := stepFromRun(&Step{ID: "run", Label: r.Suite, Verdict: string(r.Status), Message: r.Reason}, r, dir, opt)
		m.Steps = []*Step{st}
		m.Reproduce = fmt.Sprintf("kregress run --kernel %s --suite %s", r.Kernel, r.Suite)
		m.Headline = runHeadline(m, st)
		return m, nil
	}
	s := rd.Series
	m.Kind, m.Status, m.Reason, m.Started, m.Wall = "series", string(s.Status), s.Reason, s.Started, s.WallSeconds
	m.Tree, m.Base, m.Series, m.Configs, m.Suites = s.Source, s.BaseRef, s.Series, s.Configs, s.Suites
	m.Target, m.Client, m.Kernel = s.Target, s.Client, s.Kernel
	if m.Kernel != "" {
		m.Tree = "" // no kernel tree was built: the kernel line says which one booted
	}
	mbox := opt.Mbox
	if mbox == "" {
		mbox = s.Series
	}
	patches, _ := build.ReadSeries(mbox) // a missing series only loses subjects and threading
	total := len(patches)
	for _, p := range s.Patches {
		total = max(total, p.Index)
	}
	add := func(id, label string, index int, subject string, st *results.Step) {
		step := &Step{ID: id, Label: label, Index: index, Subject: subject, Verdict: string(st.Verdict), Message: st.Message,
			BuildKey: st.BuildKey, BuildSeconds: st.BuildSeconds, Incremental: st.Incremental, Kernel: st.Kernel}
		if index > 0 && index <= len(patches) {
			step.Patch = &patches[index-1]
		}
		for _, run := range st.Runs {
			r := rd.Steps[run]
			if r == nil {
				continue
			}
			stepFromRun(step, r, rd.Resolve(run), opt)
		}
		// The series' verdict on each crash (new or pre-existing). A crash
		// of a later run that the series listed once, under an earlier
		// run's, has none: mergeRuns folds it into that one.
		for _, c := range step.Crashes {
			for _, sc := range st.Crashes {
				if sc.Title == c.Title && sc.StartLine == c.StartLine {
					c.Status = string(sc.Status)
				}
			}
		}
		step.Crashes = mergeRuns(step.Crashes)
		m.Steps = append(m.Steps, step)
	}
	if s.Base != nil {
		add("base", "(base)", 0, "", s.Base)
	}
	for _, p := range s.Patches {
		add(fmt.Sprintf("patch-%02d", p.Index), fmt.Sprintf("patch %d/%d", p.Index, total), p.Index, p.Subject, &p.Step)
	}
	if fb := s.FirstBad; fb != nil {
		m.Reproduce = fb.Reproduce
		for _, st := range m.Steps {
			if st.Index == fb.Index {
				m.FirstBad = st
			}
		}
	}
	m.Headline = seriesHeadline(m)
	return m, nil
}

// stepFromRun adds run r's facts, tests and crashes (with their console
// excerpts) to st.
func stepFromRun(st *Step, r *results.Result, runDir string, opt Options) *Step {
	st.Release, st.Accel = r.Release, r.Accel
	st.BootSeconds += r.BootSeconds
	st.WallSeconds += r.WallSeconds
	if st.Kernel == "" {
		st.Kernel = r.Kernel
	}
	if st.Started.IsZero() {
		st.Started = r.Started
	}
	for _, t := range r.Tests {
		st.Tests = append(st.Tests, Test{Suite: r.Suite, Name: t.Name, Status: string(t.Status), Message: t.Message, Seconds: t.Seconds, Output: t.Output, RunDir: runDir})
	}
	console := readLines(filepath.Join(runDir, "console.log"))
	for _, c := range r.Crashes {
		cr := &Crash{Crash: c, RunDir: runDir}
		if len(c.Frames) > 0 {
			cr.Guilty = c.Frames[0]
		}
		lo, hi := max(1, c.StartLine-opt.Context), min(len(console), c.EndLine+opt.Context)
		for n := lo; n <= hi; n++ {
			cr.Console = append(cr.Console, Line{N: n, Text: console[n-1], Report: n >= c.StartLine && n <= c.EndLine})
		}
		st.Crashes = append(st.Crashes, cr)
	}
	return st
}

// mergeRuns lists each crash of a step once, as job.JudgeStep does: a
// crash that is the same crash as one of an earlier run of the step
// (results.Crash.Merge, which adds its titles to that one's alternative
// ones), with the same status or none, goes into that one's Also. The
// crashes are in run order.
func mergeRuns(crashes []*Crash) []*Crash {
	if len(crashes) < 2 {
		return crashes
	}
	var out []*Crash
	for _, c := range crashes {
		var first *Crash
		for _, e := range out {
			if e.RunDir != c.RunDir && (c.Status == "" || c.Status == e.Status) && e.Merge(c.Crash) {
				first = e
				break
			}
		}
		if first == nil {
			out = append(out, c)
			continue
		}
		c.Status = first.Status
		first.Also = append(first.Also, c)
	}
	return out
}

// occurrences returns c and the same crash as other runs showed it.
func (c *Crash) occurrences() []*Crash {
	return append([]*Crash{c}, c.Also...)
}

func readLines(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, strings.TrimRight(sc.Text(), "\r"))
	}
	return out
}

// runHeadline says what a single run showed in one sentence.
func runHeadline(m *Model, st *Step) string {
	if len(st.Crashes) > 0 {
		c := st.Crashes[0]
		if t := testAt(st, c); t != "" {
			return fmt.Sprintf("%s crashes during test %s: %s", kernelName(st), t, c.Title)
		}
		return fmt.Sprintf("%s crashes: %s", kernelName(st), c.Title)
	}
	var failed []string
	for _, t := range st.Tests {
		if isFailure(t.Status) {
			failed = append(failed, t.Name)
		}
	}
	switch {
	case len(failed) > 0:
		return fmt.Sprintf("%s fails %s", kernelName(st), strings.Join(failed, ", "))
	case m.Status == string(results.StatusInfra):
		return fmt.Sprintf("kregress could not test %s: %s", kernelName(st), m.Reason)
	}
	return fmt.Sprintf("%s passes all %d tests of %s", kernelName(st), len(st.Tests), st.Label)
}

func kernelName(st *Step) string {
	if st.Release != "" {
		return "kernel " + st.Release
	}
	return "the kernel"
}

// testAt names the test that was running when crash c began: the first
// test that did not pass.
func testAt(st *Step, c *Crash) string {
	for _, t := range st.Tests {
		if t.RunDir == c.RunDir && results.Status(t.Status).Failed() {
			return t.Name
		}
	}
	return ""
}

// seriesHeadline says what a series showed in one sentence, the way a
// reviewer would ("patch 3/4 crashes on stat-root: possible deadlock in
// seedfs_find").
func seriesHeadline(m *Model) string {
	fb := m.FirstBad
	if fb == nil {
		switch m.Status {
		case "pass":
			return fmt.Sprintf("no regression: every tested patch of the series passes (%d steps)", len(m.Steps))
		default:
			return "kregress could not test the series: " + m.Reason
		}
	}
	switch fb.Verdict {
	case "crash":
		for _, c := range fb.Crashes {
			if c.Status == "pre-existing" {
				continue
			}
			if t := testAt(fb, c); t != "" {
				return fmt.Sprintf("%s crashes in test %s: %s", fb.Label, t, c.Title)
			}
			return fmt.Sprintf("%s crashes: %s", fb.Label, c.Title)
		}
	case "fail":
		return fmt.Sprintf("%s makes tests fail (%s)", fb.Label, fb.Message)
	case "no-apply":
		return fmt.Sprintf("%s does not apply", fb.Label)
	case "no-build":
		return fmt.Sprintf("%s does not build", fb.Label)
	case "no-boot":
		return fmt.Sprintf("%s does not boot", fb.Label)
	}
	return fmt.Sprintf("%s: %s", fb.Label, fb.Verdict)
}

func isFailure(status string) bool {
	s := results.Status(status)
	return s == results.StatusFail || s == results.StatusTimeout || s == results.StatusCrash
}

// SourceLink returns the link for a source position, "" when no URL is
// configured or the position is unknown.
func (o Options) SourceLink(file string, line int) string {
	if o.SourceURL == "" || file == "" {
		return ""
	}
	r := strings.NewReplacer("{file}", strings.TrimPrefix(file, "./"), "{line}", fmt.Sprint(line))
	return r.Replace(o.SourceURL)
}

// LockChain draws a lockdep report as held-lock -> acquired-lock lines:
// for a dependency cycle, each link of lockdep's chain, oldest first,
// then the lock being taken.
func LockChain(l *triage.Lockdep) []string {
	if l == nil {
		return nil
	}
	ref := func(r *triage.LockRef) string {
		s := r.Class
		if r.At != "" {
			s += " (at " + r.At + ")"
		}
		return s
	}
	var out []string
	if len(l.Chain) > 0 {
		links := append([]triage.ChainLink(nil), l.Chain...)
		sort.Slice(links, func(i, j int) bool { return links[i].Index < links[j].Index })
		for i := len(links) - 1; i > 0; i-- {
			out = append(out, fmt.Sprintf("#%d %s -> #%d %s", links[i].Index, links[i].Lock.Class, links[i-1].Index, links[i-1].Lock.Class))
		}
	}
	if l.Held != nil && l.Acquiring != nil {
		out = append(out, fmt.Sprintf("held %s -> acquiring %s", ref(l.Held), ref(l.Acquiring)))
	} else if l.Acquiring != nil {
		out = append(out, "acquiring "+ref(l.Acquiring))
	}
	return out
}

// StackLines renders a crash's stack, one frame a line, with its source
// position and the frames inlined into it, guilty frame marked.
type StackLine struct {
	Func, File string
	Line       int
	Offset     string
	Module     string
	Inlined    bool
	Guilty     bool
}

// Stack returns the crash's frames for display: the symbolized stack when
// there is one, else the guilty frames by name. A lockdep report's lock
// sites are not in it (LockSites).
func (c *Crash) Stack() []StackLine {
	var out []StackLine
	if len(c.Crash.Stack) == 0 {
		for i, f := range c.Frames {
			out = append(out, StackLine{Func: f, Guilty: i == 0})
		}
		return out
	}
	for _, f := range c.Crash.Stack {
		if !f.Lock {
			out = append(out, c.stackLines(f)...)
		}
	}
	return out
}

// LockSites returns where a lockdep report says its locks were taken
// (the lock being acquired, the one held, then each held lock), with their
// source positions, in the report's order.
func (c *Crash) LockSites() []StackLine {
	var out []StackLine
	for _, f := range c.Crash.Stack {
		if f.Lock {
			out = append(out, c.stackLines(f)...)
		}
	}
	return out
}

// stackLines renders one frame: the frames inlined into it, then itself.
func (c *Crash) stackLines(f triage.Frame) []StackLine {
	var out []StackLine
	for _, in := range f.Inlined {
		out = append(out, StackLine{Func: in.Func, File: in.File, Line: in.Line, Inlined: true, Guilty: in.Func == c.Guilty})
	}
	off := ""
	if f.Size > 0 {
		off = fmt.Sprintf("+0x%x/0x%x", f.Offset, f.Size)
	}
	return append(out, StackLine{Func: f.Func, File: f.File, Line: f.Line, Offset: off, Module: f.Module, Guilty: f.Func == c.Guilty})
}

package job

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kregress/kregress/internal/proc"

	"gopkg.in/yaml.v3"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/history"
	"github.com/kregress/kregress/results/triage"
	"github.com/kregress/kregress/suites"
)

// NightlyJob is a nightly job file: what to build and run every night.
// Relative paths are taken from the job file's folder. kregress has no
// schedule of its own: cron or a systemd timer runs `kregress nightly
// JOB.yaml`.
type NightlyJob struct {
	// Name names the job in the record and the output folder.
	Name string `yaml:"name"`
	// Source is a kernel git tree. With Remote, `git fetch Remote Branch`
	// updates it first and the fetched commit is built; without, Branch
	// (default HEAD) as it is.
	Source string `yaml:"source"`
	Remote string `yaml:"remote"`
	Branch string `yaml:"branch"`
	// BuildBase (optional) is a commit every night is built on, as the
	// diff from it to the night's commit, so that nights share one build
	// folder and build incrementally. Without it the first night's
	// commit is the base of the nights after it. A night whose commit
	// does not descend from the base, or whose diff is too large, is
	// built as it is and becomes the base of the next.
	BuildBase string `yaml:"build_base"`
	// BaseConfig, Configs, Modules and ConfigureArgs are as for `kregress
	// build`.
	BaseConfig    string   `yaml:"base_config"`
	Configs       []string `yaml:"configs"`
	Modules       []string `yaml:"modules"`
	ConfigureArgs []string `yaml:"configure_args"`
	// Suites are shipped suite names or suite files.
	Suites []string `yaml:"suites"`
	// Repeat runs each suite this many times (default 1).
	Repeat int `yaml:"repeat"`
	// Lustre: the simulated server's namespace and faults for lustre
	// suites (files).
	LustreTree   string `yaml:"lustre_tree"`
	LustreFaults string `yaml:"lustre_faults"`
	// Bisect new crashes between the last good night and this one
	// (default true); BisectRuns per step (default 4).
	Bisect     *bool `yaml:"bisect"`
	BisectRuns int   `yaml:"bisect_runs"`
	// Out is the folder of the nightly runs (default out/nightly);
	// each night is Out/Name/<time>-<commit>.
	Out string `yaml:"out"`
	// Accel, Boot, MemoryMB and CPUs are the VM settings.
	Accel    string `yaml:"accel"`
	Boot     string `yaml:"boot"`
	MemoryMB int    `yaml:"memory_mb"`
	CPUs     int    `yaml:"cpus"`
}

// LoadNightlyJob reads and checks a job file. Errors name the file.
func LoadNightlyJob(path string) (*NightlyJob, []*suites.Suite, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, &build.InputError{Err: fmt.Errorf("nightly job: %w", err)}
	}
	var j NightlyJob
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&j); err != nil {
		return nil, nil, &build.InputError{Err: fmt.Errorf("nightly job %s: %w", path, err)}
	}
	bad := func(format string, a ...any) error {
		return &build.InputError{Err: fmt.Errorf("nightly job %s: "+format, append([]any{path}, a...)...)}
	}
	dir := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	switch {
	case j.Name == "" || strings.ContainsAny(j.Name, "/\\ \n"):
		return nil, nil, bad("name %q: want a non-empty name without slashes or spaces", j.Name)
	case j.Source == "":
		return nil, nil, bad("source: want a kernel git tree")
	case len(j.Suites) == 0:
		return nil, nil, bad("suites: want at least one")
	case j.Repeat < 0 || j.BisectRuns < 0:
		return nil, nil, bad("repeat and bisect_runs must not be negative")
	}
	j.Source = rel(j.Source)
	if st, err := os.Stat(filepath.Join(j.Source, ".git")); err != nil || st == nil {
		return nil, nil, bad("source %s is not a git tree", j.Source)
	}
	for i := range j.Modules {
		j.Modules[i] = rel(j.Modules[i])
	}
	for i, c := range j.Configs {
		if strings.ContainsAny(c, "/.") { // a fragment file, not a preset name
			j.Configs[i] = rel(c)
		}
	}
	j.LustreTree, j.LustreFaults = rel(j.LustreTree), rel(j.LustreFaults)
	if j.Out == "" {
		j.Out = filepath.Join("out", "nightly")
	}
	if j.Repeat == 0 {
		j.Repeat = 1
	}
	if j.BisectRuns == 0 {
		j.BisectRuns = 4
	}
	var loaded []*suites.Suite
	for _, s := range j.Suites {
		name := s
		if strings.ContainsAny(s, "/.") {
			name = rel(s)
		}
		su, err := suites.Load(name)
		if err != nil {
			return nil, nil, bad("%v", err)
		}
		loaded = append(loaded, su)
	}
	return &j, loaded, nil
}

// NightlySpec is one night of a job.
type NightlySpec struct {
	Job    *NightlyJob
	Suites []*suites.Suite
	// History is the record to add the night to; nil opens none.
	History *history.DB
	// NoBisect turns off bisecting new crashes.
	NoBisect bool
	Progress func(format string, args ...any)
	// Executor builds and runs; nil means Local.
	Executor Executor
}

// NightlyChange is one crash's or test's fate since the previous night.
type NightlyChange struct {
	// Kind is crash or test; Change new/still/fixed (crash) or
	// regressed/still-failing/fixed (test).
	Kind   string `json:"kind"`
	Change string `json:"change"`
	Name   string `json:"name"` // crash title or suite/test
	// Bisect is the bisection's run directory for a new crash, and its
	// culprit.
	Bisect  string `json:"bisect,omitempty"`
	Culprit string `json:"culprit,omitempty"`
	Note    string `json:"note,omitempty"`
}

// NightlyResult is a night's nightly.json.
type NightlyResult struct {
	Job     string `json:"job"`
	Source  string `json:"source"`
	Commit  string `json:"commit"`
	Subject string `json:"subject"`
	// BuildBase is the commit the night was built on (the diff
	// BuildBase..Commit on top); the next night builds on it too.
	BuildBase string `json:"build_base,omitempty"`
	// Previous is the previous night's folder and commit ("" for the first).
	Previous       string            `json:"previous,omitempty"`
	PreviousCommit string            `json:"previous_commit,omitempty"`
	Status         results.Status    `json:"status"` // pass, regression, infra
	Reason         string            `json:"reason,omitempty"`
	Runs           []string          `json:"runs"`
	Tests          map[string]string `json:"tests"`
	Crashes        []results.Crash   `json:"crashes"`
	Changes        []NightlyChange   `json:"changes"`
	Started        time.Time         `json:"started"`
	WallSeconds    float64           `json:"wall_seconds"`
}

// NightlyFile is a night's index file in its folder.
const NightlyFile = "nightly.json"

// Nightly runs one night of a job: update and resolve the tree, build,
// run every suite Repeat times, compare with the previous night, bisect
// crashes that are new since a night without them, and write the night's
// folder (nightly.json and the runs).
func Nightly(ctx context.Context, spec NightlySpec) (*NightlyResult, string, error) {
	j := spec.Job
	if spec.Progress == nil {
		spec.Progress = func(string, ...any) {}
	}
	if spec.Executor == nil {
		spec.Executor = Local{}
	}
	start := time.Now()
	commit, err := updateTree(ctx, j)
	if err != nil {
		return nil, "", err
	}
	root := filepath.Join(j.Out, j.Name)
	prevDir, prev := previousNight(root)
	night, err := results.NewDir(root, shortHash(commit))
	if err != nil {
		return nil, "", err
	}
	res := &NightlyResult{Job: j.Name, Source: j.Source, Commit: commit, Subject: commitSubject(j.Source, commit),
		Status: results.StatusInfra, Tests: map[string]string{}, Crashes: []results.Crash{}, Changes: []NightlyChange{},
		Started: start.UTC(), Runs: []string{}}
	if prev != nil {
		res.Previous, res.PreviousCommit = prevDir, prev.Commit
	}
	defer func() {
		res.WallSeconds = time.Since(start).Seconds()
		if data, err := json.MarshalIndent(res, "", "  "); err == nil {
			results.WriteAtomic(night.File(NightlyFile), append(data, '\n'))
		}
	}()
	req := j.request()
	req.Base = commit
	res.BuildBase = commit
	anchor := j.BuildBase
	if anchor == "" && prev != nil {
		anchor = prev.BuildBase
	}
	if base := revParse(ctx, j.Source, anchor); base != "" && base != commit &&
		isAncestor(ctx, j.Source, base, commit) {
		if p, ok := rangePatch(ctx, j.Source, base, commit); ok {
			req.Base, res.BuildBase = base, base
			if p != nil {
				req.Patches = []build.Patch{*p}
			}
		}
	}
	spec.Progress("nightly %s: build %s %q (on %s)", j.Name, shortHash(commit), res.Subject, shortHash(req.Base))
	br, err := spec.Executor.Build(ctx, req)
	if err != nil {
		if build.Classify(err) == build.ClassBadInput {
			return nil, "", err
		}
		res.Reason = "the kernel does not build: " + headLine(err.Error())
		return res, night.Path, nil
	}
	run := j.runSpec()
	defer run.UseBuild(br)()
	cur := &history.Snapshot{Tests: map[string]string{}}
	infra := 0
	for _, s := range spec.Suites {
		for i := 0; i < j.Repeat; i++ {
			rs := run
			rs.Suite, rs.Out, rs.Label = s, night.Path, s.Name
			if j.Repeat > 1 {
				rs.Label = fmt.Sprintf("%s-%d", s.Name, i)
			}
			spec.Progress("nightly %s: run %s", j.Name, rs.Label)
			r, dir, err := spec.Executor.Run(ctx, rs)
			if err != nil || r == nil {
				infra++
				continue
			}
			res.Runs = append(res.Runs, dir)
			if spec.History != nil {
				if err := spec.History.Record(ctx, "nightly:"+j.Name, dir); err != nil {
					spec.Progress("nightly %s: record %s: %v", j.Name, dir, err)
				}
			}
			merge(cur, history.SnapshotOf(&history.RunDir{Path: dir, Run: r}))
		}
	}
	if err := ctx.Err(); err != nil {
		res.Reason = "interrupted: " + context.Cause(ctx).Error()
		return res, night.Path, nil
	}
	if len(res.Runs) == 0 {
		res.Reason = "no run could be made"
		return res, night.Path, nil
	}
	cur.Infra = cur.Infra || infra > 0
	res.Tests, res.Crashes = cur.Tests, cur.Crashes
	var prevSnap *history.Snapshot
	if prev != nil {
		prevSnap = &history.Snapshot{Tests: prev.Tests, Crashes: prev.Crashes, Infra: prev.Status == results.StatusInfra}
	}
	cmp := history.Compare(prevSnap, cur)
	res.Status = results.StatusPass
	for _, c := range cmp.Crashes {
		ch := NightlyChange{Kind: "crash", Change: c.Change, Name: c.Title}
		if c.Change == history.ChangeNew {
			res.Status = results.StatusRegression
			if !spec.NoBisect && (j.Bisect == nil || *j.Bisect) {
				ch.Bisect, ch.Culprit, ch.Note = bisectNew(ctx, spec, prev, commit, res.BuildBase, c.Title)
			}
		}
		res.Changes = append(res.Changes, ch)
	}
	for _, t := range cmp.Tests {
		res.Changes = append(res.Changes, NightlyChange{Kind: "test", Change: t.Change, Name: t.Test})
		if t.Change == history.ChangeRegressed {
			res.Status = results.StatusRegression
		}
	}
	if cur.Infra && res.Status == results.StatusPass {
		res.Status, res.Reason = results.StatusInfra, fmt.Sprintf("%d run(s) failed for infrastructure reasons", infra)
	}
	return res, night.Path, nil
}

// bisectNew bisects a crash new tonight between the previous night's
// commit (which ran without it) and tonight's.
func bisectNew(ctx context.Context, spec NightlySpec, prev *NightlyResult, commit, buildBase, title string) (dir, culprit, note string) {
	j := spec.Job
	switch {
	case prev == nil:
		return "", "", "not bisected: no previous night"
	case prev.Status == results.StatusInfra:
		return "", "", "not bisected: the previous night was an infrastructure failure"
	case prev.Commit == commit:
		return "", "", "not bisected: the same commit as the previous night (a flaky crash?)"
	}
	spec.Progress("nightly %s: new crash %q: bisect %s..%s", j.Name, title, shortHash(prev.Commit), shortHash(commit))
	req := j.request()
	res, d, err := Bisect(ctx, BisectSpec{
		Build: req, Good: prev.Commit, Bad: commit, Suites: spec.Suites, Run: j.runSpec(),
		Runs: j.BisectRuns, Crash: title, Out: filepath.Join(j.Out, j.Name, "bisect"), BuildBase: buildBase,
		Progress: spec.Progress, Executor: spec.Executor,
	})
	if err != nil {
		return "", "", "bisection failed: " + err.Error()
	}
	if res.Culprit != nil {
		return d, res.Culprit.ID, fmt.Sprintf("%s %q", shortHash(res.Culprit.ID), res.Culprit.Subject)
	}
	return d, "", res.Reason
}

func (j *NightlyJob) request() build.Request {
	return build.Request{Source: j.Source, BaseConfig: j.BaseConfig, Configs: j.Configs,
		ExternalModules: j.Modules, ConfigureArgs: j.ConfigureArgs}
}

func (j *NightlyJob) runSpec() Spec {
	return Spec{Accel: j.Accel, Boot: j.Boot, MemoryMB: j.MemoryMB, CPUs: j.CPUs,
		Lustre: LustreSpec{TreeFile: j.LustreTree, FaultsFile: j.LustreFaults}}
}

// updateTree fetches the job's remote branch when it has one and returns
// the commit to build.
func updateTree(ctx context.Context, j *NightlyJob) (string, error) {
	ref := j.Branch
	if ref == "" {
		ref = "HEAD"
	}
	if j.Remote != "" {
		cmd := proc.Command(ctx, "git", "-C", j.Source, "fetch", "--quiet", j.Remote, ref)
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("nightly %s: git fetch %s %s: %v: %s", j.Name, j.Remote, ref, err, bytes.TrimSpace(out))
		}
		ref = "FETCH_HEAD"
	}
	commit := revParse(ctx, j.Source, ref)
	if commit == "" {
		return "", &build.InputError{Err: fmt.Errorf("nightly %s: %q is not a commit in %s", j.Name, ref, j.Source)}
	}
	return commit, nil
}

// revParse is ref's commit in repo, "" when ref is "" or not a commit.
func revParse(ctx context.Context, repo, ref string) string {
	if ref == "" {
		return ""
	}
	out, err := proc.Command(ctx, "git", "-C", repo, "rev-parse", "--verify", "--quiet", ref+"^{commit}").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// isAncestor reports whether commit a is an ancestor of commit b in repo
// (or b itself).
func isAncestor(ctx context.Context, repo, a, b string) bool {
	return proc.Command(ctx, "git", "-C", repo, "merge-base", "--is-ancestor", a, b).Run() == nil
}

func commitSubject(repo, commit string) string {
	out, err := proc.Command(context.Background(), "git", "-C", repo, "log", "-1", "--format=%s", commit).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// previousNight finds the latest night of the job under root.
func previousNight(root string) (string, *NightlyResult) {
	files, _ := filepath.Glob(filepath.Join(root, "*", NightlyFile))
	var nights []*NightlyResult
	dirs := map[*NightlyResult]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var n NightlyResult
		if json.Unmarshal(data, &n) != nil {
			continue
		}
		nights = append(nights, &n)
		dirs[&n] = filepath.Dir(f)
	}
	if len(nights) == 0 {
		return "", nil
	}
	sort.Slice(nights, func(a, b int) bool { return nights[a].Started.Before(nights[b].Started) })
	last := nights[len(nights)-1]
	return dirs[last], last
}

// merge adds a run's snapshot to a night's: a test is as bad as its worst
// repetition, crashes are deduplicated with the one same-crash rule.
func merge(into, s *history.Snapshot) {
	into.Infra = into.Infra || s.Infra
	for k, v := range s.Tests {
		if old, ok := into.Tests[k]; !ok || old == string(results.StatusPass) || old == string(results.StatusSkip) {
			into.Tests[k] = v
		}
	}
	for _, c := range s.Crashes {
		seen := false
		for _, d := range into.Crashes {
			if triage.SameCrash(c.Identity(), d.Identity()) {
				seen = true
				break
			}
		}
		if !seen {
			into.Crashes = append(into.Crashes, c)
		}
	}
}

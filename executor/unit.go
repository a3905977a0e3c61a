// Package executor runs kregress's units of work, a kernel build or a
// suite run, either in this process or as jobs of a Slurm cluster that
// share a directory. A unit is a versioned JSON description on disk;
// `kregress worker UNIT.json` executes one anywhere and writes its outcome
// atomically beside it (UNIT.outcome.json). The local executor runs the
// very same Execute in process: one code path, two executors.
package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/job"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/triage/symbolize"
	"github.com/kregress/kregress/suites"
)

// Version is the unit and outcome format this kregress writes and reads.
// A unit of another version is refused, naming both versions.
const Version = 1

// Kind says what a unit does.
type Kind string

// Unit kinds.
const (
	KindBuild Kind = "build" // a kernel (and its module trees) from a tree, a series prefix and configs
	KindRun   Kind = "run"   // a kernel booted with one suite: one run directory
)

// Unit is one unit of work.
type Unit struct {
	Version int        `json:"version"`
	ID      string     `json:"id"` // unique within a batch, used in file names
	Kind    Kind       `json:"kind"`
	Build   *BuildUnit `json:"build,omitempty"`
	Run     *RunUnit   `json:"run,omitempty"`
}

// BuildUnit is a build: the fields of build.Request that can cross a
// machine boundary.
type BuildUnit struct {
	Source          string        `json:"source"`
	Base            string        `json:"base,omitempty"`
	Series          string        `json:"series,omitempty"`
	Patches         []build.Patch `json:"patches,omitempty"`
	BaseConfig      string        `json:"base_config,omitempty"`
	Configs         []string      `json:"configs,omitempty"`
	ExternalModules []string      `json:"external_modules,omitempty"`
	ConfigureArgs   []string      `json:"configure_args,omitempty"`
	Jobs            int           `json:"jobs,omitempty"`
}

// Request is the build.Request the unit stands for.
func (b *BuildUnit) Request() build.Request {
	return build.Request{
		Source: b.Source, Base: b.Base, Series: b.Series, Patches: b.Patches,
		BaseConfig: b.BaseConfig, Configs: b.Configs, ExternalModules: b.ExternalModules,
		ConfigureArgs: b.ConfigureArgs, Jobs: b.Jobs,
	}
}

// RunUnit is one boot of a kernel with one suite.
type RunUnit struct {
	Kernel string `json:"kernel"` // bzImage
	// Vmlinux, with ModulesDir, feeds the symbolizer; "" for none.
	Vmlinux    string `json:"vmlinux,omitempty"`
	ModulesDir string `json:"modules_dir,omitempty"`
	// SourceRoot is cut from symbolized source paths.
	SourceRoot   string   `json:"source_root,omitempty"`
	Modules      []string `json:"modules,omitempty"`
	ExtraModules []string `json:"extra_modules,omitempty"`
	InitrdExtra  string   `json:"initrd_extra,omitempty"`
	// Suite is a shipped suite's name or a suite file's path.
	Suite           string         `json:"suite"`
	Out             string         `json:"out"`
	Label           string         `json:"label,omitempty"`
	Append          string         `json:"append,omitempty"`
	Accel           string         `json:"accel,omitempty"`
	Boot            string         `json:"boot,omitempty"`
	MemoryMB        int            `json:"memory_mb,omitempty"`
	CPUs            int            `json:"cpus,omitempty"`
	BootTimeout     Duration       `json:"boot_timeout,omitempty"`
	NoOutputTimeout Duration       `json:"no_output_timeout,omitempty"`
	Timeout         Duration       `json:"timeout,omitempty"`
	Lustre          job.LustreSpec `json:"lustre"`
	Repeat          int            `json:"repeat"` // which repetition of the same run this is, from 0
}

// Duration is a time.Duration written as Go writes it ("2m0s").
type Duration time.Duration

// MarshalJSON writes d as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a string such as "90s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Outcome is what became of a unit.
type Outcome struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	Kind    Kind   `json:"kind"`
	// Status is, for a run, result.json's status (pass, fail, crash,
	// infra); for a build, "built" or the verdict of a failed build
	// (no-apply, no-build) or "infra". Units the scheduler killed and that
	// were not retried to a result are "infra".
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// RunDir is a run's run directory.
	RunDir string `json:"run_dir,omitempty"`
	// Build is a build's result.
	Build *build.Result `json:"build_result,omitempty"`
	// Node is the host that executed the unit; Accel the accelerator its
	// VM used (kvm or tcg), probed there.
	Node     string    `json:"node"`
	Accel    string    `json:"accel,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Attempts counts executions (more than one after the scheduler killed
	// a unit and it was retried).
	Attempts int `json:"attempts"`
}

// Build statuses of Outcome.Status.
const (
	StatusBuilt    = "built"
	StatusNoApply  = "no-apply"
	StatusNoBuild  = "no-build"
	StatusBadInput = "bad-input"
	StatusInfra    = "infra"
)

// OutcomePath is where the outcome of the unit file path is written.
func OutcomePath(unitPath string) string {
	return strings.TrimSuffix(unitPath, ".json") + ".outcome.json"
}

// WriteUnit writes u to path.
func WriteUnit(path string, u Unit) error {
	u.Version = Version
	data, err := json.MarshalIndent(u, "", "  ")
	if err != nil {
		return err
	}
	return results.WriteAtomic(path, append(data, '\n'))
}

// ReadUnit reads and checks a unit file.
func ReadUnit(path string) (Unit, error) {
	var u Unit
	data, err := os.ReadFile(path)
	if err != nil {
		return u, fmt.Errorf("unit: %w", err)
	}
	if err := json.Unmarshal(data, &u); err != nil {
		return u, fmt.Errorf("unit %s: %w", path, err)
	}
	if err := u.check(); err != nil {
		return u, fmt.Errorf("unit %s: %w", path, err)
	}
	return u, nil
}

func (u Unit) check() error {
	if u.Version != Version {
		return fmt.Errorf("format version %d, this kregress reads version %d", u.Version, Version)
	}
	if u.ID == "" || strings.ContainsAny(u.ID, "/\\ \n") {
		return fmt.Errorf("id %q: want a non-empty name without slashes or spaces", u.ID)
	}
	switch u.Kind {
	case KindBuild:
		if u.Build == nil || u.Build.Source == "" {
			return errors.New("a build unit needs build.source")
		}
	case KindRun:
		if u.Run == nil || u.Run.Kernel == "" || u.Run.Suite == "" || u.Run.Out == "" {
			return errors.New("a run unit needs run.kernel, run.suite and run.out")
		}
	default:
		return fmt.Errorf("kind %q: want build or run", u.Kind)
	}
	return nil
}

// ReadOutcome reads an outcome file.
func ReadOutcome(path string) (Outcome, error) {
	var o Outcome
	data, err := os.ReadFile(path)
	if err != nil {
		return o, err
	}
	if err := json.Unmarshal(data, &o); err != nil {
		return o, fmt.Errorf("outcome %s: %w", path, err)
	}
	if o.Version != Version {
		return o, fmt.Errorf("outcome %s: format version %d, this kregress reads version %d", path, o.Version, Version)
	}
	return o, nil
}

// WriteOutcome writes o atomically to path.
func WriteOutcome(path string, o Outcome) error {
	o.Version = Version
	data, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	return results.WriteAtomic(path, append(data, '\n'))
}

// Execute performs one unit here and returns its outcome. It is what
// `kregress worker` runs on a node and what the local executor runs in
// process. A unit's own failure (a patch that does not apply, a crash)
// is in the outcome; the error is only for a unit that could not be
// started at all (it is also recorded in the outcome as infra).
func Execute(ctx context.Context, u Unit) Outcome {
	host, _ := os.Hostname()
	o := Outcome{Version: Version, ID: u.ID, Kind: u.Kind, Node: host, Started: time.Now().UTC(), Attempts: 1}
	defer func() { o.Finished = time.Now().UTC() }()
	if err := u.check(); err != nil {
		o.Status, o.Error = StatusInfra, err.Error()
		return o
	}
	switch u.Kind {
	case KindBuild:
		executeBuild(ctx, u.Build, &o)
	case KindRun:
		executeRun(ctx, u.Run, &o)
	}
	return o
}

func executeBuild(ctx context.Context, b *BuildUnit, o *Outcome) {
	br, err := build.Build(ctx, b.Request())
	if err != nil {
		o.Error = err.Error()
		switch build.Classify(err) {
		case build.ClassNoApply:
			o.Status = StatusNoApply
		case build.ClassNoBuild:
			o.Status = StatusNoBuild
		case build.ClassBadInput:
			o.Status = StatusBadInput
		default:
			o.Status = StatusInfra
		}
		return
	}
	o.Status, o.Build = StatusBuilt, br
}

func executeRun(ctx context.Context, r *RunUnit, o *Outcome) {
	s, err := suites.Load(r.Suite)
	if err != nil {
		o.Status, o.Error = StatusInfra, err.Error()
		return
	}
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(r.Timeout))
		defer cancel()
	}
	spec := job.Spec{
		Kernel: r.Kernel, ModulesDir: r.ModulesDir, Modules: r.Modules, ExtraModules: r.ExtraModules,
		InitrdExtra: r.InitrdExtra, Suite: s, Out: r.Out, Append: r.Append, Accel: r.Accel, Boot: r.Boot,
		MemoryMB: r.MemoryMB, CPUs: r.CPUs, BootTimeout: time.Duration(r.BootTimeout),
		NoOutputTimeout: time.Duration(r.NoOutputTimeout), Label: r.Label, SourceRoot: r.SourceRoot, Lustre: r.Lustre,
	}
	if r.Vmlinux != "" {
		var dirs []string
		if r.ModulesDir != "" {
			dirs = append(dirs, r.ModulesDir)
		}
		if sym, err := symbolize.New(r.Vmlinux, dirs...); err == nil {
			spec.Symbolizer = sym
			defer sym.Close()
		}
	}
	res, dir, err := job.Run(ctx, spec)
	o.RunDir = dir
	if err != nil {
		o.Status, o.Error = StatusInfra, err.Error()
		return
	}
	o.Status, o.Accel = string(res.Status), res.Accel
	if res.Status == results.StatusInfra {
		o.Error = res.Reason
	}
}

// unitFile names unit i of a batch directory.
func unitFile(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("unit-%d.json", i))
}

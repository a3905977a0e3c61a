package history

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kregress/kregress/results"
)

// RunDir is a run directory as read back from disk: a single run (Run set)
// or a series (Series set, its steps' run directories in Steps).
type RunDir struct {
	// Path is the directory.
	Path string
	// Run is a single run's result.json.
	Run *results.Result
	// Series is a series directory's result.json.
	Series *Series
	// Steps are the run directories of the series' steps, keyed by
	// their path as the series' result.json names it.
	Steps map[string]*results.Result
}

// Series is the on-disk form of a series directory's result.json, as
// job.TestSeries writes it (job.SeriesResult); only the fields the record
// and the reports read. A test in this package decodes a job.SeriesResult
// into it, so the two cannot drift apart silently.
type Series struct {
	Status      string       `json:"status"`
	Reason      string       `json:"reason,omitempty"`
	Source      string       `json:"source"`
	BaseRef     string       `json:"base_ref,omitempty"`
	Series      string       `json:"series"`
	Configs     []string     `json:"configs"`
	Suites      []string     `json:"suites"`
	Started     time.Time    `json:"started"`
	WallSeconds float64      `json:"wall_seconds"`
	Base        *Step        `json:"base"`
	Patches     []*PatchStep `json:"patches"`
	FirstBad    *FirstBad    `json:"first_bad"`
	// Target, Kernel and Client as in results.SeriesResult: the tree the
	// series applies to, the distribution kernel booted, the client tree.
	Target string `json:"target,omitempty"`
	Kernel string `json:"kernel,omitempty"`
	Client string `json:"client,omitempty"`
}

// Step is one built and tested kernel of a series (job.Step).
type Step struct {
	Verdict      string            `json:"verdict"`
	Message      string            `json:"message,omitempty"`
	BuildKey     string            `json:"build_key,omitempty"`
	BuildSeconds float64           `json:"build_seconds"`
	Incremental  bool              `json:"incremental"`
	Kernel       string            `json:"kernel,omitempty"`
	Runs         []string          `json:"runs,omitempty"`
	Tests        map[string]string `json:"tests,omitempty"`
	Crashes      []StepCrash       `json:"crashes"`
}

// PatchStep is the step that ends with a patch (job.PatchVerdict).
type PatchStep struct {
	Index   int    `json:"index"`
	Subject string `json:"subject"`
	Step
}

// StepCrash is a crash seen at a step (job.SeriesCrash): new, or
// pre-existing when the base shows it too.
type StepCrash struct {
	results.Crash
	Status string `json:"status"`
	Run    string `json:"run"`
}

// FirstBad names the first patch whose verdict is not pass (job.FirstBad).
type FirstBad struct {
	Index     int    `json:"index"`
	Subject   string `json:"subject"`
	Verdict   string `json:"verdict"`
	Title     string `json:"title,omitempty"`
	Reproduce string `json:"reproduce"`
}

// Load reads the run directory dir: a single run or a series.
func Load(dir string) (*RunDir, error) {
	data, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		return nil, fmt.Errorf("history: read run dir: %w", err)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("history: %s: %w", filepath.Join(dir, "result.json"), err)
	}
	rd := &RunDir{Path: dir}
	if _, ok := probe["patches"]; !ok {
		r, err := results.ReadResult(dir)
		if err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
		rd.Run = r
		return rd, nil
	}
	var s Series
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("history: %s: %w", filepath.Join(dir, "result.json"), err)
	}
	rd.Series = &s
	rd.Steps = map[string]*results.Result{}
	for _, st := range s.Steps() {
		for _, run := range st.Runs {
			p := rd.Resolve(run)
			r, err := results.ReadResult(p)
			if err != nil {
				return nil, fmt.Errorf("history: series %s: step run: %w", dir, err)
			}
			rd.Steps[run] = r
		}
	}
	return rd, nil
}

// Resolve returns where a path the series' result.json names lives now:
// as written when it exists, else the same relative place under the
// series directory (the series directory was moved or copied).
func (rd *RunDir) Resolve(p string) string {
	if _, err := os.Stat(p); err == nil {
		return p
	}
	// Series paths are <out>/<series dir>/<step>/<run dir>: keep the last
	// two elements.
	step := filepath.Base(filepath.Dir(p))
	return filepath.Join(rd.Path, step, filepath.Base(p))
}

// Steps returns the base (when it ran) and the tested patches, in order.
func (s *Series) Steps() []*Step {
	var out []*Step
	if s.Base != nil {
		out = append(out, s.Base)
	}
	for _, p := range s.Patches {
		out = append(out, &p.Step)
	}
	return out
}

// Tip is the last tested patch's step, or the base when no patch ran.
func (s *Series) Tip() *Step {
	if len(s.Patches) > 0 {
		var tip *PatchStep
		for _, p := range s.Patches {
			if tip == nil || p.Index > tip.Index {
				tip = p
			}
		}
		return &tip.Step
	}
	return s.Base
}

package history

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

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
	Series *results.SeriesResult
	// Steps are the run directories of the series' steps, keyed by
	// their path as the series' result.json names it.
	Steps map[string]*results.Result
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
	var s results.SeriesResult
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

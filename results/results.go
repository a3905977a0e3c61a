// Package results owns a run's directory and its index, result.json: what
// ran, on which kernel and accelerator, how each test went, and which
// crashes the console showed. A run directory is the unit kregress keeps;
// everything else (summaries, history) is derived from run directories.
//
// Crash triage, which turns console text into reports, lives in the
// subpackage triage.
package results

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kregress/kregress/results/triage"
)

// Status is the outcome of a run, of a test, or of a series.
type Status string

// Status values of a run and of a test.
const (
	StatusPass  Status = "pass"
	StatusFail  Status = "fail"
	StatusCrash Status = "crash"
	StatusInfra Status = "infra"
	// StatusTimeout, StatusSkip and StatusInterrupted are per-test only.
	StatusTimeout Status = "timeout"
	StatusSkip    Status = "skip"
	// StatusInterrupted: the test did not finish for a reason outside
	// it (the VM died unexplained, a signal, the overall time limit).
	StatusInterrupted Status = "interrupted"
	// StatusRegression is a series' only: a patch is worse than the base.
	StatusRegression Status = "regression"
)

// Failed reports whether a test with this status counts as failing:
// anything but pass, skip and interrupted (which ended for a reason
// outside the test, and makes its run infrastructure).
func (s Status) Failed() bool { return s != StatusPass && s != StatusSkip && s != StatusInterrupted }

// Result is the content of result.json.
type Result struct {
	Status  Status `json:"status"`           // pass, fail, crash, infra
	Reason  string `json:"reason,omitempty"` // why, for anything but pass
	Outcome string `json:"outcome,omitempty"`
	// Host is the machine that ran the VM (a cluster node).
	Host        string `json:"host,omitempty"`
	Accel       string `json:"accel"`
	AccelReason string `json:"accel_reason,omitempty"`
	// Boot is how QEMU entered the kernel: "pvh" (the bzImage's vmlinux,
	// directly) or "bzimage".
	Boot        string    `json:"boot,omitempty"`
	Kernel      string    `json:"kernel"`
	Release     string    `json:"kernel_release,omitempty"`
	Suite       string    `json:"suite,omitempty"`
	Started     time.Time `json:"started"`
	BootSeconds float64   `json:"boot_seconds"`
	WallSeconds float64   `json:"wall_seconds"`
	Tests       []Test    `json:"tests"`
	Crashes     []Crash   `json:"crashes"`
	ConsoleLog  string    `json:"console_log"`
	// ConsoleTail holds the last console lines when the run ended early
	// (timeouts, silence, infrastructure failure).
	ConsoleTail []string `json:"console_tail,omitempty"`
}

// Test is one test's verdict.
type Test struct {
	Name     string  `json:"name"`
	Status   Status  `json:"status"` // pass, fail, timeout, crash, skip, interrupted
	Seconds  float64 `json:"seconds"`
	ExitCode int     `json:"exit_code"`
	Expected int     `json:"expected_exit"`
	Output   string  `json:"output,omitempty"` // file in the run dir
	Message  string  `json:"message,omitempty"`
	// Metrics are a workload's figures (ops/s, errors by errno).
	Metrics map[string]any `json:"metrics,omitempty"`
}

// Crash is one distinct crash seen on the console.
type Crash struct {
	Title     string   `json:"title"`
	AltTitles []string `json:"alt_titles,omitempty"`
	Type      string   `json:"type"`
	Corrupted bool     `json:"corrupted"`
	Frames    []string `json:"frames,omitempty"`
	// StartLine and EndLine are 1-based lines of console.log.
	StartLine int `json:"start_line"`
	EndLine   int `json:"end_line"`
	Count     int `json:"count"`
	// Report is the report's text as extracted from the console.
	Report string `json:"report"`
	// Lockdep is the structured lockdep report, for lockdep splats.
	Lockdep *triage.Lockdep `json:"lockdep,omitempty"`
	// Stack is every frame of the report, symbolized (file:line, inlined
	// frames) when the kernel's vmlinux was at hand.
	Stack []triage.Frame `json:"stack,omitempty"`
}

// Identity is what tells c from other crashes (see triage.SameCrash).
func (c Crash) Identity() triage.Identity {
	return triage.Identity{Title: c.Title, AltTitles: c.AltTitles, Corrupted: c.Corrupted}
}

// CrashesFrom turns triage reports into result entries, one per bug as
// triage.Deduper merges them (titles or alternative titles meet), each
// keeping its first report, in order of first sighting.
func CrashesFrom(reps []triage.Report) []Crash {
	var d triage.Deduper
	out := []Crash{}
	index := map[*triage.Bug]int{}
	for _, r := range reps {
		b := d.Add(r, triage.Sighting{Line: r.StartLine})
		if i, ok := index[b]; ok {
			out[i].Count = b.Count
			continue
		}
		index[b] = len(out)
		out = append(out, Crash{
			Title: r.Title, AltTitles: r.AltTitles, Type: r.Type, Corrupted: r.Corrupted,
			Frames: r.Frames, StartLine: r.StartLine, EndLine: r.EndLine, Count: 1, Report: r.Report,
			Lockdep: r.Lockdep, Stack: r.Stack,
		})
	}
	return out
}

// Dir is one run's directory.
type Dir struct {
	Path string
}

// NewDir creates a fresh run directory under root, named by time, a label
// and a random suffix so parallel runs never clash.
func NewDir(root, label string) (*Dir, error) {
	var b [3]byte
	rand.Read(b[:])
	label = strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r < 32 {
			return '-'
		}
		return r
	}, label)
	name := time.Now().UTC().Format("20060102-150405") + "-" + label + "-" + hex.EncodeToString(b[:])
	p := filepath.Join(root, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		return nil, fmt.Errorf("results: create run dir: %w", err)
	}
	return &Dir{Path: p}, nil
}

// File returns the path of a file in the run directory.
func (d *Dir) File(name string) string { return filepath.Join(d.Path, name) }

// WriteFile writes a file into the run directory atomically.
func (d *Dir) WriteFile(name string, data []byte) error {
	return WriteAtomic(d.File(name), data)
}

// WriteResult writes result.json atomically.
func (d *Dir) WriteResult(r *Result) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("results: encode result.json: %w", err)
	}
	return d.WriteFile("result.json", append(data, '\n'))
}

// ReadResult reads a run directory's result.json.
func ReadResult(dir string) (*Result, error) {
	data, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("results: %s: %w", filepath.Join(dir, "result.json"), err)
	}
	return &r, nil
}

// WriteAtomic writes data to path through a temporary file and a rename,
// so readers see the old content or the new, never a part.
func WriteAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600: give it the mode of every other
	// file kregress writes.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("results: write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("results: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("results: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

// Summary writes a human summary of r.
func Summary(w io.Writer, r *Result, dir string) {
	fmt.Fprintf(w, "kernel   %s (%s)\n", r.Kernel, r.Release)
	fmt.Fprintf(w, "accel    %s", r.Accel)
	if r.AccelReason != "" {
		fmt.Fprintf(w, " (%s)", r.AccelReason)
	}
	fmt.Fprintf(w, "\nboot     %.1fs", r.BootSeconds)
	if r.Boot != "" {
		fmt.Fprintf(w, " (%s)", r.Boot)
	}
	fmt.Fprintf(w, ", wall %.1fs\n", r.WallSeconds)
	if len(r.Tests) > 0 {
		fmt.Fprintf(w, "tests    (%s)\n", r.Suite)
		for _, t := range r.Tests {
			extra := ""
			if t.Status != StatusPass && t.Message != "" {
				extra = "  " + t.Message
			}
			fmt.Fprintf(w, "  %-11s %-28s %6.2fs  exit %d%s\n", strings.ToUpper(string(t.Status)), t.Name, t.Seconds, t.ExitCode, extra)
		}
	}
	for _, c := range r.Crashes {
		fmt.Fprintf(w, "CRASH    %s  [%s, console.log lines %d-%d", c.Title, c.Type, c.StartLine, c.EndLine)
		if c.Count > 1 {
			fmt.Fprintf(w, ", seen %d times", c.Count)
		}
		fmt.Fprintln(w, "]")
	}
	if r.Status == StatusInfra && len(r.ConsoleTail) > 0 {
		fmt.Fprintln(w, "console tail:")
		for _, l := range r.ConsoleTail {
			fmt.Fprintf(w, "  | %s\n", l)
		}
	}
	fmt.Fprintf(w, "status   %s", strings.ToUpper(string(r.Status)))
	if r.Reason != "" {
		fmt.Fprintf(w, ": %s", r.Reason)
	}
	fmt.Fprintf(w, "\nresults  %s\n", dir)
}

// CopyFile copies the file src to dst (mode 0644), atomically as
// WriteAtomic writes.
func CopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("results: copy: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return fmt.Errorf("results: copy %s: %w", src, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("results: copy %s to %s: %w", src, dst, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("results: copy %s to %s: %w", src, dst, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("results: copy %s to %s: %w", src, dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("results: copy %s to %s: %w", src, dst, err)
	}
	return nil
}

package results

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// BisectResult is a bisection's run directory's result.json.
type BisectResult struct {
	// Status is pass when a culprit was found ("the search passed"),
	// infra when the search could not finish, and fail when it ended
	// inconclusive (only skipped changes were left).
	Status Status `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Mode is "series" (prefixes of a patch series) or "git" (a commit
	// range).
	Mode    string   `json:"mode"`
	Source  string   `json:"source"`
	Series  string   `json:"series,omitempty"`
	Good    string   `json:"good"`
	Bad     string   `json:"bad"`
	Configs []string `json:"configs"`
	Suites  []string `json:"suites"`
	// Crash is the title bisected ("" with AnyCrash).
	Crash    string `json:"crash,omitempty"`
	AnyCrash bool   `json:"any_crash"`
	// Culprit is the first bad change; nil when inconclusive.
	Culprit *Culprit `json:"culprit"`
	// Candidates are what the culprit could be when skipped steps left
	// several.
	Candidates []string     `json:"candidates,omitempty"`
	Steps      []BisectStep `json:"steps"`
	Builds     int          `json:"builds"`
	Runs       int          `json:"runs"`
	// RunsPerStep is the run count the search started with.
	RunsPerStep int     `json:"runs_per_step"`
	Confidence  float64 `json:"confidence"`
	CrashRate   float64 `json:"crash_rate"`
	Flaky       bool    `json:"flaky"`
	Reliable    bool    `json:"reliable"`
	// Log is the bisect log's file in the run directory (git mode).
	Log         string    `json:"log,omitempty"`
	Started     time.Time `json:"started"`
	WallSeconds float64   `json:"wall_seconds"`
}

// Culprit names the change a bisection found.
type Culprit struct {
	// ID is the commit hash (git) or the patch index (series).
	ID      string `json:"id"`
	Index   int    `json:"index,omitempty"`
	Subject string `json:"subject"`
	Author  string `json:"author,omitempty"`
	// Signature and ParentSignature hash the allocated sections of the
	// culprit's and its parent's kernel and modules; SameImage says they
	// are equal, which makes the result suspect.
	Signature       string `json:"signature,omitempty"`
	ParentSignature string `json:"parent_signature,omitempty"`
	SameImage       bool   `json:"same_image"`
	// Reproduce boots the culprit's kernel with the suites again.
	Reproduce string `json:"reproduce,omitempty"`
}

// BisectStep is one tested step.
type BisectStep struct {
	ID      string `json:"id"`
	Label   string `json:"label"` // "patch 3/4 \"subject\"" or "abcdef012345 subject"
	Verdict string `json:"verdict"`
	Bad     int    `json:"bad"`
	Good    int    `json:"good"`
	Other   int    `json:"other"`
	Infra   int    `json:"infra"`
	Reason  string `json:"reason,omitempty"`
	// Crashes are the titles seen at this step, the bisected one and
	// others.
	Crashes []string `json:"crashes,omitempty"`
	// Dir is the step's folder in the run directory.
	Dir string `json:"dir,omitempty"`
}

// BisectSummary writes a bisection's outcome for a terminal.
func BisectSummary(w io.Writer, r *BisectResult, dir string) {
	what := r.Crash
	if r.AnyCrash || what == "" {
		what = "any crash"
	}
	fmt.Fprintf(w, "bisect %s %s..%s of %s for %q (%d runs per step)\n", r.Mode, r.Good, r.Bad, r.Source, what, r.RunsPerStep)
	fmt.Fprintf(w, "  %-40s %-7s %5s %5s %5s %5s  %s\n", "step", "verdict", "bad", "good", "other", "infra", "note")
	for _, s := range r.Steps {
		note := s.Reason
		if note == "" && len(s.Crashes) > 0 {
			note = strings.Join(s.Crashes, "; ")
		}
		fmt.Fprintf(w, "  %-40s %-7s %5d %5d %5d %5d  %s\n", truncate(s.Label, 40), s.Verdict, s.Bad, s.Good, s.Other, s.Infra, firstLine(note))
	}
	fmt.Fprintln(w)
	switch {
	case r.Culprit != nil:
		c := r.Culprit
		fmt.Fprintf(w, "culprit: %s %q", c.ID, c.Subject)
		if c.Author != "" {
			fmt.Fprintf(w, " by %s", c.Author)
		}
		fmt.Fprintln(w)
		if c.SameImage {
			fmt.Fprintln(w, "  suspect: the culprit's kernel image is the same as its parent's (allocated sections of vmlinux and modules hash alike)")
		}
		if c.Reproduce != "" {
			fmt.Fprintf(w, "  reproduce: %s\n", c.Reproduce)
		}
	case len(r.Candidates) > 0:
		fmt.Fprintf(w, "inconclusive: skipped steps leave %d candidates: %s\n", len(r.Candidates), strings.Join(r.Candidates, ", "))
	}
	rel := "reliable"
	if !r.Reliable {
		rel = "UNRELIABLE"
	}
	if r.Culprit == nil {
		fmt.Fprintf(w, "builds %d, runs %d, crash rate %.2f, no culprit\n", r.Builds, r.Runs, r.CrashRate)
	} else {
		fmt.Fprintf(w, "builds %d, runs %d, crash rate %.2f, confidence %.3f (%s)\n", r.Builds, r.Runs, r.CrashRate, r.Confidence, rel)
	}
	fmt.Fprintf(w, "\nstatus   %s", strings.ToUpper(string(r.Status)))
	if r.Reason != "" {
		fmt.Fprintf(w, ": %s", r.Reason)
	}
	fmt.Fprintf(w, "\nwall     %.0fs\nresults  %s\n", r.WallSeconds, dir)
}

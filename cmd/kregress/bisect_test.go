package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBisectExitCode(t *testing.T) {
	for _, tc := range []struct {
		phase, code, want int
	}{
		{phaseInput, exitOK, 0},      // --help
		{phaseInput, exitInfra, 128}, // bad input aborts git bisect run
		{phaseBuild, exitFail, 125},  // does not apply or build: skip
		{phaseBuild, exitInfra, 125},
		{phaseRun, exitOK, 0},
		{phaseRun, exitFail, 1}, // a crash or a failed test: bad
		{phaseRun, exitInfra, 125},
	} {
		if got := bisectExitCode(tc.phase, tc.code); got != tc.want {
			t.Errorf("bisectExitCode(%d, %d) = %d, want %d", tc.phase, tc.code, got, tc.want)
		}
	}
}

func TestRunBisectExitCodesBadInput(t *testing.T) {
	var out, errb bytes.Buffer
	if code := mainWithArgs([]string{"run", "--bisect-exit-codes", "--kernel", "/nonexistent/bzImage"}, &out, &errb); code != 128 {
		t.Errorf("bad input with --bisect-exit-codes: exit %d, want 128 (git bisect run aborts)", code)
	}
}

func TestBisectCommandBadInput(t *testing.T) {
	for name, args := range map[string][]string{
		"good without bad":       {"--source", t.TempDir(), "--good", "v1"},
		"no series and no range": {"--source", t.TempDir()},
		"range on a non-git":     {"--source", t.TempDir(), "--good", "a", "--bad", "b"},
		"crash and any-crash":    {"--source", t.TempDir(), "--series", "x", "--crash", "BUG", "--any-crash"},
		"zero runs":              {"--source", t.TempDir(), "--series", "x", "--runs", "0"},
	} {
		out := t.TempDir()
		var stdout, stderr bytes.Buffer
		code := mainWithArgs(append([]string{"bisect", "--out", out}, args...), &stdout, &stderr)
		if code != exitInfra || !strings.HasPrefix(stderr.String(), "kregress bisect: ") || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q: want one line and exit 2", name, code, stderr.String())
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Errorf("%s: left %s", name, filepath.Join(out, entries[0].Name()))
		}
	}
}

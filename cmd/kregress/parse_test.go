package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kregress/kregress/results/triage"
)

const sysrqLog = "../../results/triage/testdata/kernel/sysrq-crash-debian-6.1.log"

func runKregress(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = mainWithArgs(args, &o, &e)
	return code, o.String(), e.String()
}

func TestParseJSON(t *testing.T) {
	clean := filepath.Join(t.TempDir(), "clean.log")
	if err := os.WriteFile(clean, []byte("[    0.000000] Linux version 6.1.0\n[    1.000000] Run /init as init process\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runKregress("parse", "--json", clean)
	if code != exitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("clean log: exit %d, stdout %q, stderr %q; want 0 and []", code, out, errOut)
	}

	code, out, _ = runKregress("parse", "--json", sysrqLog)
	var one []map[string]any
	if err := json.Unmarshal([]byte(out), &one); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, out)
	}
	if code != exitFail || len(one) != 1 || one[0]["title"] != "kernel panic: sysrq triggered crash" {
		t.Fatalf("sysrq log: exit %d, reports %v", code, one)
	}
	for _, k := range []string{"title", "alt_titles", "type", "corrupted", "frames", "start_line", "end_line", "report"} {
		if _, ok := one[0][k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}

	code, out, _ = runKregress("parse", "--json", sysrqLog, clean)
	var many [][]map[string]any
	if err := json.Unmarshal([]byte(out), &many); err != nil {
		t.Fatalf("stdout is not a JSON array of arrays: %v\n%s", err, out)
	}
	if code != exitFail || len(many) != 2 || len(many[0]) != 1 || len(many[1]) != 0 {
		t.Errorf("two logs: exit %d, got %v", code, many)
	}
}

func TestParseSummary(t *testing.T) {
	code, out, _ := runKregress("parse", sysrqLog)
	if code != exitFail || !strings.Contains(out, "kernel panic: sysrq triggered crash") || !strings.Contains(out, "lines 360-404") {
		t.Errorf("exit %d, summary:\n%s", code, out)
	}
}

func TestParseBadInput(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.log")
	code, out, errOut := runKregress("parse", "--json", sysrqLog, missing)
	if code != exitInfra || out != "" || !strings.Contains(errOut, missing) {
		t.Errorf("missing log: exit %d, stdout %q, stderr %q; want 2, nothing, an error naming it", code, out, errOut)
	}
	if code, _, _ := runKregress("parse"); code != exitInfra {
		t.Errorf("no args: exit %d, want 2", code)
	}
	if code, _, _ := runKregress("parse", "--vmlinux", missing, sysrqLog); code != exitInfra {
		t.Errorf("missing vmlinux: exit %d, want 2", code)
	}
	if code, out, _ := runKregress("parse", "--help"); code != exitOK || !strings.Contains(out, "usage: kregress parse") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
}

// TestParseModulesMissing: a --modules directory that does not exist is
// bad input (exit 2, nothing on stdout), as a missing --vmlinux is.
func TestParseModulesMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nonexistent")
	code, out, errOut := runKregress("parse", "--modules", missing, sysrqLog)
	if code != exitInfra || out != "" || !strings.Contains(errOut, missing) {
		t.Errorf("missing --modules: exit %d, stdout %q, stderr %q; want 2, nothing, an error naming it", code, out, errOut)
	}
	code, out, errOut = runKregress("parse", "--modules", sysrqLog, sysrqLog)
	if code != exitInfra || out != "" || !strings.Contains(errOut, "not a directory") {
		t.Errorf("--modules on a file: exit %d, stdout %q, stderr %q; want 2, nothing, 'not a directory'", code, out, errOut)
	}
	code, out, errOut = runKregress("parse", "--json", filepath.Dir(sysrqLog))
	if code != exitInfra || out != "" || !strings.Contains(errOut, "is a directory") {
		t.Errorf("a directory as log: exit %d, stdout %q, stderr %q; want 2", code, out, errOut)
	}
}

// TestParseJSONStreamedAsEncoded: the JSON written report by report is
// byte for byte what encoding all of Parse's reports at once gives, for
// one log and for several.
func TestParseJSONStreamedAsEncoded(t *testing.T) {
	logs, err := filepath.Glob("../../results/triage/testdata/kernel/*.log")
	if err != nil || len(logs) < 2 {
		t.Fatalf("testdata logs: %v %v", logs, err)
	}
	clean := filepath.Join(t.TempDir(), "clean.log")
	if err := os.WriteFile(clean, []byte("[    0.000000] Linux version 6.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs = append(logs, clean)
	encode := func(v any) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	var all [][]triage.Report
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		reps := triage.Parse(data)
		if reps == nil {
			reps = []triage.Report{}
		}
		all = append(all, reps)
		_, out, _ := runKregress("parse", "--json", path)
		if want := encode(reps); out != want {
			t.Errorf("%s: streamed JSON differs from encoded Parse:\n%s\nwant:\n%s", path, out, want)
		}
	}
	_, out, _ := runKregress(append([]string{"parse", "--json"}, logs...)...)
	if want := encode(all); out != want {
		t.Errorf("several logs: streamed JSON differs from encoded Parse:\n%s\nwant:\n%s", out, want)
	}
}

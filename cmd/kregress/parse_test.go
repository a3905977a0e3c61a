package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

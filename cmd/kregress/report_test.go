package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportAndHistoryCommands(t *testing.T) {
	run := "../../results/report/testdata/runs/sysrq-crash"
	out := t.TempDir()
	var so, se bytes.Buffer
	// Bad input: exit 2, nothing written.
	for _, args := range [][]string{
		{"report"},
		{"report", run},
		{"report", "--html", filepath.Join(out, "x.html"), filepath.Join(out, "no-such-run")},
		{"report", "--email", filepath.Join(out, "x.eml"), "--html", filepath.Join(out, "x.html"), "../../results/report/testdata/runs/smoke"},
		{"history", "--db", filepath.Join(out, "h.db"), "--add", filepath.Join(out, "no-such-run")},
		{"history", "--runs", out},
	} {
		if code := mainWithArgs(args, &so, &se); code != exitInfra {
			t.Errorf("%q: exit %d, want %d", args, code, exitInfra)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("bad input wrote %d files", len(ents))
	}
	args := []string{"report", "--html", filepath.Join(out, "r.html"), "--junit", filepath.Join(out, "r.xml"),
		"--kcidb", filepath.Join(out, "r.json"), "--email", filepath.Join(out, "r.eml"), run}
	if code := mainWithArgs(args, &so, &se); code != exitOK {
		t.Fatalf("report: exit %d: %s", code, se.String())
	}
	for _, f := range []string{"r.html", "r.xml", "r.json", "r.eml"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// history: record a copy of the run, list it as JSON.
	db := filepath.Join(t.TempDir(), "h.db")
	runs := t.TempDir()
	copyDir(t, run, filepath.Join(runs, "r1"))
	so.Reset()
	if code := mainWithArgs([]string{"history", "--db", db, "--job", "nightly", "--add", filepath.Join(runs, "r1")}, &so, &se); code != exitOK {
		t.Fatalf("history --add: exit %d: %s", code, se.String())
	}
	so.Reset()
	if code := mainWithArgs([]string{"history", "--db", db, "--bug", "sysrq"}, &so, &se); code != exitOK {
		t.Fatalf("history: exit %d: %s", code, se.String())
	}
	if !strings.Contains(so.String(), "kernel panic: sysrq triggered crash") || !strings.Contains(so.String(), "nightly") {
		t.Errorf("history table:\n%s", so.String())
	}
	so.Reset()
	if code := mainWithArgs([]string{"history", "--db", db, "--rebuild"}, &so, &se); code != exitOK {
		t.Fatalf("history --rebuild: exit %d: %s", code, se.String())
	}
	so.Reset()
	mainWithArgs([]string{"history", "--db", db, "--json", "--job", "nightly"}, &so, &se)
	if !strings.Contains(so.String(), `"job": "nightly"`) {
		t.Errorf("after rebuild the run lost its job:\n%s", so.String())
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

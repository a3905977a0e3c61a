package suites

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kregress/kregress/internal/golden"
)

func TestBuiltinSuitesParse(t *testing.T) {
	names := Builtin()
	if len(names) == 0 {
		t.Fatal("no shipped suites")
	}
	for _, n := range names {
		s, err := Load(n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if s.Name != n {
			t.Errorf("suite file %s names itself %q", n, s.Name)
		}
	}
	if s, _ := Load("lustre-lookup"); s == nil || s.Target != TargetLustre || s.LustreTree == "" {
		t.Errorf("lustre-lookup: %+v, want a lustre suite with its own tree", s)
	}
	s, _ := Load("smoke")
	if s.Target != TargetTmpfs || len(s.Tests) < 5 {
		t.Errorf("smoke: target %s, %d tests", s.Target, len(s.Tests))
	}
}

func TestParseFields(t *testing.T) {
	s, err := Parse("t.yaml", []byte(`name: t
target: none
timeout: 5s
setup: [echo a, echo b]
tests:
  - name: one
    run: "true"
  - name: two
    workload: stat
    threads: 4
    duration: 3s
    timeout: 10s
    expect: 1
    repeat: 2
    args: {names: "8", missing: "yes"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Setup != "echo a\necho b" || s.Timeout != 5*time.Second || s.Tests[0].Timeout != 5*time.Second || s.Network {
		t.Errorf("suite fields: %+v", s)
	}
	w := s.Tests[1]
	if w.Workload != "stat" || w.Threads != 4 || w.Duration != 3*time.Second || w.Expect != 1 || w.Repeat != 2 || w.Args["names"] != "8" || w.Line != 8 {
		t.Errorf("test fields: %+v", w)
	}
}

// A suite has a network when it says so or targets lustre.
func TestNetwork(t *testing.T) {
	for src, want := range map[string]bool{
		"name: x\ntests:\n  - {name: a, run: x}\n":                 false,
		"name: x\nnetwork: true\ntests:\n  - {name: a, run: x}\n":  true,
		"name: x\nnetwork: false\ntests:\n  - {name: a, run: x}\n": false,
		"name: x\nnetwork: True\ntests:\n  - {name: a, run: x}\n":  true,
		"name: x\ntarget: lustre\ntests:\n  - {name: a, run: x}\n": true,
	} {
		s, err := Parse("f.yaml", []byte(src))
		if err != nil || s.Network != want {
			t.Errorf("%q: network %v (%v), want %v", src, s != nil && s.Network, err, want)
		}
	}
}

func TestParseErrorsCarryPosition(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"unknown key", "name: x\ntests:\n  - name: a\n    rnu: true\n", "f.yaml:4:5: unknown key \"rnu\""},
		{"wrong type", "name: x\ntests:\n  - name: a\n    run: x\n    threads: many\n", "f.yaml:5:14: want an integer"},
		{"bad duration", "name: x\ntimeout: soon\ntests:\n  - {name: a, run: x}\n", "f.yaml:2:10: want a positive duration"},
		{"missing tests", "name: x\n", "f.yaml:1:1: suite is missing required key \"tests\""},
		{"no run", "name: x\ntests:\n  - name: a\n", "f.yaml:3:5: test \"a\" needs run or workload"},
		{"both", "name: x\ntests:\n  - {name: a, run: x, workload: stat}\n", "workload"},
		{"bad workload", "name: x\ntests:\n  - {name: a, workload: fly}\n", "f.yaml:3:25: unknown workload \"fly\""},
		{"bad target", "name: x\ntarget: nfs9\ntests:\n  - {name: a, run: x}\n", "f.yaml:2:9: unknown target"},
		{"dup test", "name: x\ntests:\n  - {name: a, run: x}\n  - {name: a, run: y}\n", "f.yaml:4:5: duplicate test name"},
		{"syntax", "name: x\ntests: [\n", "f.yaml:3:1: YAML syntax"},
		{"timeout below duration", "name: x\ntests:\n  - {name: a, workload: stat, duration: 10s, timeout: 5s}\n", "must exceed duration"},
		{"not a mapping", "- a\n- b\n", "f.yaml:1:1: suite must be a mapping"},
		{"lustre-tree off lustre", "name: x\nlustre-tree: dirs=1\ntests:\n  - {name: a, run: x}\n", "f.yaml:2:14: lustre-tree is for target lustre"},
		{"bad network", "name: x\nnetwork: sometimes\ntests:\n  - {name: a, run: x}\n", "f.yaml:2:10: want true or false"},
		{"bad lustre-tree", "name: x\ntarget: lustre\nlustre-tree: dirs=1,fils=2\ntests:\n  - {name: a, run: x}\n", "f.yaml:3:14: lustre-tree: namespace: generate spec"},
	}
	for _, c := range cases {
		_, err := Parse("f.yaml", []byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func TestLoadUnknown(t *testing.T) {
	if _, err := Load("nosuchsuite"); err == nil || !strings.Contains(err.Error(), "smoke") {
		t.Errorf("unknown suite: %v", err)
	}
	if _, err := Load("/nonexistent/s.yaml"); err == nil || !strings.Contains(err.Error(), "/nonexistent/s.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

// TestSyntaxErrorGolden parses each broken suite under testdata/broken
// and compares its error with the .golden file next to it (go test
// -update rewrites them). Each error must name the real line and column.
func TestSyntaxErrorGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/broken/*.yaml")
	if len(files) < 10 {
		t.Fatalf("want the broken suites under testdata/broken, found %d", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err = Parse(f, data)
			if err == nil {
				t.Fatalf("%s: parsed without error", f)
			}
			golden.Bytes(t, strings.TrimSuffix(f, ".yaml")+".golden", []byte(err.Error()+"\n"))
		})
	}
}

// TestLoadExistingFileWins: a name that is an existing file loads that
// file, even without "/" or "." in it and even when a shipped suite has
// that name.
func TestLoadExistingFileWins(t *testing.T) {
	t.Chdir(t.TempDir())
	os.WriteFile("mysuite", []byte("name: mine\ntests:\n  - {name: a, run: x}\n"), 0o644)
	os.WriteFile("smoke", []byte("name: local-smoke\ntests:\n  - {name: a, run: x}\n"), 0o644)
	os.Mkdir("stat", 0o755) // a folder is not a suite file: the shipped suite
	for name, want := range map[string]string{"mysuite": "mine", "smoke": "local-smoke", "stat": "stat"} {
		s, err := Load(name)
		if err != nil || s.Name != want {
			t.Errorf("Load(%q) = %v, %v; want suite %q", name, s, err, want)
		}
	}
	if s, _ := Load("mysuite"); s != nil && s.File != "mysuite" {
		t.Errorf("Load(mysuite).File = %q", s.File)
	}
}

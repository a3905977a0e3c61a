package results

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kregress/kregress/results/triage"
)

// A real console log (the stock Debian kernel crashed with sysrq) gives one
// crash entry; the same report seen again counts, not duplicates.
func TestCrashesFromDedups(t *testing.T) {
	log, err := os.ReadFile("triage/testdata/kernel/sysrq-crash-debian-6.1.log")
	if err != nil {
		t.Fatal(err)
	}
	reps := triage.Parse(log)
	if len(reps) == 0 {
		t.Fatal("no report in the sysrq log")
	}
	twice := append(append([]triage.Report{}, reps...), reps...)
	cs := CrashesFrom(twice)
	if len(cs) != len(CrashesFrom(reps)) {
		t.Fatalf("deduped %d reports into %d entries", len(twice), len(cs))
	}
	if cs[0].Count != 2 || cs[0].Title != reps[0].Title || cs[0].StartLine != reps[0].StartLine {
		t.Errorf("entry %+v", cs[0])
	}
}

func TestRunDirAndResultRoundTrip(t *testing.T) {
	root := t.TempDir()
	d1, err := NewDir(root, "smoke/x")
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := NewDir(root, "smoke/x")
	if d1.Path == d2.Path || strings.Contains(filepath.Base(d1.Path), "/") {
		t.Errorf("run dirs %s, %s", d1.Path, d2.Path)
	}
	r := &Result{Status: StatusPass, Accel: "tcg", Kernel: "k", BootSeconds: 1.5,
		Tests: []Test{{Name: "a", Status: StatusPass}}, Crashes: []Crash{}}
	if err := d1.WriteResult(r); err != nil {
		t.Fatal(err)
	}
	got, err := ReadResult(d1.Path)
	if err != nil || got.Status != StatusPass || got.BootSeconds != 1.5 || len(got.Tests) != 1 {
		t.Errorf("read back %+v, %v", got, err)
	}
	ents, _ := os.ReadDir(d1.Path)
	if len(ents) != 1 {
		t.Errorf("temp files left beside result.json: %v", ents)
	}
	if _, err := ReadResult(t.TempDir()); err == nil {
		t.Error("a dir without result.json read fine")
	}
}

// TestResultMode: result.json is readable by all (0644) like every other
// file of a run directory, whatever the umask.
func TestResultMode(t *testing.T) {
	d, err := NewDir(t.TempDir(), "mode")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteResult(&Result{Status: StatusPass}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(d.File("result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m != 0o644 {
		t.Errorf("result.json mode %v, want 0644", m)
	}
}

// TestSeriesSummaryEmptyLists: a series tested without config fragments
// says "configs none", not "configs ;".
func TestSeriesSummaryEmptyLists(t *testing.T) {
	var b strings.Builder
	SeriesSummary(&b, &SeriesResult{Status: StatusPass, Series: "s.mbox", Source: "linux.tar.xz", Suites: []string{"smoke"}}, "out/x")
	if first, _, _ := strings.Cut(b.String(), "\n"); first != "series s.mbox on linux.tar.xz (configs none; suites smoke)" {
		t.Errorf("first line %q", first)
	}
}

// Crash.Merge folds the same crash of another run into an entry, which
// then answers to the other's titles too, and leaves the entry alone for a
// different crash or when a corrupted entry could not carry the names.
func TestCrashMerge(t *testing.T) {
	a := Crash{Title: "possible deadlock in seedfs_lookup", AltTitles: []string{"possible deadlock in walk_component"}, StartLine: 3}
	b := Crash{Title: "possible deadlock in seedfs_find", AltTitles: []string{a.Title}, StartLine: 9}
	other := Crash{Title: "general protection fault in seedfs_readdir"}
	for _, c := range []struct {
		name     string
		into, o  Crash
		ok       bool
		wantAlts string
	}{
		{"same crash", a, b, true, "possible deadlock in walk_component, possible deadlock in seedfs_find"},
		{"different crash", a, other, false, "possible deadlock in walk_component"},
		{"sound into corrupted", Crash{Title: a.Title, Corrupted: true}, b, false, ""},
		{"corrupted into sound", b, Crash{Title: a.Title, Corrupted: true}, true, a.Title},
	} {
		into := c.into
		ok := into.Merge(c.o)
		if ok != c.ok || strings.Join(into.AltTitles, ", ") != c.wantAlts || into.Title != c.into.Title || into.StartLine != c.into.StartLine {
			t.Errorf("%s: merged %v into %+v, want %v with alternative titles %q", c.name, ok, into, c.ok, c.wantAlts)
		}
		if ok && !triage.SameCrash(into.Identity(), Crash{Title: c.o.Title}.Identity()) {
			t.Errorf("%s: the entry does not answer to the merged crash's title", c.name)
		}
	}
	if len(a.AltTitles) != 1 {
		t.Errorf("Merge changed its source's alternative titles: %q", a.AltTitles)
	}
}

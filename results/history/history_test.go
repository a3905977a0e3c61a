package history

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/triage"
)

// realCrashes returns the crashes triage found in a real console log of
// results/triage/testdata/kernel.
func realCrashes(t testing.TB, name string) []results.Crash {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "triage", "testdata", "kernel", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var reps []triage.Report
	if err := json.Unmarshal(data, &reps); err != nil {
		t.Fatal(err)
	}
	return results.CrashesFrom(reps)
}

var t0 = time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)

// night is the folder of night i's runs under root, as nightly keeps
// them (<out>/<night>/<run>).
func night(root string, i int) string { return filepath.Join(root, fmt.Sprintf("night-%03d", i)) }

// writeRun makes a run directory under root, started day days after t0.
func writeRun(t testing.TB, root string, day int, tests map[string]string, crashes []results.Crash) string {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprintf("run-%03d", day))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &results.Result{Status: results.StatusPass, Kernel: "/nonexistent/bzImage", Release: "6.1.0", Suite: "seedfs",
		Started: t0.Add(time.Duration(day) * 24 * time.Hour), WallSeconds: 60, Crashes: crashes}
	if r.Crashes == nil {
		r.Crashes = []results.Crash{}
	}
	for _, name := range sortedKeys(tests) {
		r.Tests = append(r.Tests, results.Test{Name: name, Status: results.Status(tests[name]), Seconds: 1})
		if results.Status(tests[name]) != results.StatusPass && r.Status == results.StatusPass {
			r.Status = results.StatusFail
		}
	}
	if len(crashes) > 0 {
		r.Status = results.StatusCrash
	}
	if err := (&results.Dir{Path: dir}).WriteResult(r); err != nil {
		t.Fatal(err)
	}
	return dir
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func openTemp(t testing.TB) *DB {
	t.Helper()
	h, err := Open(context.Background(), filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestOpenMigratesAndRefusesNewer(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	h, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := h.Version(ctx); err != nil || v != SchemaVersion {
		t.Fatalf("schema version %d, %v; want %d", v, err, SchemaVersion)
	}
	var mode string
	h.db.QueryRow("PRAGMA journal_mode").Scan(&mode)
	if mode != "wal" {
		t.Errorf("journal mode %q, want wal", mode)
	}
	if _, err := h.db.Exec(fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if _, err := Open(ctx, path); err == nil || !strings.Contains(err.Error(), "schema version") {
		t.Fatalf("a newer schema was not refused: %v", err)
	}
}

func TestBugLifecycle(t *testing.T) {
	ctx := context.Background()
	h := openTemp(t)
	root := t.TempDir()
	deadlock := realCrashes(t, "seedfs-lookup")
	nullDeref := realCrashes(t, "null-deref")
	// The same bug seen under one of its alternative titles only.
	viaAlt := nullDeref[0]
	viaAlt.Title, viaAlt.AltTitles = "BUG: kernel NULL pointer dereference in crashmod_null_deref", []string{"bad-access in crashmod_null_deref"}

	steps := []struct {
		crashes []results.Crash
		want    map[string]string // bug title -> status after the run
	}{
		{deadlock, map[string]string{"possible deadlock in seedfs_find": BugOpen}},
		{append(append([]results.Crash{}, deadlock...), nullDeref...), map[string]string{
			"possible deadlock in seedfs_find": BugOpen, nullDeref[0].Title: BugOpen}},
		{[]results.Crash{viaAlt}, map[string]string{
			"possible deadlock in seedfs_find": BugFixed, nullDeref[0].Title: BugOpen}},
		{nil, map[string]string{"possible deadlock in seedfs_find": BugFixed, nullDeref[0].Title: BugFixed}},
		{deadlock, map[string]string{
			"possible deadlock in seedfs_find": BugFixed, nullDeref[0].Title: BugFixed, "possible deadlock in seedfs_find (2)": BugOpen}},
	}
	for i, s := range steps {
		dir := writeRun(t, night(root, i), i, map[string]string{"stat": "pass"}, s.crashes)
		if err := h.Record(ctx, "nightly", dir); err != nil {
			t.Fatal(err)
		}
		bugs, err := h.Bugs(ctx, "", "")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, b := range bugs {
			got[b.Title] = b.Status
		}
		if !reflect.DeepEqual(got, s.want) {
			t.Fatalf("after run %d: bugs %v, want %v", i, got, s.want)
		}
	}
	bugs, _ := h.Bugs(ctx, "", "null pointer")
	if len(bugs) != 1 || bugs[0].Count != 2 || len(bugs[0].Runs) != 2 {
		t.Fatalf("null-deref bug: %+v", bugs)
	}
	if !contains(bugs[0].AltTitles, viaAlt.Title) {
		t.Errorf("alt titles %v lack %q", bugs[0].AltTitles, viaAlt.Title)
	}
	if err := h.Check(ctx); err != nil {
		t.Fatal(err)
	}
	// Recording the same directory again changes nothing.
	if err := h.Record(ctx, "nightly", filepath.Join(night(root, 0), "run-000")); err != nil {
		t.Fatal(err)
	}
	runs, _ := h.Runs(ctx, "nightly")
	if len(runs) != len(steps) {
		t.Fatalf("%d runs, want %d", len(runs), len(steps))
	}
	if runs[1].Tests != 1 || len(runs[1].Crashes) != 2 {
		t.Errorf("run 1: %+v", runs[1])
	}
	prev, err := h.PreviousRun(ctx, "nightly", filepath.Join(night(root, 2), "run-002"))
	if err != nil || prev != filepath.Join(night(root, 1), "run-001") {
		t.Errorf("previous run of run-002: %q, %v", prev, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestRebuildGivesTheSameRecord(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	h, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	deadlock := realCrashes(t, "seedfs-lookup")
	for i, c := range [][]results.Crash{deadlock, nil, deadlock, realCrashes(t, "double-lock")} {
		job := "nightly"
		if i == 3 {
			job = ""
		}
		if err := h.Record(ctx, job, writeRun(t, night(root, i), i, map[string]string{"stat": "pass", "ls": "fail"}, c)); err != nil {
			t.Fatal(err)
		}
	}
	dump := func(h *DB) string {
		runs, err := h.Runs(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		bugs, err := h.Bugs(ctx, "", "")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.MarshalIndent([]any{runs, bugs}, "", " ")
		return string(b)
	}
	before := dump(h)
	h.Close()
	n, err := Rebuild(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("rebuilt from %d run dirs, want 4", n)
	}
	h, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if after := dump(h); after != before {
		t.Errorf("rebuilt record differs:\nbefore %s\nafter %s", before, after)
	}
	if !strings.Contains(before, "(2)") {
		t.Errorf("the recurrence is not a bug (2):\n%s", before)
	}
	// From nothing, given the folder.
	os.Remove(path)
	if n, err := Rebuild(ctx, path, []string{root}); err != nil || n != 4 {
		t.Fatalf("rebuild from the folder: %d, %v", n, err)
	}
}

// The child half of TestKilledBetweenWrites: records run directories with
// a pause between each statement, saying "w" before each.
func TestHelperRecorder(t *testing.T) {
	db, root := os.Getenv("KREGRESS_HISTORY_CHILD_DB"), os.Getenv("KREGRESS_HISTORY_CHILD_RUNS")
	if db == "" {
		t.Skip("helper process of TestKilledBetweenWrites")
	}
	// Each write waits for the parent's go-ahead, so the parent knows
	// exactly where the child stands when it kills it.
	var ack [1]byte
	testHookBetweenWrites = func() {
		fmt.Println("w")
		if _, err := os.Stdin.Read(ack[:]); err != nil {
			os.Exit(3)
		}
	}
	h, err := Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if err := h.Record(context.Background(), "nightly", filepath.Join(root, e.Name())); err != nil {
			t.Fatal(err)
		}
		fmt.Println("committed", e.Name())
	}
	fmt.Println("done")
	select {} // wait to be killed
}

func TestKilledBetweenWrites(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	deadlock := realCrashes(t, "seedfs-lookup")
	var dirs []string
	for i := 0; i < 6; i++ {
		var c []results.Crash
		if i%2 == 0 {
			c = deadlock
		}
		dirs = append(dirs, writeRun(t, root, i, map[string]string{"a": "pass", "b": "fail", "c": "pass"}, c))
	}
	for _, killAt := range []int{1, 5, 12, 23, 40} {
		path := filepath.Join(t.TempDir(), FileName)
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRecorder$")
		cmd.Env = append(os.Environ(), "KREGRESS_HISTORY_CHILD_DB="+path, "KREGRESS_HISTORY_CHILD_RUNS="+root)
		// The child waits forever once done: it must die with this test
		// even when the test is killed first (a leftover was seen).
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		t.Cleanup(func() { cmd.Process.Kill() })
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		writes, committed := 0, 0
	read:
		for sc.Scan() {
			switch {
			case sc.Text() == "w":
				writes++
			case strings.HasPrefix(sc.Text(), "committed"):
				committed++
			case sc.Text() == "done":
				break read
			}
			if writes == killAt {
				break read
			}
			if sc.Text() == "w" {
				in.Write([]byte{1})
			}
		}
		// The child is inside a transaction, between two statements.
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		h, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("kill at write %d: reopen: %v", killAt, err)
		}
		if err := h.Check(ctx); err != nil {
			t.Fatalf("kill at write %d: %v", killAt, err)
		}
		runs, _ := h.Runs(ctx, "")
		if len(runs) != committed {
			t.Fatalf("kill at write %d: %d runs recorded, %d were committed", killAt, len(runs), committed)
		}
		for _, r := range runs {
			if r.Tests != 3 {
				t.Fatalf("kill at write %d: run %s has %d tests, want 3 (a partial run)", killAt, r.Dir, r.Tests)
			}
		}
		// The record goes on where it stopped.
		for _, d := range dirs {
			if err := h.Record(ctx, "nightly", d); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.Check(ctx); err != nil {
			t.Fatal(err)
		}
		runs, _ = h.Runs(ctx, "")
		if len(runs) != len(dirs) {
			t.Fatalf("kill at write %d: %d runs after finishing, want %d", killAt, len(runs), len(dirs))
		}
		h.Close()
		t.Logf("killed at write %d after %d committed runs: consistent", killAt, committed)
	}
}

func TestOpenBadPath(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, []byte("x"), 0o644)
	if _, err := Open(context.Background(), filepath.Join(f, FileName)); err == nil {
		t.Fatal("opening a database under a file worked")
	}
	h := openTemp(t)
	if err := h.Record(context.Background(), "j", t.TempDir()); err == nil {
		t.Fatal("recording a directory without result.json worked")
	}
	_ = strconv.Itoa
}

// TestFlakyRepeatsInOneFolder: the repeats of one night live in one
// folder; a flaky crash missing from one repeat is not a fix followed by
// a new bug "(2)".
func TestFlakyRepeatsInOneFolder(t *testing.T) {
	ctx := context.Background()
	h := openTemp(t)
	deadlock := realCrashes(t, "seedfs-lookup")
	night1, night2, night3 := t.TempDir(), t.TempDir(), t.TempDir()
	record := func(root string, day int, c []results.Crash) {
		if err := h.Record(ctx, "nightly", writeRun(t, root, day, map[string]string{"stat": "pass"}, c)); err != nil {
			t.Fatal(err)
		}
	}
	bugs := func() map[string]string {
		list, err := h.Bugs(ctx, "", "")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, b := range list {
			m[b.Title] = b.Status
		}
		return m
	}
	record(night1, 0, deadlock)
	record(night1, 1, nil) // flaky: this repeat missed it
	record(night1, 2, deadlock)
	if got, want := bugs(), map[string]string{"possible deadlock in seedfs_find": BugOpen}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after night 1: %v, want %v", got, want)
	}
	record(night2, 3, nil)
	record(night2, 4, nil)
	if got, want := bugs(), map[string]string{"possible deadlock in seedfs_find": BugFixed}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after night 2: %v, want %v", got, want)
	}
	record(night3, 5, deadlock)
	if got, want := bugs(), map[string]string{"possible deadlock in seedfs_find": BugFixed, "possible deadlock in seedfs_find (2)": BugOpen}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after night 3: %v, want %v", got, want)
	}
	if err := h.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRecordSeries records the report package's pinned series dirs: a
// series row, one row per step run (found under the series folder: the
// paths it names are gone), the steps' builds, and the crash's bug.
func TestRecordSeries(t *testing.T) {
	ctx := context.Background()
	h := openTemp(t)
	for _, name := range []string{"composed-series", "series-interrupted"} {
		// A copy: Record writes the job's name into the directory.
		src := filepath.Join("..", "report", "testdata", "runs", name)
		dst := filepath.Join(t.TempDir(), name)
		if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		if err := h.Record(ctx, "seed", dst); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := h.Runs(ctx, "seed")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, r := range runs {
		kinds[r.Kind]++
	}
	if kinds["series"] != 2 || kinds["step"] != 4 {
		t.Fatalf("runs by kind %v, want 2 series and 4 step runs", kinds)
	}
	bugs, _ := h.Bugs(ctx, "seed", "")
	if len(bugs) != 1 || bugs[0].Title != "kernel panic: sysrq triggered crash" || bugs[0].Count != 1 {
		t.Fatalf("bugs %+v", bugs)
	}
	var builds int
	h.db.QueryRow("SELECT count(*) FROM builds WHERE tree = '/usr/src/linux-source-6.1.tar.xz'").Scan(&builds)
	if builds != 4 {
		t.Errorf("%d builds of the tree, want 4 (base and three prefixes)", builds)
	}
	if err := h.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

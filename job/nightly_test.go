package job

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/history"
)

// commitFake "builds" a commit of a git tree by reading its file "bug"
// there: the kernel crashes when it holds "1".
type commitFake struct {
	t      *testing.T
	repo   string
	dir    string
	builds []string
}

func (f *commitFake) CheckApply(context.Context, build.Request) error { return nil }

func (f *commitFake) Build(_ context.Context, req build.Request) (*build.Result, error) {
	// The tree built: the base commit's files, then the patches applied
	// with git apply, as build.Build does.
	tree, err := os.MkdirTemp(f.dir, "tree-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tree)
	if out, err := exec.Command("sh", "-c", fmt.Sprintf("git -C %s archive %s | tar -x -C %s", f.repo, req.Base, tree)).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("git archive %s: %v: %s", req.Base, err, out)
	}
	for _, p := range req.Patches {
		cmd := exec.Command("git", "apply", "-")
		cmd.Dir, cmd.Stdin = tree, bytes.NewReader(p.Data)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, &build.ApplyError{Patch: p, Detail: fmt.Sprintf("git apply: %v: %s", err, out)}
		}
	}
	out, err := os.ReadFile(filepath.Join(tree, "bug"))
	if err != nil {
		return nil, err
	}
	f.builds = append(f.builds, req.Base)
	p := filepath.Join(f.dir, fmt.Sprintf("bzImage-%d", len(f.builds)))
	os.WriteFile(p, out, 0o644)
	return &build.Result{BzImage: p, Vmlinux: p + ".nope"}, nil
}

func (f *commitFake) Run(_ context.Context, spec Spec) (*results.Result, string, error) {
	data, _ := os.ReadFile(spec.Kernel)
	dir, err := results.NewDir(spec.Out, spec.Label)
	if err != nil {
		return nil, "", err
	}
	r := fakeRun(results.StatusPass, "stat", results.StatusPass)
	if strings.TrimSpace(string(data)) == "1" {
		r = crashed(results.Crash{Title: "possible deadlock in seedfs_find", Type: "LOCKDEP"})
		r.Tests = []results.Test{{Name: "stat", Status: results.StatusCrash}}
	}
	r.Suite = spec.Suite.Name
	if err := dir.WriteResult(r); err != nil {
		return nil, "", err
	}
	return r, dir.Path, nil
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Ann", "GIT_AUTHOR_EMAIL=ann@example.org", "GIT_COMMITTER_NAME=c", "GIT_COMMITTER_EMAIL=c@example.org")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func commit(t *testing.T, repo, bug, msg string) string {
	os.WriteFile(filepath.Join(repo, "bug"), []byte(bug+"\n"), 0o644)
	os.WriteFile(filepath.Join(repo, "log"), []byte(msg+"\n"), 0o644)
	git(t, repo, "add", "bug", "log")
	git(t, repo, "commit", "-q", "-m", msg)
	return git(t, repo, "rev-parse", "HEAD")
}

// Three nights: a good one; then commits with a bug among them: the crash
// is new and bisected to its commit; then a fix: the crash is fixed.
func TestNightlyNewBisectFixed(t *testing.T) {
	repo := t.TempDir()
	git(t, repo, "init", "-q", "-b", "main")
	commit(t, repo, "0", "base")
	out := t.TempDir()
	jobFile := filepath.Join(t.TempDir(), "job.yaml")
	os.WriteFile(jobFile, []byte(fmt.Sprintf("name: seedfs-nightly\nsource: %s\nbranch: main\nsuites: [smoke]\nbisect_runs: 2\nout: %s\n", repo, out)), 0o644)
	j, ss, err := LoadNightlyJob(jobFile)
	if err != nil {
		t.Fatal(err)
	}
	db, err := history.Open(context.Background(), filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := &commitFake{t: t, repo: repo, dir: t.TempDir()}
	night := func() *NightlyResult {
		res, dir, err := Nightly(context.Background(), NightlySpec{Job: j, Suites: ss, History: db, Executor: f})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, NightlyFile)); err != nil {
			t.Fatal(err)
		}
		return res
	}
	n1 := night()
	if n1.Status != results.StatusPass || n1.Previous != "" {
		t.Fatalf("night 1: %s %q previous %q", n1.Status, n1.Reason, n1.Previous)
	}
	commit(t, repo, "0", "harmless 1")
	bad := commit(t, repo, "1", "seedfs: the planted bug")
	commit(t, repo, "1", "harmless 2")
	n2 := night()
	if n2.Status != results.StatusRegression || n2.PreviousCommit != n1.Commit {
		t.Fatalf("night 2: %s %q previous %s", n2.Status, n2.Reason, n2.PreviousCommit)
	}
	var newCrash *NightlyChange
	for i, c := range n2.Changes {
		if c.Kind == "crash" && c.Change == history.ChangeNew {
			newCrash = &n2.Changes[i]
		}
	}
	if newCrash == nil || newCrash.Name != "possible deadlock in seedfs_find" {
		t.Fatalf("night 2 changes %+v: want the new crash", n2.Changes)
	}
	if newCrash.Culprit != bad || !strings.Contains(newCrash.Note, "the planted bug") || newCrash.Bisect == "" {
		t.Errorf("night 2 bisection: culprit %s note %q, want %s", newCrash.Culprit, newCrash.Note, bad)
	}
	commit(t, repo, "0", "seedfs: fix the planted bug")
	n3 := night()
	fixed := false
	for _, c := range n3.Changes {
		fixed = fixed || (c.Kind == "crash" && c.Change == history.ChangeFixed && c.Name == "possible deadlock in seedfs_find")
	}
	if n3.Status != results.StatusPass || !fixed {
		t.Errorf("night 3: %s changes %+v, want the crash fixed", n3.Status, n3.Changes)
	}
	// Every build after the first night's is that commit plus a diff:
	// one build folder, incremental builds.
	for i, b := range f.builds {
		if b != n1.Commit {
			t.Errorf("build %d is on %s, want every build on night 1's commit %s (builds %v)", i, b, n1.Commit, f.builds)
		}
	}
	if n2.BuildBase != n1.Commit || n3.BuildBase != n1.Commit {
		t.Errorf("build bases %s %s, want %s", n2.BuildBase, n3.BuildBase, n1.Commit)
	}
	runs, err := db.Runs(context.Background(), "nightly:seedfs-nightly")
	if err != nil || len(runs) != 3 {
		t.Errorf("history has %d runs of the job (%v), want 3", len(runs), err)
	}
}

func TestLoadNightlyJobRejects(t *testing.T) {
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown key":   "name: a\nsource: " + repo + "\nsuites: [smoke]\nsuits: [x]\n",
		"no name":       "source: " + repo + "\nsuites: [smoke]\n",
		"no suites":     "name: a\nsource: " + repo + "\n",
		"not git":       "name: a\nsource: " + dir + "\nsuites: [smoke]\n",
		"unknown suite": "name: a\nsource: " + repo + "\nsuites: [no-such-suite]\n",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
		os.WriteFile(p, []byte(body), 0o644)
		_, _, err := LoadNightlyJob(p)
		if build.Classify(err) != build.ClassBadInput || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want bad input naming %s", name, err, p)
		}
	}
}

// TestLoadNightlyJobRelativeConfig: a config fragment named by a path is
// taken from the job file's folder, like suites; a preset name is kept.
func TestLoadNightlyJobRelativeConfig(t *testing.T) {
	repo := t.TempDir()
	git(t, repo, "init", "-q", "-b", "main")
	dir := t.TempDir()
	jobFile := filepath.Join(dir, "job.yaml")
	os.WriteFile(jobFile, []byte(fmt.Sprintf("name: j\nsource: %s\nconfigs: [lockdep, frag/seed.config]\nsuites: [smoke]\n", repo)), 0o644)
	j, _, err := LoadNightlyJob(jobFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"lockdep", filepath.Join(dir, "frag", "seed.config")}; strings.Join(j.Configs, " ") != strings.Join(want, " ") {
		t.Errorf("configs %q, want %q", j.Configs, want)
	}
}

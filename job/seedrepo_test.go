package job

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kregress/kregress/bisect"
	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/internal/cache"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/history"
	"github.com/kregress/kregress/suites"
)

// seedRepo is the local kernel git repository the real bisect and nightly
// tests run on: Debian's linux-source-6.1 committed as one base commit,
// then on master the four examples/seed-series patches as commits (`git
// am`; the third plants the seedfs double lock, lockdep's "possible
// deadlock in seedfs_find") and a fix commit that releases the lock again.
// Branch flaky holds patches 1-2, a variant of patch 3 that takes the lock
// twice on about 3 boots in 10 (decided once per boot with
// get_random_u32), and patch 4.
type seedRepo struct {
	Dir string
	// Base is the imported tarball; Patch[i] is patch i+1 of the series
	// (Patch[2] the culprit); Fix releases the lock again.
	Base  string
	Patch [4]string
	Fix   string
	// Flaky[i] are the flaky branch's commits (Flaky[2] the culprit).
	Flaky [4]string
	// Made is how long making it took (0 when it was cached).
	Made time.Duration
}

// seedRepoVersion changes whenever the way the repository is made
// changes, so that a cached one made the old way is not reused.
const seedRepoVersion = "seedrepo-1"

// fixedIdentity makes every commit's hash the same on every machine.
var fixedIdentity = []string{
	"GIT_AUTHOR_NAME=kregress", "GIT_AUTHOR_EMAIL=kregress@example.org", "GIT_AUTHOR_DATE=2026-11-17T09:00:00Z",
	"GIT_COMMITTER_NAME=kregress", "GIT_COMMITTER_EMAIL=kregress@example.org", "GIT_COMMITTER_DATE=2026-11-17T09:00:00Z",
	"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
}

// makeSeedRepo returns the cached repository, making it first when it is
// not under $KREGRESS_CACHE/fixtures yet (keyed by the tarball's and the
// series' digests). Making it extracts and commits the 75k files of the
// tarball: minutes on a loaded machine.
func makeSeedRepo(t *testing.T, tarball, series string) *seedRepo {
	t.Helper()
	patches, _ := filepath.Glob(filepath.Join(series, "*.patch"))
	sort.Strings(patches)
	if len(patches) != 4 {
		t.Fatalf("%s: want the 4 seed-series patches, found %d", series, len(patches))
	}
	h := sha256.New()
	io.WriteString(h, seedRepoVersion+"\n")
	for _, f := range append([]string{tarball}, patches...) {
		fd, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(h, fd)
		fd.Close()
	}
	root, err := cache.Root()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "fixtures", "linux-seed-"+hex.EncodeToString(h.Sum(nil))[:16])
	r := &seedRepo{Dir: dir}
	if _, err := os.Stat(filepath.Join(dir, ".git", "kregress-fixture-complete")); err != nil {
		start := time.Now()
		if err := buildSeedRepo(dir, tarball, patches); err != nil {
			t.Fatalf("making the seed repository from %s: %v", tarball, err)
		}
		r.Made = time.Since(start)
		t.Logf("made %s in %s", dir, r.Made.Truncate(time.Second))
	}
	rev := func(ref string) string {
		out, err := gitIn(dir, "rev-parse", "--verify", ref+"^{commit}")
		if err != nil {
			t.Fatalf("seed repository %s: %v", dir, err)
		}
		return strings.TrimSpace(out)
	}
	r.Base, r.Fix = rev("base"), rev("master")
	for i := 0; i < 4; i++ {
		r.Patch[i] = rev(fmt.Sprintf("master~%d", 4-i))
		r.Flaky[i] = rev(fmt.Sprintf("flaky~%d", 3-i))
	}
	return r
}

func gitIn(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), fixedIdentity...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// buildSeedRepo makes the repository in a temporary folder beside dir and
// renames it into place, so a killed test leaves no half-made one.
func buildSeedRepo(dir, tarball string, patches []string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-seed-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if out, err := exec.Command("tar", "-xf", tarball, "--strip-components=1", "-C", tmp).CombinedOutput(); err != nil {
		return fmt.Errorf("tar -xf %s: %v: %s", tarball, err, out)
	}
	steps := [][]string{
		{"init", "--quiet", "--initial-branch=master"},
		{"config", "gc.auto", "0"},
		{"add", "--all", "--force"},
		{"commit", "--quiet", "--no-verify", "-m", "linux-source-6.1: " + filepath.Base(tarball)},
		{"tag", "base"},
		{"am", "--quiet", "--committer-date-is-author-date", patches[0], patches[1]},
		{"branch", "flaky"},
		{"am", "--quiet", "--committer-date-is-author-date", patches[2], patches[3]},
	}
	for _, s := range steps {
		if _, err := gitIn(tmp, s...); err != nil {
			return err
		}
	}
	namei := filepath.Join(tmp, "fs", "seedfs", "namei.c")
	// The fix: release the lock where patch 3 takes it again.
	if err := replaceIn(namei, "\t\t\tspin_lock(&sbi->lock);\n\t\t\treturn i;", "\t\t\tspin_unlock(&sbi->lock);\n\t\t\treturn i;"); err != nil {
		return err
	}
	if _, err := gitIn(tmp, "commit", "--quiet", "--no-verify", "-a", "-m",
		"seedfs: release the lock when the name is found\n\nThe early return in seedfs_find() took sbi->lock a second time\ninstead of releasing it: the first lookup of an existing name\ndeadlocks.\n\nFixes: seedfs: return from the lookup loop as soon as the name is found\n"); err != nil {
		return err
	}
	// The flaky branch: patch 3 whose bad path is taken on 3 boots in 10.
	if _, err := gitIn(tmp, "checkout", "--quiet", "flaky"); err != nil {
		return err
	}
	if _, err := gitIn(tmp, "apply", "--index", patches[2]); err != nil {
		return err
	}
	if err := replaceIn(namei, "\t\t\tspin_lock(&sbi->lock);\n\t\t\treturn i;",
		"\t\t\tif (seedfs_unlucky())\n\t\t\t\tspin_lock(&sbi->lock);\n\t\t\telse\n\t\t\t\tspin_unlock(&sbi->lock);\n\t\t\treturn i;"); err != nil {
		return err
	}
	if err := replaceIn(namei, "static noinline int seedfs_find(",
		"/* Decided once per boot: about 3 boots in 10 are unlucky. */\nstatic bool seedfs_unlucky(void)\n{\n\tstatic int unlucky = -1;\n\n\tif (unlucky < 0)\n\t\tunlucky = get_random_u32() % 10 < 3;\n\treturn unlucky;\n}\n\nstatic noinline int seedfs_find("); err != nil {
		return err
	}
	if err := replaceIn(namei, "#include <linux/fs.h>\n", "#include <linux/fs.h>\n#include <linux/random.h>\n"); err != nil {
		return err
	}
	if _, err := gitIn(tmp, "commit", "--quiet", "--no-verify", "-a", "-m",
		"seedfs: return from the lookup loop as soon as the name is found, sometimes\n\nThe flaky variant of the seed series' patch 3: on about 3 boots in\n10 the early return takes sbi->lock a second time.\n"); err != nil {
		return err
	}
	if _, err := gitIn(tmp, "am", "--quiet", "-3", "--committer-date-is-author-date", patches[3]); err != nil {
		return err
	}
	if _, err := gitIn(tmp, "checkout", "--quiet", "master"); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".git", "kregress-fixture-complete"), nil, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, ".git", "kregress-fixture-complete")); serr == nil {
			return nil // made by another test meanwhile
		}
		return err
	}
	return nil
}

func replaceIn(file, old, new string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if strings.Count(string(data), old) != 1 {
		return fmt.Errorf("%s: want exactly one %q", file, old)
	}
	return os.WriteFile(file, []byte(strings.Replace(string(data), old, new, 1)), 0o644)
}

// TestSeedRepo makes (or finds) the repository and checks its shape
// (extracting and committing the tarball: about 3 minutes).
func TestSeedRepo(t *testing.T) {
	r, _ := slowSeedRepo(t)
	t.Logf("%s: base %s, culprit %s, fix %s, flaky culprit %s", r.Dir, r.Base[:12], r.Patch[2][:12], r.Fix[:12], r.Flaky[2][:12])
	out, err := gitIn(r.Dir, "show", r.Patch[2], "--", "fs/seedfs/namei.c")
	if err != nil || !strings.Contains(out, "+\t\t\tspin_lock(&sbi->lock);") {
		t.Errorf("commit 3 does not plant the double lock: %v\n%s", err, out)
	}
	out, err = gitIn(r.Dir, "show", r.Fix)
	if err != nil || !strings.Contains(out, "+\t\t\tspin_unlock(&sbi->lock);") {
		t.Errorf("the fix does not release the lock: %v\n%s", err, out)
	}
	out, err = gitIn(r.Dir, "show", r.Flaky[2])
	if err != nil || !strings.Contains(out, "get_random_u32() % 10 < 3") {
		t.Errorf("the flaky commit does not plant a 30%% bug: %v\n%s", err, out)
	}
}

// slowSeedRepo skips unless tests of the seed repository are asked for
// (KREGRESS_SLOW_TESTS=1), and returns it and the kregress repository
// root. Making it takes minutes, and the tests on it build kernels in a
// build folder of their own (the first a clean build) and boot a dozen
// VMs: beyond CI's budget, which already builds the seed series from
// the tarball.
func slowSeedRepo(t *testing.T) (*seedRepo, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and boots kernels: not in -short mode")
	}
	if os.Getenv("KREGRESS_SLOW_TESTS") != "1" {
		t.Skip("set KREGRESS_SLOW_TESTS=1: builds kernels of a local git repository made from linux-source-6.1 and boots a dozen VMs (see docs/nightly.md)")
	}
	if _, err := os.Stat(linuxSource); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing: install Debian's linux-source-6.1 (make setup)", linuxSource)
		}
		t.Skipf("%s missing: install Debian's linux-source-6.1 (make setup)", linuxSource)
	}
	root, _ := filepath.Abs("..")
	return makeSeedRepo(t, linuxSource, filepath.Join(root, "examples", "seed-series")), root
}

// buildRecorder is the local executor, remembering each build's result.
type buildRecorder struct {
	Local
	t      *testing.T
	builds []*build.Result
}

func (b *buildRecorder) Build(ctx context.Context, req build.Request) (*build.Result, error) {
	r, err := b.Local.Build(ctx, req)
	if err == nil {
		b.builds = append(b.builds, r)
		b.t.Logf("build on %s + %d patch(es): key %s incremental %v, %d kbuild steps, %s", shortHash(r.Base), len(req.Patches), r.Key, r.Incremental, r.Compiled, r.Duration.Truncate(time.Second))
	}
	return r, err
}

// TestBisectSeedRepo bisects base..patch 4 of the seed repository: the
// culprit is commit 3 (the double lock), found within the build bound,
// each build after the first incremental.
func TestBisectSeedRepo(t *testing.T) {
	r, root := slowSeedRepo(t)
	suite, err := suites.Load(filepath.Join(root, "examples", "seedfs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ex := &buildRecorder{t: t}
	res, dir, err := Bisect(context.Background(), BisectSpec{
		Build: build.Request{Source: r.Dir, Configs: DemoConfigs(root)},
		Good:  r.Base, Bad: r.Patch[3],
		Suites: []*suites.Suite{suite}, Runs: 2, Jobs: 2, Out: t.TempDir(),
		Run:      Spec{BootTimeout: 5 * time.Minute},
		Progress: func(f string, a ...any) { t.Logf(f, a...) },
		Executor: ex,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkSeedBisect(t, res, dir, bisect.BuildBound(4, false), func(c *results.Culprit) bool { return c.ID == r.Patch[2] })
	for i, b := range ex.builds {
		if b.Dir != ex.builds[0].Dir || (i > 0 && !b.Incremental) {
			t.Errorf("build %d: folder %s incremental %v, want every build in %s and incremental after the first", i, b.Dir, b.Incremental, ex.builds[0].Dir)
		}
	}
}

// TestBisectSeedRepoFlaky bisects the flaky branch, whose culprit crashes
// on about 3 boots in 10: the default run counts (10 per step, 20 once the
// crash is seen to be flaky) find it, the result says the crash is flaky,
// gives the observed crash rate and a confidence figure, and calls the
// answer reliable (>= 0.66).
func TestBisectSeedRepoFlaky(t *testing.T) {
	r, root := slowSeedRepo(t)
	suite, err := suites.Load(filepath.Join(root, "examples", "seedfs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, dir, err := Bisect(context.Background(), BisectSpec{
		Build: build.Request{Source: r.Dir, Configs: DemoConfigs(root)},
		Good:  r.Base, Bad: r.Flaky[3],
		Suites: []*suites.Suite{suite}, Jobs: 2, Out: t.TempDir(),
		Run:      Spec{BootTimeout: 5 * time.Minute},
		Progress: func(f string, a ...any) { t.Logf(f, a...) },
	})
	if err != nil {
		t.Fatal(err)
	}
	checkSeedBisect(t, res, dir, bisect.BuildBound(4, false), func(c *results.Culprit) bool { return c.ID == r.Flaky[2] })
	if !res.Flaky || res.CrashRate <= 0.05 || res.CrashRate >= 0.8 || res.Confidence < 0.66 || res.Confidence >= 1 {
		t.Errorf("flaky %v, crash rate %.2f, confidence %.3f: want flaky, a rate near 0.3, a confidence in [0.66, 1)", res.Flaky, res.CrashRate, res.Confidence)
	}
}

// TestNightlySeedRepo runs three nights on the seed repository: before
// the bug (patch 2), with it (patch 4: the crash is new and bisected to
// commit 3), after the fix (the crash is fixed).
func TestNightlySeedRepo(t *testing.T) {
	r, root := slowSeedRepo(t)
	const branch = "kregress-nightly-test"
	out := t.TempDir()
	jobFile := filepath.Join(t.TempDir(), "job.yaml")
	job := fmt.Sprintf("name: seedfs\nsource: %s\nbranch: %s\nbuild_base: %s\nconfigs: [%s]\nsuites: [%s]\nbisect_runs: 2\nout: %s\n",
		r.Dir, branch, r.Base, strings.Join(DemoConfigs(root), ", "), filepath.Join(root, "examples", "seedfs.yaml"), out)
	if err := os.WriteFile(jobFile, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	j, ss, err := LoadNightlyJob(jobFile)
	if err != nil {
		t.Fatal(err)
	}
	ex := &buildRecorder{t: t}
	night := func(commit string) *NightlyResult {
		if _, err := gitIn(r.Dir, "branch", "-f", branch, commit); err != nil {
			t.Fatal(err)
		}
		res, dir, err := Nightly(context.Background(), NightlySpec{Job: j, Suites: ss, Executor: ex,
			Progress: func(f string, a ...any) { t.Logf(f, a...) }})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(filepath.Join(dir, NightlyFile))
		t.Logf("%s:\n%s", dir, data)
		return res
	}
	const title = "possible deadlock in seedfs_find"
	change := func(n *NightlyResult, want string) *NightlyChange {
		for i, c := range n.Changes {
			if c.Kind == "crash" && c.Change == want && strings.Contains(c.Name, "seedfs_find") {
				return &n.Changes[i]
			}
		}
		return nil
	}
	n1 := night(r.Patch[1])
	if n1.Status != results.StatusPass || len(n1.Crashes) != 0 {
		t.Fatalf("night 1 (before the bug): %s %q crashes %v", n1.Status, n1.Reason, n1.Crashes)
	}
	n2 := night(r.Patch[3])
	c := change(n2, history.ChangeNew)
	if n2.Status != results.StatusRegression || c == nil {
		t.Fatalf("night 2: %s %q changes %+v, want %q new", n2.Status, n2.Reason, n2.Changes, title)
	}
	if c.Culprit != r.Patch[2] || c.Bisect == "" {
		t.Errorf("night 2 bisection: culprit %s note %q, want commit 3 %s", c.Culprit, c.Note, r.Patch[2])
	}
	n3 := night(r.Fix)
	if n3.Status != results.StatusPass || change(n3, history.ChangeFixed) == nil {
		t.Errorf("night 3 (the fix): %s %q changes %+v, want %q fixed", n3.Status, n3.Reason, n3.Changes, title)
	}
	for i, b := range ex.builds {
		if b.Dir != ex.builds[0].Dir {
			t.Errorf("build %d in %s, want every build in %s", i, b.Dir, ex.builds[0].Dir)
		}
	}
}

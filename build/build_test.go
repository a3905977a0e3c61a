package build

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kregress/kregress/internal/cache"
	"github.com/kregress/kregress/kconfig"
)

// The kernel source the tests build: Debian's package linux-source-6.1.
const tarball = "/usr/src/linux-source-6.1.tar.xz"

// needKernelSource skips the test when the tarball or the toolchain is
// missing, and returns the shared cache folder, so that a rerun (and CI's
// second run) reuses the extracted tree and the build folders.
func needKernelSource(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds or prepares a kernel tree: not in -short mode")
	}
	if _, err := os.Stat(tarball); err != nil {
		t.Skipf("skipping: needs %s (Debian package linux-source-6.1): %v", tarball, err)
	}
	for _, tool := range []string{"git", "make", "gcc", "tar", "xz", "flex", "bison", "bc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: needs %s to build a kernel", tool)
		}
	}
	root, err := cache.Root()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// progressWriter sends progress lines to the test log.
type progressWriter struct{ t testing.TB }

func (w progressWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// cacheState describes what a failed build must not change: the build
// folders with their markers and configs, and the private source trees.
func cacheState(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	builds, _ := filepath.Glob(filepath.Join(root, "builds", "*"))
	sort.Strings(builds)
	for _, d := range builds {
		marker, _ := os.ReadFile(filepath.Join(d, completeMarker))
		cfg, _ := os.ReadFile(filepath.Join(d, ".config"))
		b.WriteString(d + " marker=" + strings.TrimSpace(string(marker)) + " config=" + digest(string(cfg))[:12] + "\n")
	}
	srcs, _ := filepath.Glob(filepath.Join(root, "src", "*"))
	sort.Strings(srcs)
	for _, d := range srcs {
		if strings.HasSuffix(d, ".lock") {
			continue
		}
		st, err := run(context.Background(), d, nil, "git", "status", "--porcelain", "--untracked-files=all", "--ignored")
		head, _ := run(context.Background(), d, nil, "git", "rev-parse", "HEAD")
		b.WriteString(d + " head=" + strings.TrimSpace(head) + " status=" + st)
		if err != nil {
			b.WriteString(" err=" + err.Error())
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestBrokenSeriesLeavesNothing applies a series whose patch 2 does not
// apply to linux-source-6.1: the error names the patch, its subject, the
// file and the hunk, and the cache is as it was.
func TestBrokenSeriesLeavesNothing(t *testing.T) {
	root := needKernelSource(t)
	ctx := context.Background()
	// Make sure the tarball's tree is in the cache before the snapshot.
	src, err := prepareSource(ctx, root, &Request{Source: tarball}, newStatus(progressWriter{t}))
	if err != nil {
		t.Fatal(err)
	}
	src.release()
	tarDigest, _ := fileDigest(tarball)
	before := cacheState(t, root)

	_, err = Build(ctx, Request{Source: tarball, Series: "testdata/series/broken", Configs: []string{"qemu-minimal"}})
	var ae *ApplyError
	if !errors.As(err, &ae) {
		t.Fatalf("Build with a broken series: %v, want an *ApplyError", err)
	}
	t.Logf("error: %v", err)
	if ae.Patch.Number != 2 || ae.Patch.Total != 3 || ae.Patch.Subject != "kregress-test: tag two init messages" ||
		ae.File != "init/main.c" || ae.Hunk != 2 || !strings.HasPrefix(ae.HunkHeader, "@@ -1393,7 +1393,7 @@") {
		t.Errorf("ApplyError = patch %d/%d %q, %s hunk #%d %q; want patch 2/3, init/main.c hunk #2 at 1393",
			ae.Patch.Number, ae.Patch.Total, ae.Patch.Subject, ae.File, ae.Hunk, ae.HunkHeader)
	}
	for _, want := range []string{`patch 2/3 "kregress-test: tag two init messages"`, "init/main.c hunk #2 (@@ -1393,7 +1393,7 @@"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if after := cacheState(t, root); after != before {
		t.Errorf("cache changed by a failed apply:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if d, _ := fileDigest(tarball); d != tarDigest {
		t.Errorf("tarball changed")
	}
}

// TestGitSourceUntouched uses a user's git tree (real kernel files taken
// from the tarball): the series is applied in a private worktree, and the
// user's branch, HEAD, index and uncommitted changes are the same after a
// good and after a broken series.
func TestGitSourceUntouched(t *testing.T) {
	shared := needKernelSource(t)
	ctx := context.Background()
	tsrc, err := prepareSource(ctx, shared, &Request{Source: tarball}, nil)
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(t.TempDir(), "linux")
	for _, f := range []string{"init/main.c", "kernel/Makefile", "Makefile"} {
		data, err := os.ReadFile(filepath.Join(tsrc.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(repo, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(repo, f), data, 0o644)
	}
	tsrc.release()
	git := func(args ...string) string {
		t.Helper()
		out, err := run(ctx, repo, gitEnv(), append([]string{"git"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	git("init", "-q", "-b", "topic")
	git("add", "-A")
	git("commit", "-q", "-m", "base")
	// Uncommitted work of the user: a staged and an unstaged change.
	os.WriteFile(filepath.Join(repo, "NOTES"), []byte("staged\n"), 0o644)
	git("add", "NOTES")
	os.WriteFile(filepath.Join(repo, "Makefile"), []byte("user's unstaged edit\n"), 0o644)
	state := func() string {
		mk, _ := os.ReadFile(filepath.Join(repo, "Makefile"))
		return git("rev-parse", "HEAD") + git("branch", "-a") + git("status", "--porcelain") +
			git("diff", "--cached") + string(mk) + git("for-each-ref")
	}
	before := state()

	root := t.TempDir() // private cache: this test makes a worktree per repo
	s, err := prepareSource(ctx, root, &Request{Source: repo}, nil)
	if err != nil {
		t.Fatal(err)
	}
	good, err := ReadSeries("testdata/series/good.mbox")
	if err != nil {
		t.Fatal(err)
	}
	res, err := applySeries(ctx, s, t.TempDir(), good, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[2].Status != Applied {
		t.Fatalf("good series: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "kernel", "kregress_test.c")); err != nil {
		t.Errorf("patched file missing in the private worktree: %v", err)
	}
	// Patch 3 again: already applied, said and skipped.
	again, err := applySeries(ctx, s, t.TempDir(), good[2:], nil)
	if err != nil || again[0].Status != AlreadyApplied {
		t.Errorf("re-applying patch 3: %+v, %v; want already applied", again, err)
	}
	if err := s.reset(ctx); err != nil {
		t.Fatal(err)
	}
	s.release()

	_, err = Build(ctx, Request{Source: repo, Base: "topic", Series: "testdata/series/broken", CacheDir: root})
	var ae *ApplyError
	if !errors.As(err, &ae) || ae.Patch.Number != 2 || ae.File != "init/main.c" || ae.Hunk != 2 {
		t.Fatalf("broken series on a git tree: %v; want patch 2 init/main.c hunk #2", err)
	}
	if _, err := os.Stat(filepath.Join(repo, "kernel", "kregress_test.c")); err == nil {
		t.Error("the series touched the user's tree")
	}
	if after := state(); after != before {
		t.Errorf("user's repository changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := Build(ctx, Request{Source: repo, Base: "no-such-ref", CacheDir: root}); err == nil || !strings.Contains(err.Error(), `base "no-such-ref"`) {
		t.Errorf("bad base ref: %v", err)
	}
}

// TestDroppedOption asks for CONFIG_NFS_V4 on tinyconfig + qemu-minimal,
// where NFS_FS is off: the check names the option, its whole dependency
// (the enclosing "if NETWORK_FILESYSTEMS" of fs/Kconfig included) and the
// unmet term.
func TestDroppedOption(t *testing.T) {
	root := needKernelSource(t)
	ctx := context.Background()
	src, err := prepareSource(ctx, root, &Request{Source: tarball}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.release()
	cfg, err := makeConfig(ctx, root, src, &Request{Configs: []string{"qemu-minimal", "testdata/dropped.config"}}, makeEnv(root), makeVars(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range cfg.dropped {
		got = append(got, d.String())
	}
	want := []string{"CONFIG_NFS_V4=y (testdata/dropped.config:1) dropped, got n: depends on NETWORK_FILESYSTEMS && NFS_FS (unmet: NFS_FS)"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dropped:\n got %q\nwant %q", got, want)
	}
}

// TestPresetsOnRealTree merges each preset on tinyconfig + qemu-minimal
// against linux-source-6.1 and checks that Kconfig drops none of the
// options any preset asks for.
func TestPresetsOnRealTree(t *testing.T) {
	root := needKernelSource(t)
	ctx := context.Background()
	src, err := prepareSource(ctx, root, &Request{Source: tarball}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.release()
	for _, p := range kconfig.Presets() {
		cfgs := []string{"qemu-minimal"}
		if p != "qemu-minimal" {
			cfgs = append(cfgs, p)
		}
		cfg, err := makeConfig(ctx, root, src, &Request{Configs: cfgs}, makeEnv(root), makeVars(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range cfg.dropped {
			t.Errorf("preset %s: %s", p, d)
		}
	}
}

// TestBuildDiagnostics builds a series whose patch 2 adds an unused
// variable (the warning is reported against the patched file) and whose
// patch 3 calls a function that does not exist (a *CompileError naming the
// file, line and message, and no completion marker).
func TestBuildDiagnostics(t *testing.T) {
	needKernelSource(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	series, err := ReadSeries("testdata/series/diagnostics")
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Source: tarball, Patches: series[:2], Configs: []string{"qemu-minimal", "lockdep"}, Progress: progressWriter{t}}
	r, err := Build(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range r.Warnings {
		got = append(got, w.String())
		if !w.InSeries {
			t.Errorf("warning %s not marked as in the series", w)
		}
	}
	want := []string{"kernel/kregress_test.c:11:13: warning: unused variable 'unused_in_patch_2' [-Wunused-variable]"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}

	req.Patches = series
	_, err = Build(ctx, req)
	var ce *CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("Build with a patch that does not compile: %v, want a *CompileError", err)
	}
	t.Logf("error: %v", err)
	if len(ce.Errors) == 0 || ce.Errors[0].File != "kernel/kregress_test.c" || ce.Errors[0].Line != 14 ||
		!strings.Contains(ce.Errors[0].Message, "implicit declaration of function 'kregress_test_no_such_function'") || !ce.Errors[0].InSeries {
		t.Errorf("compile errors %+v, want kernel/kregress_test.c:14 implicit declaration", ce.Errors)
	}
	if _, err := os.Stat(filepath.Join(r.Dir, completeMarker)); err == nil {
		t.Error("a failed build left its folder marked complete")
	}
}

// TestBuildSeriesIncremental builds linux-source-6.1 with qemu-minimal +
// lockdep and the first two patches of the test series, then with all
// three and the crash test module: the second build reuses the build
// folder and recompiles only what patch 3 touched.
func TestBuildSeriesIncremental(t *testing.T) {
	needKernelSource(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	series, err := ReadSeries("testdata/series/good.mbox")
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Source: tarball, Patches: series[:2], Configs: []string{"qemu-minimal", "lockdep"}, Progress: progressWriter{t}}
	r1, err := Build(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("build 1 (patches 1-2): %s, incremental=%v, %d steps", r1.Duration, r1.Incremental, r1.Compiled)
	for _, d := range r1.Dropped {
		t.Errorf("qemu-minimal + lockdep dropped %s", d)
	}
	cfg, _ := os.ReadFile(r1.Config)
	for _, want := range []string{"CONFIG_PROVE_LOCKING=y", "CONFIG_DEBUG_LOCKING_API_SELFTESTS=y", "CONFIG_UNWINDER_ORC=y", "CONFIG_VIRTIO_NET=y"} {
		if !bytes.Contains(cfg, []byte("\n"+want+"\n")) {
			t.Errorf("final .config lacks %s", want)
		}
	}
	vmlinuxHas := func(r *Result, s string) bool {
		data, err := os.ReadFile(r.Vmlinux)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(data, []byte(s))
	}
	if !vmlinuxHas(r1, "kregress-test: series patch 2 applied") || vmlinuxHas(r1, "kregress-test: series patch 3 applied") {
		t.Error("build 1's vmlinux does not carry exactly patches 1-2")
	}
	for _, f := range []string{r1.BzImage, r1.Vmlinux, r1.SystemMap, filepath.Join(r1.ModulesDir, "lib", "modules", r1.Release, "modules.dep")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}

	req.Patches = series
	req.ExternalModules = []string{"testdata/crashmod"}
	r2, err := Build(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("build 2 (patches 1-3 + crashmod): %s, incremental=%v, %d steps", r2.Duration, r2.Incremental, r2.Compiled)
	if r2.Key != r1.Key || !r2.Incremental {
		t.Errorf("build 2 used %s (incremental=%v), want build 1's folder %s", r2.Key, r2.Incremental, r1.Key)
	}
	// A clean build of this config runs about 2,000 kbuild steps; one more
	// patch to one file must need only that file, the link and the module.
	if r2.Compiled > 100 {
		t.Errorf("build 2 ran %d kbuild steps; an incremental build needs a few dozen", r2.Compiled)
	}
	if !vmlinuxHas(r2, "kregress-test: series patch 3 applied") {
		t.Error("build 2's vmlinux lacks patch 3")
	}
	if len(r2.Patches) != 3 || r2.Patches[2].Status != Applied {
		t.Errorf("patches: %+v", r2.Patches)
	}
	if len(r2.External) != 1 || len(r2.External[0].Modules) != 1 {
		t.Fatalf("external modules: %+v", r2.External)
	}
	modDir := filepath.Join(r2.ModulesDir, "lib", "modules", r2.Release)
	order, err := LoadOrder(modDir, []string{"crashmod"})
	if err != nil || len(order) != 1 || order[0] != r2.External[0].Modules[0] {
		t.Errorf("LoadOrder(crashmod) = %q, %v; want [%s]", order, err, r2.External[0].Modules[0])
	}
	out, err := exec.Command(toolPath("modinfo"), "-F", "vermagic", filepath.Join(modDir, r2.External[0].Modules[0])).Output()
	if err != nil {
		t.Logf("modinfo not run: %v", err)
	} else if !strings.HasPrefix(string(out), r2.Release+" ") {
		t.Errorf("crashmod.ko vermagic %q, want release %s", out, r2.Release)
	}
	if _, err := os.Stat(filepath.Join("testdata", "crashmod", "crashmod.ko")); err == nil {
		t.Error("the module build wrote into the module's own tree")
	}
}

// BenchmarkIncrementalBuild alternates between the test series' first two
// and all three patches on qemu-minimal + lockdep: after the first
// iteration each one is an incremental build of the same build folder.
// Run: go test -run XXX -bench IncrementalBuild -benchtime 4x ./build
func BenchmarkIncrementalBuild(b *testing.B) {
	needKernelSource(b)
	series, err := ReadSeries("testdata/series/good.mbox")
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		r, err := Build(context.Background(), Request{Source: tarball, Patches: series[:2+i%2], Configs: []string{"qemu-minimal", "lockdep"}})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("patches 1-%d: %s, incremental=%v, %d steps", 2+i%2, r.Duration, r.Incremental, r.Compiled)
	}
}

// TestConfigLabel: no "(tinyconfig + )" when no fragment is given.
func TestConfigLabel(t *testing.T) {
	if got := configLabel("tinyconfig", nil); got != "tinyconfig" {
		t.Errorf("no fragments: %q", got)
	}
	if got := configLabel("defconfig", []string{"qemu-minimal", "lockdep"}); got != "defconfig + qemu-minimal + lockdep" {
		t.Errorf("two fragments: %q", got)
	}
}

package job

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/internal/testlustre"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/suites"
)

// snapshotFile reads one file of the lustre-release snapshot.
func snapshotFile(t *testing.T, snap, file string) string {
	t.Helper()
	top := strings.TrimSuffix(filepath.Base(snap), ".tar.xz")
	out, err := exec.Command("tar", "-xOJf", snap, top+"/"+file).Output()
	if err != nil {
		t.Fatalf("reading %s from %s: %v", file, snap, err)
	}
	return string(out)
}

// TestLustreClientSeriesDebian is the client developer's path for real:
// the lustre-release snapshot built against Debian's kernel headers (no
// kernel build), a two-patch client series applied to a private copy per
// patch, each step booting Debian's kernel with the step's client modules
// against the simulated server. Patch 1 is harmless and passes
// lustre-sanity; patch 2 dereferences NULL in ll_splice_alias on the first
// lookup of a regular file and is named the first bad patch, with the
// Lustre function in the title and lustre/llite/namei.c in the stack.
func TestLustreClientSeriesDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Lustre client and boots three VMs")
	}
	snap := testlustre.Snapshot(t)
	kernel, _ := testlustre.DebianKernel(t)
	clientSeriesTest(t, snap, SeriesSpec{Kernel: kernel}, "kregress test --kernel "+kernel)
}

// TestLustreClientSeriesLockdep is the same series on a kernel kregress
// builds from linux-source-6.1 with the qemu-minimal, lockdep and
// lustre-client presets: the client configures against the source and the
// O= build folder, builds, and its modules load and mount (this pins the
// lustre-client preset). A cold run builds a kernel and configures the
// client a second time (about half an hour on 2 cores), beyond CI's
// budget: it runs when KREGRESS_LUSTRE_LOCKDEP=1.
func TestLustreClientSeriesLockdep(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a kernel and the Lustre client")
	}
	if os.Getenv("KREGRESS_LUSTRE_LOCKDEP") != "1" {
		t.Skip("set KREGRESS_LUSTRE_LOCKDEP=1: builds a lockdep kernel and the client against it (about 30 min cold)")
	}
	snap := testlustre.Snapshot(t)
	if _, err := os.Stat(linuxSource); err != nil {
		t.Fatalf("%s missing: install Debian's linux-source-6.1 (make setup)", linuxSource)
	}
	b := build.Request{Source: linuxSource, Configs: []string{"qemu-minimal", "lockdep", "debug-info", "lustre-client"}}
	clientSeriesTest(t, snap, SeriesSpec{Build: b}, "kregress test --source "+linuxSource+" --config qemu-minimal --config lockdep --config debug-info --config lustre-client")
}

// clientSeriesTest runs the two-patch client series against the kernel
// spec names (Kernel, or Build) and checks the verdicts.
func clientSeriesTest(t *testing.T, snap string, spec SeriesSpec, command string) {
	t.Helper()
	namei := snapshotFile(t, snap, "lustre/llite/namei.c")
	const file = "lustre/llite/namei.c"
	p1 := testlustre.InsertPatch(t, file, namei, "struct dentry *ll_splice_alias(struct inode *inode, struct dentry *de)",
		"/* kregress test: a comment, harmless */\n", "[PATCH 1/2] llite: comment ll_splice_alias")
	// The bad patch goes after d_add in ll_splice_alias, far enough from
	// patch 1's change for both to apply.
	p2 := testlustre.InsertPatch(t, file, namei, "\td_add(de, inode);\n",
		"\tif (inode && S_ISREG(inode->i_mode)) {\n\t\tunsigned long * volatile p = NULL;\n\n\t\t*p = 0; /* kregress test: NULL dereference */\n\t}\n",
		"[PATCH 2/2] llite: break ll_splice_alias")
	series := t.TempDir()
	os.WriteFile(filepath.Join(series, "0001.patch"), []byte(p1), 0o644)
	os.WriteFile(filepath.Join(series, "0002.patch"), []byte(p2), 0o644)

	var ss []*suites.Suite
	names := []string{"lustre-sanity"}
	if slices.Contains(suites.Builtin(), "lustre-lookup") {
		names = append(names, "lustre-lookup")
	}
	for _, n := range names {
		s, err := suites.Load(n)
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()
	start := time.Now()
	spec.Build.Series = series
	spec.Client, spec.ClientSeries = &ClientSpec{Tree: snap}, true
	spec.Suites, spec.PerPatch, spec.Out = ss, true, t.TempDir()
	spec.Run = Spec{BootTimeout: 5 * time.Minute}
	spec.Command = command + " --client " + snap + " --client-series " + series + " --per-patch"
	spec.Progress = func(f string, a ...any) { t.Logf(f, a...) }
	res, dir, err := TestSeries(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	results.SeriesSummary(&table, res, dir)
	t.Logf("wall %s\n%s", time.Since(start).Round(time.Second), table.String())
	if !strings.Contains(table.String(), "applied to the client tree") {
		t.Error("the summary does not say the series targets the client tree")
	}
	if res.Base == nil || res.Base.Verdict != results.VerdictPass {
		logFailedTests(t, res.Base)
		t.Fatalf("base: %+v", res.Base)
	}
	for key, st := range res.Base.Tests {
		if st != results.StatusPass {
			t.Errorf("base: %s %s", key, st)
		}
	}
	if len(res.Patches) != 2 {
		t.Fatalf("want 2 patch verdicts, got %d", len(res.Patches))
	}
	if p := res.Patches[0]; p.Verdict != results.VerdictPass || p.ClientConfigured {
		t.Errorf("patch 1: verdict %s (%s), configured %v: want pass, incremental", p.Verdict, p.Message, p.ClientConfigured)
	}
	fb := res.FirstBad
	if fb == nil || fb.Index != 2 || fb.Verdict != results.VerdictCrash {
		t.Fatalf("first bad: %+v, want patch 2 crash", fb)
	}
	if !strings.Contains(fb.Title, "ll_splice_alias") {
		t.Errorf("title %q does not name ll_splice_alias", fb.Title)
	}
	if !strings.Contains(fb.Reproduce, "--lustre-modules") {
		t.Errorf("reproduce %q does not load the step's client modules", fb.Reproduce)
	}
	// The reproduce run cuts the client tree from its frames too.
	if data, err := os.ReadFile(filepath.Join(res.Patches[1].ClientModules, sourceRootFile)); err != nil || !strings.HasPrefix(string(data), "/") {
		t.Errorf("the step's modules do not name their client tree: %q, %v", data, err)
	}
	found := false
	for _, c := range res.Patches[1].Crashes {
		for _, f := range c.Stack {
			if f.Func == "ll_splice_alias" && f.File == file && f.Line > 0 {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no ll_splice_alias %s:NNN frame in patch 2's crashes: %+v", file, res.Patches[1].Crashes)
	}
	if !strings.Contains(table.String(), "lustre/llite/namei.c:") {
		t.Error("the summary's stack has no lustre/llite/namei.c line")
	}
}

// fakeModule writes an ELF object with a .modinfo section naming deps.
func fakeModule(t *testing.T, dir, name string, deps ...string) string {
	t.Helper()
	obj := filepath.Join(dir, name+".o")
	if out, err := exec.Command("gcc", "-x", "c", "-c", "-o", obj, "/dev/null").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v: %s", err, out)
	}
	info := filepath.Join(dir, name+".modinfo")
	os.WriteFile(info, []byte("name="+name+"\x00depends="+strings.Join(deps, ",")+"\x00"), 0o644)
	ko := filepath.Join(dir, name+".ko")
	if out, err := exec.Command("objcopy", "--add-section", ".modinfo="+info, obj, ko).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v: %s", err, out)
	}
	return ko
}

// ClientModules keeps what a mount needs (the mount set and its .modinfo
// dependencies) and leaves test modules out.
func TestClientModules(t *testing.T) {
	dir := t.TempDir()
	mods := map[string][]string{
		"libcfs": nil, "lnet": {"libcfs"}, "ksocklnd": {"lnet", "libcfs"}, "obdclass": {"lnet", "libcfs"},
		"ptlrpc": {"obdclass", "lnet", "libcfs"}, "fld": {"ptlrpc"}, "fid": {"ptlrpc"}, "lmv": {"fld", "ptlrpc"},
		"mdc": {"ptlrpc"}, "lov": {"ptlrpc"}, "osc": {"ptlrpc"}, "mgc": {"ptlrpc"}, "lustre": {"lmv", "ptlrpc", "fid"},
		"obdecho": {"ptlrpc"}, "lnet_selftest": {"lnet"}, "llog_test": {"obdclass"},
	}
	var kos []string
	for _, n := range []string{"libcfs", "lnet", "lnet_selftest", "ksocklnd", "obdclass", "llog_test", "ptlrpc", "fld", "fid", "lmv", "mdc", "lov", "osc", "mgc", "obdecho", "lustre"} {
		kos = append(kos, fakeModule(t, dir, n, mods[n]...))
	}
	got, err := ClientModules(kos)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range got {
		names = append(names, moduleName(g))
	}
	if want := "libcfs lnet ksocklnd obdclass ptlrpc fld fid lmv mdc lov osc mgc lustre"; strings.Join(names, " ") != want {
		t.Errorf("got %v, want %s", names, want)
	}
	var noOSC []string
	for _, k := range kos {
		if moduleName(k) != "osc" {
			noOSC = append(noOSC, k)
		}
	}
	if _, err := ClientModules(noOSC); err == nil || !strings.Contains(err.Error(), "osc.ko") {
		t.Errorf("without osc.ko: %v, want an error naming it", err)
	}
}

// A series whose first patch does not apply is bad input, and the error
// says which tree it was given for and what to do instead.
func TestFirstPatchOtherTree(t *testing.T) {
	ts := &seriesTester{spec: SeriesSpec{Build: build.Request{Source: "/usr/src/linux-source-6.1.tar.xz", Series: "lustre.mbox"}}}
	ae := &build.ApplyError{Patch: build.Patch{Number: 1, Total: 3, Subject: "llite: rework"}, File: "lustre/llite/namei.c",
		Detail: "error: lustre/llite/namei.c: No such file or directory"}
	err := ts.noteNoApply(ae)
	if build.Classify(err) != build.ClassBadInput || !strings.Contains(err.Error(), "patch 1/3") || !strings.Contains(err.Error(), "lustre/llite/namei.c") ||
		!strings.Contains(err.Error(), "kernel tree") || !strings.Contains(err.Error(), "--client-series") {
		t.Errorf("got %v", err)
	}
	ts.spec.ClientSeries, ts.spec.Client = true, &ClientSpec{Tree: "lustre.tar.xz"}
	ae.File, ae.Detail = "fs/namei.c", "error: fs/namei.c: does not exist in index"
	if err := ts.noteNoApply(ae); err == nil || !strings.Contains(err.Error(), "client tree lustre.tar.xz") || !strings.Contains(err.Error(), "give it with --series") {
		t.Errorf("client series: got %v", err)
	}
	ae2 := *ae
	ae2.Patch.Number = 2
	if err := ts.noteNoApply(&ae2); err != nil {
		t.Errorf("patch 2 not applying is a verdict, not bad input: %v", err)
	}
}

// A client tree that does not configure against the kernel: the base is
// INFRA and says why, in configure's own words from config.log.
func TestClientConfigureFailsOnBase(t *testing.T) {
	kernel, _ := testlustre.DebianKernel(t)
	t.Setenv("KREGRESS_CACHE", t.TempDir()) // the fake tree's copy is not kept
	dir := t.TempDir()
	tree := filepath.Join(dir, "fakeclient")
	os.MkdirAll(tree, 0o755)
	// autogen.sh writes a configure that fails the way lustre-release's
	// does without CONFIG_FHANDLE: AC_MSG_ERROR's text in config.log.
	os.WriteFile(filepath.Join(tree, "autogen.sh"), []byte(`cat > configure <<'X'
#!/bin/sh
printf 'checking whether fhandle is supported... no\nconfigure:4242: error: \n\nLustre fid handling requires that CONFIG_FHANDLE is enabled in your kernel.\n\n## ---- ##\n' > config.log
echo "configure: error: see config.log" >&2
exit 1
X
chmod +x configure
`), 0o755)
	os.WriteFile(filepath.Join(tree, "Makefile"), []byte("modules:\n\ttrue\n"), 0o644)
	tarball := filepath.Join(dir, "fakeclient.tar.xz")
	if out, err := exec.Command("tar", "-C", dir, "-cJf", tarball, "fakeclient").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	patch := testlustre.InsertPatch(t, "Makefile", "modules:\n\ttrue\n", "modules:", "\t: patched\n", "[PATCH] touch the Makefile")
	series := filepath.Join(dir, "s.mbox")
	os.WriteFile(series, []byte(patch), 0o644)
	s, err := suites.Load("lustre-sanity")
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := TestSeries(context.Background(), SeriesSpec{
		Build: build.Request{Series: series}, Kernel: kernel, Client: &ClientSpec{Tree: tarball}, ClientSeries: true,
		Suites: []*suites.Suite{s}, Out: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != results.StatusInfra || res.Base == nil || res.Base.Verdict != results.VerdictNoBuild {
		t.Fatalf("status %s, base %+v: want infra with a no-build base", res.Status, res.Base)
	}
	t.Logf("reason: %s", res.Reason)
	if !strings.Contains(res.Reason, "does not configure against kernel") || !strings.Contains(res.Reason, "Lustre fid handling requires that CONFIG_FHANDLE is enabled") {
		t.Errorf("reason %q does not quote configure's error", res.Reason)
	}
}

// InstallClient keeps what a mount needs and names the client tree.
func TestInstallClient(t *testing.T) {
	dir := t.TempDir()
	var kos []string
	for _, n := range []string{"libcfs", "lnet", "ksocklnd", "obdclass", "ptlrpc", "lmv", "mdc", "lov", "osc", "mgc", "lustre", "obdecho"} {
		kos = append(kos, fakeModule(t, dir, n))
	}
	out := filepath.Join(t.TempDir(), "lustre-modules")
	got, err := InstallClient(&build.ClientResult{Dir: "/cache/client/tree", Modules: kos}, out)
	if err != nil {
		t.Fatal(err)
	}
	// No .modinfo dependencies here: the mount set alone, no obdecho.
	if len(got) != len(mountModules) {
		t.Errorf("installed %d modules, want the %d a mount loads: %v", len(got), len(mountModules), got)
	}
	if data, _ := os.ReadFile(filepath.Join(out, sourceRootFile)); string(data) != "/cache/client/tree\n" {
		t.Errorf("%s: %q", sourceRootFile, data)
	}
}

// logFailedTests logs what each failed test of a step printed, so that a
// failure seen only in CI says why (e.g. which LustreError line
// no-lustre-errors found).
func logFailedTests(t *testing.T, st *results.Step) {
	t.Helper()
	if st == nil {
		return
	}
	for _, dir := range st.Runs {
		r, err := results.ReadResult(dir)
		if err != nil {
			t.Logf("%s: %v", dir, err)
			continue
		}
		for _, tt := range r.Tests {
			if !tt.Status.Failed() || tt.Output == "" {
				continue
			}
			out, err := os.ReadFile(filepath.Join(dir, tt.Output))
			if err != nil {
				t.Logf("%s/%s: %v", r.Suite, tt.Name, err)
				continue
			}
			if len(out) > 4096 {
				out = out[len(out)-4096:]
			}
			t.Logf("%s/%s %s (exit %d), its output:\n%s", r.Suite, tt.Name, tt.Status, tt.ExitCode, out)
		}
	}
}

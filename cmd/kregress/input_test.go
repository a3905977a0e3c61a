package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/kregress/kregress/internal/testkernel"
	"github.com/kregress/kregress/job"
	"github.com/kregress/kregress/results"
)

// TestHelp: every subcommand's --help and "kregress help CMD" print the
// usage to stdout and exit 0, with nothing on stderr.
func TestHelp(t *testing.T) {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, args := range [][]string{{n, "--help"}, {n, "-h"}, {"help", n}} {
			code, stdout, stderr := runMain(t, args...)
			if code != exitOK || !strings.HasPrefix(stdout, "usage: kregress "+n+" ") || stderr != "" {
				t.Errorf("kregress %s: exit %d, stdout %.60q, stderr %q", strings.Join(args, " "), code, stdout, stderr)
			}
		}
	}
	if code, _, stderr := runMain(t, "help", "nosuch"); code != exitInfra || !strings.Contains(stderr, `"nosuch"`) {
		t.Errorf("help nosuch: exit %d, %q", code, stderr)
	}
}

// badInput runs kregress with args (plus --out DIR) and checks that it
// exits 2 with one error line naming want (and at most a pointer to
// --help), prints nothing on stdout, and leaves DIR absent.
func badInput(t *testing.T, want string, args ...string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := runMain(t, append(args, "--out", out)...)
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) == 2 && strings.HasPrefix(lines[1], "(run 'kregress ") {
		lines = lines[:1]
	}
	if code != exitInfra || !strings.Contains(stderr, want) || len(lines) != 1 || stdout != "" {
		t.Errorf("kregress %s:\nexit %d, stdout %q, stderr %q; want exit 2 and one error line with %q", strings.Join(args, " "), code, stdout, stderr, want)
	}
	if strings.Count(stderr, "kregress") > 2 || strings.Contains(stderr, "build: build:") {
		t.Errorf("doubled prefix in %q", stderr)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("kregress %s: bad input left %s (%v)", strings.Join(args, " "), out, err)
	}
}

// TestRejectBadInput: what cannot work is refused before any work, with
// exit 2, one clear error and no run directory; run and test share the
// flags and their checks.
func TestRejectBadInput(t *testing.T) {
	tmp := t.TempDir()
	// Validation comes before any look at the kernel's contents: a file
	// that exists serves as --kernel here.
	kernel := filepath.Join(tmp, "bzImage")
	os.WriteFile(kernel, []byte("not a kernel\n"), 0o644)
	suite := func(name, body string) string {
		p := filepath.Join(tmp, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	expect300 := suite("expect.yaml", "name: x\ntests:\n  - name: a\n    run: exit 44\n    expect: 300\n")
	twoDocs := suite("two.yaml", "name: x\ntests:\n  - {name: a, run: x}\n---\nname: y\ntests:\n  - {name: b, run: y}\n")
	lustreTree := suite("tree.yaml", "dirs: []\n")
	for _, c := range []struct {
		want string
		args []string
	}{
		{"--cpus 0", []string{"--cpus", "0"}},
		{"--cpus 1000", []string{"--cpus", "1000"}},
		{"--memory 0", []string{"--memory", "0"}},
		{`--accel "fast"`, []string{"--accel", "fast"}},
		{`--boot "uefi"`, []string{"--boot", "uefi"}},
		{"--timeout 0s", []string{"--timeout", "0"}},
		{"--boot-timeout -1s", []string{"--boot-timeout", "-1s"}},
		{expect300 + ":5:13: want an integer from 0 to 255", []string{"--suite", expect300}},
		{twoDocs + ":4:1: a second YAML document", []string{"--suite", twoDocs}},
		{"no suite file or shipped suite named", []string{"--suite", "nosuch"}},
		{"--initrd-extra", []string{"--initrd-extra", filepath.Join(tmp, "missing")}},
		{"no suite has target lustre", []string{"--lustre-tree", lustreTree}},
		{"flag provided but not defined: -nosuch", []string{"--nosuch"}},
	} {
		badInput(t, c.want, append([]string{"run", "--kernel", kernel}, c.args...)...)
		badInput(t, c.want, append([]string{"test", "--source", tmp, "--series", tmp}, c.args...)...)
	}
	badInput(t, "--jobs 0", "run", "--kernel", kernel, "--jobs", "0")
	badInput(t, "--ko", "run", "--kernel", kernel, "--ko", filepath.Join(tmp, "missing.ko"))
	badInput(t, "targets lustre", "run", "--kernel", kernel, "--suite", "lustre-sanity")
	badInput(t, "--config", "test", "--source", tmp, "--series", tmp, "--config", "no-such-preset")
	// A file that is not a kernel fails before a run directory is made.
	badInput(t, kernel, "run", "--kernel", kernel)
}

// TestSuiteFileByName: --suite NAME loads ./NAME when that file exists,
// though NAME has no "/" or "." in it (and fails on its content here, so
// no VM is needed to tell).
func TestSuiteFileByName(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	os.WriteFile("mysuite", []byte("name: mine\ntests:\n  - name: a\n    rnu: x\n"), 0o644)
	os.WriteFile("bzImage", []byte("x"), 0o644)
	badInput(t, "mysuite:4:5: unknown key \"rnu\"", "run", "--kernel", "bzImage", "--suite", "mysuite")
}

// TestBuildErrorNotDoubled: an error from the build package reads
// "kregress: build: source ...", not "kregress build: build: source ...".
func TestBuildErrorNotDoubled(t *testing.T) {
	t.Setenv("KREGRESS_CACHE", t.TempDir())
	code, _, stderr := runMain(t, "build", "--source", t.TempDir())
	if code != exitInfra || !strings.HasPrefix(stderr, "kregress: build: source ") {
		t.Errorf("build of a folder that is no kernel tree: exit %d, %q", code, stderr)
	}
}

// TestVerdictBeforeRecordError: when result.json cannot be written (a
// full disk, here a run directory gone under the job's feet) the verdict
// is printed first, then one line says the record is missing, exit 2.
func TestVerdictBeforeRecordError(t *testing.T) {
	kernel := filepath.Join(t.TempDir(), "bzImage")
	os.WriteFile(kernel, []byte("x"), 0o644)
	out := t.TempDir()
	defer func(old func(context.Context, job.Spec) (*results.Result, string, error)) { runJob = old }(runJob)
	runJob = func(ctx context.Context, spec job.Spec) (*results.Result, string, error) {
		d, err := results.NewDir(spec.Out, spec.Suite.Name)
		if err != nil {
			return nil, "", err
		}
		os.RemoveAll(d.Path)
		res := &results.Result{Status: results.StatusFail, Reason: "1 of 7 tests failed", Suite: spec.Suite.Name}
		return res, d.Path, d.WriteResult(res)
	}
	for _, asJSON := range []bool{false, true} {
		args := []string{"run", "--kernel", kernel, "--out", out}
		if asJSON {
			args = append(args, "--json")
		}
		code, stdout, stderr := runMain(t, args...)
		if code != exitInfra || !strings.Contains(stdout, "1 of 7 tests failed") ||
			!strings.Contains(stderr, "could not be recorded") || !strings.Contains(stderr, "result.json") {
			t.Errorf("json %v: exit %d\nstdout %q\nstderr %q", asJSON, code, stdout, stderr)
		}
	}
}

// TestArgErrorsOneLine: a missing or extra argument is one error line and
// a pointer to --help, not the whole usage, on every subcommand.
func TestArgErrorsOneLine(t *testing.T) {
	for _, args := range [][]string{{"parse"}, {"report"}, {"history", "extra"}, {"run"}, {"test"}, {"build"}} {
		code, stdout, stderr := runMain(t, args...)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		if code != exitInfra || stdout != "" || len(lines) != 2 || !strings.HasPrefix(lines[1], "(run 'kregress "+args[0]+" --help'") {
			t.Errorf("kregress %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

// TestSeriesVerdictBeforeRecordError: the same for "kregress test".
func TestSeriesVerdictBeforeRecordError(t *testing.T) {
	src := t.TempDir()
	defer func(old func(context.Context, job.SeriesSpec) (*results.SeriesResult, string, error)) {
		testSeries = old
	}(testSeries)
	testSeries = func(ctx context.Context, spec job.SeriesSpec) (*results.SeriesResult, string, error) {
		res := &results.SeriesResult{Status: results.StatusRegression, Series: spec.Build.Series, Source: spec.Build.Source,
			Base: &results.Step{Verdict: results.VerdictPass}, Patches: []*results.PatchVerdict{{Index: 1, Subject: "the bad one", Step: results.Step{Verdict: results.VerdictCrash}}}}
		return res, filepath.Join(spec.Out, "series-x"), errors.New("results: write out/series-x/result.json: no space left on device")
	}
	code, stdout, stderr := runMain(t, "test", "--source", src, "--series", src, "--out", t.TempDir())
	if code != exitInfra || !strings.Contains(stdout, "the bad one") || !strings.Contains(stderr, "could not be recorded") || !strings.Contains(stderr, "no space left") {
		t.Errorf("exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
}

// TestFullDiskVerdictFirst: on a real full filesystem (a 64 KiB tmpfs,
// filled) the verdict is printed, then one line says result.json could
// not be written, exit 2. The run ends early (no guest agent), so no VM
// boots. Needs root to mount the tmpfs.
func TestFullDiskVerdictFirst(t *testing.T) {
	kernel := testkernel.Debian(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v", err)
	}
	defer syscall.Unmount(dir, syscall.MNT_DETACH)
	fill, _ := os.Create(filepath.Join(dir, "fill"))
	for {
		if _, err := fill.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	fill.Close()
	t.Setenv("KREGRESS_AGENT", filepath.Join(t.TempDir(), "no-agent"))
	code, stdout, stderr := runMain(t, "run", "--kernel", kernel, "--out", filepath.Join(dir, "out"))
	if code != exitInfra || !strings.Contains(stdout, "status   INFRA") || !strings.Contains(stdout, "no-agent") ||
		!strings.Contains(stderr, "could not be recorded") || !strings.Contains(stderr, "no space left on device") {
		t.Errorf("exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
}

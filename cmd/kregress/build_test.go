package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildCommandUsage(t *testing.T) {
	code, stdout, stderr := runMain(t, "build", "--help")
	if code != exitOK || !strings.Contains(stdout, "usage: kregress build --source PATH") || !strings.Contains(stdout, "qemu-minimal") {
		t.Errorf("build --help: code %d, stdout %q", code, stdout)
	}
	code, _, stderr = runMain(t, "build")
	if code != exitInfra || !strings.Contains(stderr, "--source is required") {
		t.Errorf("build without --source: code %d, stderr %q", code, stderr)
	}
	code, _, stderr = runMain(t, "build", "--source", "/usr/src/linux-source-6.1.tar.xz", "--config", "no-such-preset")
	if code != exitInfra || !strings.Contains(stderr, `"no-such-preset" is neither a preset`) {
		t.Errorf("build with a bad preset: code %d, stderr %q", code, stderr)
	}
	code, _, stderr = runMain(t, "build", "--source", "/nonexistent/linux.tar.xz")
	if code != exitInfra || !strings.Contains(stderr, "/nonexistent/linux.tar.xz") {
		t.Errorf("build with a missing source: code %d, stderr %q", code, stderr)
	}
}

// TestBuildCommandBrokenSeries: a series that does not apply is a test
// result (exit 1) and the message names the patch, file and hunk.
func TestBuildCommandBrokenSeries(t *testing.T) {
	const tarball = "/usr/src/linux-source-6.1.tar.xz"
	if testing.Short() {
		t.Skip("prepares the kernel tarball's tree in the cache: not in -short mode")
	}
	if _, err := os.Stat(tarball); err != nil {
		t.Skipf("skipping: needs %s (Debian package linux-source-6.1)", tarball)
	}
	code, stdout, stderr := runMain(t, "build", "--source", tarball, "--series", "../../build/testdata/series/broken", "--config", "qemu-minimal")
	if code != exitFail || !strings.Contains(stderr, `patch 2/3 "kregress-test: tag two init messages"`) ||
		!strings.Contains(stderr, "init/main.c hunk #2") {
		t.Errorf("broken series: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestBadSourceSameEverywhere (issue 12 item 8, issue 10 §3): a git tree
// that is not a kernel, and a series that is no series, are bad input:
// exit 2 with the same message from build, run --build and test, and no
// run directory.
func TestBadSourceSameEverywhere(t *testing.T) {
	t.Setenv("KREGRESS_CACHE", t.TempDir())
	repo := filepath.Join(t.TempDir(), "notlinux")
	os.MkdirAll(repo, 0o755)
	os.WriteFile(filepath.Join(repo, "Makefile"), []byte("all:\n\techo hello\n"), 0o644)
	for _, c := range [][]string{{"git", "init", "-q"}, {"git", "add", "-A"},
		{"git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x"}} {
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	series := "../../build/testdata/series/good.mbox"
	for _, bad := range []struct{ source, series, want string }{
		{repo, series, "is not a kernel tree"},
		{repo, "no-such-series", `series "no-such-series" is not a file, a folder, or a git range`},
		{"/usr/src/linux-source-6.1.tar.xz", "v6.1..topic", `series "v6.1..topic" is not a file, a folder, or a git range in a git source`},
	} {
		out := t.TempDir()
		var msgs []string
		for _, args := range [][]string{
			{"build", "--source", bad.source, "--series", bad.series},
			{"run", "--build", "--source", bad.source, "--series", bad.series, "--out", out},
			{"test", "--source", bad.source, "--series", bad.series, "--out", out},
		} {
			code, _, stderr := runMain(t, args...)
			if code != exitInfra || !strings.Contains(stderr, bad.want) {
				t.Errorf("%s: exit %d, %q; want exit 2 saying %q", strings.Join(args, " "), code, stderr, bad.want)
			}
			_, msg, _ := strings.Cut(stderr, ": ")
			msgs = append(msgs, strings.TrimSpace(msg))
		}
		if bad.want != "is not a kernel tree" && (msgs[0] != msgs[1] || msgs[1] != msgs[2]) {
			t.Errorf("the same bad input, different messages:\n%s", strings.Join(msgs, "\n"))
		}
		if ents, _ := os.ReadDir(out); len(ents) != 0 {
			t.Errorf("bad input left %d entries in the output dir", len(ents))
		}
	}
}

package main

import (
	"os"
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
	if _, err := os.Stat(tarball); err != nil {
		t.Skipf("skipping: needs %s (Debian package linux-source-6.1)", tarball)
	}
	code, stdout, stderr := runMain(t, "build", "--source", tarball, "--series", "../../build/testdata/series/broken", "--config", "qemu-minimal")
	if code != exitFail || !strings.Contains(stderr, `patch 2/3 "kregress-test: tag two init messages"`) ||
		!strings.Contains(stderr, "init/main.c hunk #2") {
		t.Errorf("broken series: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

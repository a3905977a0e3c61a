package job

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/suites"
)

// TestBuiltLockdepKernelBoots builds Debian's linux-source-6.1 with the
// qemu-minimal and lockdep presets, boots it with the runner and the
// agent, runs the smoke suite, and finds lockdep's boot-time self-test
// result on the console.
func TestBuiltLockdepKernelBoots(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a kernel: not in -short mode")
	}
	if _, err := os.Stat(linuxSource); err != nil {
		t.Skipf("%s missing: install Debian's linux-source-6.1 (make setup)", linuxSource)
	}
	br, err := build.Build(t.Context(), build.Request{Source: linuxSource, Configs: []string{"qemu-minimal", "lockdep"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s (%s, incremental %v) in %v", br.BzImage, br.Release, br.Incremental, br.Duration)
	smoke, _ := suites.Load("smoke")
	modDir := ""
	if br.ModulesDir != "" {
		modDir = filepath.Join(br.ModulesDir, "lib", "modules", br.Release)
	}
	res, dir, err := Run(t.Context(), Spec{Kernel: br.BzImage, ModulesDir: modDir, Suite: smoke, Out: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "pass" || res.Release != br.Release {
		t.Errorf("smoke on the built kernel: %s (%s), release %s", res.Status, res.Reason, res.Release)
	}
	// qemu-minimal asks for CONFIG_PVH, so the runner boots the vmlinux directly.
	if res.Boot != "pvh" {
		t.Errorf("the built kernel booted through %q, want pvh", res.Boot)
	}
	console, _ := os.ReadFile(filepath.Join(dir, "console.log"))
	var selftest string
	for _, l := range strings.Split(string(console), "\n") {
		if strings.Contains(l, "testcases passed") || strings.Contains(l, "testcases failed") || strings.Contains(l, "unexpected failures") {
			selftest = l
		}
	}
	t.Logf("lockdep self-test: %s", selftest)
	if !strings.Contains(selftest, "Good, all") || !strings.Contains(selftest, "testcases passed") {
		t.Errorf("no passing lockdep self-test line on the console (last: %q)", selftest)
	}
}

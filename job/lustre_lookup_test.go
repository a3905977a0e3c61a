package job

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/internal/testlustre"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/suites"
)

// TestLustreLookupRealClient boots Debian's kernel twice against the
// simulated server with lustre-lookup: with the snapshot's own client
// every test passes and the server really churned the names; with
// examples/lustre-series patches 1-3 (patch 3 takes lli_lock twice) the
// first stat of a directory and of a missing name pass, the first stat of
// a regular file crashes the kernel, and the crash is titled with
// ll_splice_alias. The client builds are the lustre-client tests' cached
// ones (a cold build takes many minutes more).
func TestLustreLookupRealClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Lustre client and boots two VMs")
	}
	snap := testlustre.Snapshot(t)
	kernel, kt := testlustre.DebianKernel(t)
	series, err := build.ReadSeries(filepath.Join("..", "examples", "lustre-series"))
	if err != nil {
		t.Fatal(err)
	}
	if len(series) != 4 {
		t.Fatalf("examples/lustre-series has %d patches, want 4", len(series))
	}
	s, err := suites.Load("lustre-lookup")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	run := func(label string, patches []build.Patch) (*results.Result, string) {
		t.Helper()
		cr, err := build.BuildClient(ctx, build.ClientRequest{Tree: snap, Kernel: kt, Patches: patches})
		if err != nil {
			t.Fatalf("%s: building the client: %v", label, err)
		}
		start := time.Now()
		res, dir, err := Run(ctx, Spec{Kernel: kernel, Suite: s, Out: t.TempDir(), Label: label,
			Lustre: LustreSpec{Modules: cr.Modules}, BootTimeout: 5 * time.Minute})
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		t.Logf("%s: %s in %s (boot %.1fs)", label, res.Status, time.Since(start).Round(time.Second), res.BootSeconds)
		for _, tt := range res.Tests {
			t.Logf("  %-30s %-7s %5.1fs %s", tt.Name, tt.Status, tt.Seconds, tt.Message)
		}
		return res, dir
	}

	res, dir := run("stock", nil)
	if res.Status != results.StatusPass {
		t.Fatalf("stock client: %s: %s (run dir %s)", res.Status, res.Reason, dir)
	}
	for _, tt := range res.Tests {
		if !strings.HasSuffix(tt.Name, "-under-server-churn") {
			continue
		}
		if n, _ := tt.Metrics["server_changes"].(float64); n < 10 {
			t.Errorf("%s: %v server-side changes, want at least 10", tt.Name, tt.Metrics["server_changes"])
		}
		if n, _ := tt.Metrics["ops"].(float64); n < 100 {
			t.Errorf("%s: %v lookups, want at least 100", tt.Name, tt.Metrics["ops"])
		}
	}
	rpcs, _ := os.ReadFile(filepath.Join(dir, "lustre-rpcs.log"))
	if n := strings.Count(string(rpcs), "ast LDLM_BL_CALLBACK"); n < 50 {
		t.Errorf("the server sent %d blocking ASTs, want at least 50", n)
	}

	res, dir = run("patches-1-3", series[:3])
	if res.Status != results.StatusCrash || len(res.Crashes) == 0 {
		t.Fatalf("patches 1-3: %s: %s, want a crash (run dir %s)", res.Status, res.Reason, dir)
	}
	want := map[string]results.Status{"first-stat-dir": results.StatusPass, "first-stat-missing": results.StatusPass, "first-stat-file": results.StatusCrash}
	for _, tt := range res.Tests {
		if w, ok := want[tt.Name]; ok && tt.Status != w {
			t.Errorf("patches 1-3: %s %s, want %s", tt.Name, tt.Status, w)
		}
	}
	c := res.Crashes[0]
	if !strings.Contains(c.Title, "ll_splice_alias") {
		t.Errorf("patches 1-3: crash title %q does not name ll_splice_alias", c.Title)
	}
	found := false
	for _, f := range c.Stack {
		// run with module paths keeps the build copy's absolute path
		if f.Func == "ll_splice_alias" && strings.HasSuffix(f.File, "lustre/llite/namei.c") && f.Line > 0 {
			found = true
		}
	}
	if !found {
		t.Errorf("patches 1-3: no ll_splice_alias lustre/llite/namei.c:NNN frame in %+v", c.Stack)
	}
}

package job

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/suites"
)

const linuxSource = "/usr/src/linux-source-6.1.tar.xz"

// TestSeriesDemo is the README's demonstration, for real: Debian's
// linux-source-6.1 with the lockdep preset, and examples/seed-series, whose
// third of four patches takes a spinlock where it should release it. Each
// patch is built, booted and run with the seedfs suite; the base (no seedfs
// yet) fails the suite's mount and says so, the first two patches pass,
// the third is named as the first bad patch with a new lockdep report, and
// the fourth, harmless itself, still carries the bug.
func TestSeriesDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kernels: not in -short mode")
	}
	if _, err := os.Stat(linuxSource); err != nil {
		t.Skipf("%s missing: install Debian's linux-source-6.1 (make setup)", linuxSource)
	}
	root, _ := filepath.Abs("..")
	suite, err := suites.Load(filepath.Join(root, "examples", "seedfs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, dir, err := TestSeries(context.Background(), SeriesSpec{
		Build: build.Request{
			Source: linuxSource, Series: filepath.Join(root, "examples", "seed-series"),
			Configs: DemoConfigs(root),
		},
		Suites: []*suites.Suite{suite}, PerPatch: true, Out: t.TempDir(),
		Run:      Spec{BootTimeout: 5 * time.Minute},
		Progress: func(f string, a ...any) { t.Logf(f, a...) },
	})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	results.SeriesSummary(&table, res, dir)
	t.Logf("\n%s", table.String())
	// The base has no seedfs (patch 1 adds it): the tests that need the
	// filesystem fail there and the base says so, without a crash; the
	// tests that pass there (stat-root, lookup-missing, ls-l on an empty
	// mount point) are the ones a patch could regress.
	if res.Base == nil || res.Base.Verdict != results.VerdictFail || len(res.Base.Crashes) != 0 ||
		res.Base.Tests["seedfs/mount"] != results.StatusFail || res.Base.Tests["seedfs/stat-root"] != results.StatusPass {
		t.Fatalf("base: %+v, want fail (no seedfs before patch 1: seedfs/mount fails), no crash", res.Base)
	}
	if len(res.Patches) != 4 {
		t.Fatalf("want a verdict per patch (4), got %d", len(res.Patches))
	}
	if p := res.Patches[3]; p.Verdict != results.VerdictCrash {
		t.Errorf("patch 4 (on top of the bug): %s, want crash", p.Verdict)
	}
	for _, p := range res.Patches[:2] {
		if p.Verdict != results.VerdictPass {
			t.Errorf("patch %d %q: %s (%s), want pass", p.Index, p.Subject, p.Verdict, p.Message)
		}
	}
	bad := res.Patches[2]
	if bad.Verdict != results.VerdictCrash || len(bad.Crashes) == 0 || bad.Crashes[0].Status != results.CrashNew {
		t.Fatalf("patch 3: %s %+v, want a new crash", bad.Verdict, bad.Crashes)
	}
	c := bad.Crashes[0]
	if c.Type != "LOCKDEP" || !strings.Contains(c.Title, "seedfs_") {
		t.Errorf("patch 3 crash: %q (%s), want a lockdep report in a seedfs function", c.Title, c.Type)
	}
	if res.FirstBad == nil || res.FirstBad.Index != 3 || res.FirstBad.Title != c.Title {
		t.Errorf("first_bad %+v", res.FirstBad)
	}
	if res.Status != results.StatusRegression {
		t.Errorf("status %s", res.Status)
	}
	symbolized := false
	for _, f := range c.Stack {
		symbolized = symbolized || (strings.HasPrefix(f.Func, "seedfs_") && strings.Contains(f.File, "fs/seedfs/"))
	}
	if !symbolized {
		t.Errorf("no seedfs frame was symbolized to fs/seedfs/...: %+v", c.Stack)
	}
	if !strings.Contains(table.String(), "first bad: patch 3") || !strings.Contains(table.String(), "reproduce: kregress run --kernel") {
		t.Errorf("summary table lacks the first bad patch or the reproduce line")
	}
}

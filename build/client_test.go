package build_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/internal/testlustre"
)

// clientPatch returns a patch that adds a comment line to file in the
// client copy dir after the first line holding anchor.
func clientPatch(t *testing.T, dir, file, anchor, subject string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(testlustre.InsertPatch(t, file, string(data), anchor, "/* kregress test: "+subject+" */\n", "[PATCH] "+subject))
}

// TestBuildClientDebian builds the lustre-release snapshot's client
// modules against Debian's kernel headers (cold: autogen, configure, make;
// cached in $KREGRESS_CACHE afterwards), then one patch to llite/namei.c
// as an incremental step, then a patch that does not apply.
func TestBuildClientDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Lustre client (minutes)")
	}
	snap := testlustre.Snapshot(t)
	_, kt := testlustre.DebianKernel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	req := build.ClientRequest{Tree: snap, Kernel: kt, Progress: testWriter{t}}
	start := time.Now()
	res, err := build.BuildClient(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("base: configured=%v configure %.0fs make %.0fs (%d steps), wall %s, %d modules", res.Configured, res.ConfigureSeconds, res.MakeSeconds, res.Compiled, time.Since(start).Round(time.Second), len(res.Modules))
	names := map[string]string{}
	for _, m := range res.Modules {
		names[filepath.Base(m)] = m
		if strings.Contains(m, "conftest") {
			t.Errorf("configure's probe module %s collected", m)
		}
	}
	for _, want := range []string{"libcfs.ko", "lnet.ko", "ksocklnd.ko", "obdclass.ko", "ptlrpc.ko", "mgc.ko", "mdc.ko", "lmv.ko", "lov.ko", "osc.ko", "lustre.ko"} {
		if names[want] == "" {
			t.Errorf("no %s among the built modules %v", want, res.Modules)
		}
	}
	if t.Failed() {
		return
	}
	if fi, err := os.Stat(filepath.Join(kt.LinuxObj, "Module.symvers")); err != nil || fi.ModTime().After(start) {
		t.Errorf("the kernel's headers folder was written to (Module.symvers: %v)", err)
	}

	// One patch: an incremental make of the modules, no configure.
	p := clientPatch(t, res.Dir, "lustre/llite/namei.c", "ll_splice_alias(", "touch namei")
	series := filepath.Join(t.TempDir(), "p.mbox")
	os.WriteFile(series, p, 0o644)
	patches, err := build.ReadSeries(series)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(names["lustre.ko"])
	req.Patches = patches
	start = time.Now()
	r2, err := build.BuildClient(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one patch: configured=%v make %.1fs (%d steps), wall %s", r2.Configured, r2.MakeSeconds, r2.Compiled, time.Since(start).Round(time.Second))
	if r2.Configured || r2.Dir != res.Dir {
		t.Errorf("one patch reconfigured (%v) or moved (%s, was %s)", r2.Configured, r2.Dir, res.Dir)
	}
	after, _ := os.Stat(names["lustre.ko"])
	if before == nil || after == nil || !after.ModTime().After(before.ModTime()) {
		t.Errorf("lustre.ko was not rebuilt after a patch to llite/namei.c")
	}
	if r2.Compiled == 0 || r2.Compiled > 40 {
		t.Errorf("one-file patch ran %d kbuild steps, want a few", r2.Compiled)
	}
	if _, err := os.Stat(filepath.Join(res.Dir, "lustre/llite/namei.c")); err != nil {
		t.Fatal(err)
	}

	// Back to the base: the patch is gone from the copy.
	req.Patches = nil
	if _, err := build.BuildClient(ctx, req); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(res.Dir, "lustre/llite/namei.c")); strings.Contains(string(data), "kregress test") {
		t.Error("the base build still has the patch in the copy")
	}

	// A patch that does not apply names file and hunk.
	bad := strings.Replace(string(p), "ll_splice_alias(", "ll_splice_alias_nope(", 1)
	os.WriteFile(series, []byte(bad), 0o644)
	if req.Patches, err = build.ReadSeries(series); err != nil {
		t.Fatal(err)
	}
	_, err = build.BuildClient(ctx, req)
	var ae *build.ApplyError
	if !errors.As(err, &ae) || ae.File != "lustre/llite/namei.c" || ae.Hunk != 1 {
		t.Fatalf("bad patch: got %v, want an ApplyError for lustre/llite/namei.c hunk 1", err)
	}
	t.Logf("bad patch: %v", err)
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		w.t.Log(l)
	}
	return len(b), nil
}

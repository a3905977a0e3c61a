package build

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kregress/kregress/kconfig"
)

func TestConfigDistance(t *testing.T) {
	a := kconfig.Config{"CONFIG_A": "y", "CONFIG_B": "m", "CONFIG_C": "n", "CONFIG_S": `"x"`}
	b := kconfig.Config{"CONFIG_A": "y", "CONFIG_B": "y", "CONFIG_D": "y", "CONFIG_S": `"x"`}
	// B differs, C is n on both sides (absent in b), D is new.
	if got := configDistance(a, b); got != 2 {
		t.Errorf("configDistance = %d, want 2", got)
	}
	if got := configDistance(b, a); got != 2 {
		t.Errorf("configDistance reversed = %d, want 2", got)
	}
	if got := configDistance(a, a); got != 0 {
		t.Errorf("configDistance to itself = %d", got)
	}
}

// systemMapHas reports whether System.map defines the symbol name.
func systemMapHas(t *testing.T, path, name string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) == 3 && fs[2] == name {
			return true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return false
}

// folderState is what a build must not change in another config's folder.
func folderState(t *testing.T, r *Result) string {
	t.Helper()
	var b strings.Builder
	for _, f := range []string{r.Config, r.SystemMap, filepath.Join(r.Dir, completeMarker)} {
		d, err := fileDigest(f)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(filepath.Base(f) + "=" + d[:16] + " ")
	}
	return b.String()
}

// checkKey checks that the folder's .config, after make, is still the one
// the key was made from (make changed nothing in it).
func checkKey(t *testing.T, r *Result) {
	t.Helper()
	data, err := os.ReadFile(r.Config)
	if err != nil {
		t.Fatal(err)
	}
	if k := digest(r.Base, digest(string(data)))[:len(r.Key)]; k != r.Key {
		t.Errorf("%s: .config after make gives key %s, not the folder's %s", r.Dir, k, r.Key)
	}
}

// buildFresh builds req in a folder that did not exist before: the folder
// is removed again when the test ends, and one that a run killed before its
// end left behind is removed and built again, so that every run builds it
// from another config's folder.
func buildFresh(ctx context.Context, t *testing.T, req Request) *Result {
	t.Helper()
	r, err := Build(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeBuildDir(t, r.Dir) })
	if r.From != "" {
		return r
	}
	t.Logf("%s was left by an earlier run: removing it and building again", r.Dir)
	removeBuildDir(t, r.Dir)
	if r, err = Build(ctx, req); err != nil {
		t.Fatal(err)
	}
	return r
}

// removeBuildDir removes a build folder under its lock.
func removeBuildDir(t *testing.T, dir string) {
	lk, err := lock(context.Background(), dir+".lock", nil)
	if err != nil {
		t.Error(err)
		return
	}
	defer lk.unlock()
	if err := os.RemoveAll(dir); err != nil {
		t.Error(err)
	}
}

// TestConfigChangeStartsFromNearest is seed-series patch 1 (which adds
// CONFIG_SEEDFS) on qemu-minimal + lockdep, the config of
// TestBuildSeriesIncremental, whose folder it builds on: first without the
// option (patch 1 adds a "# CONFIG_SEEDFS is not set" line, so this is a
// key of its own, started from that folder with 0 symbols differing), then
// with seedfs.config (started from a copy of the first, the nearest and
// last built), then also without the virtio RNG driver (started from the
// second, the nearest, an option removed). Each config-change build runs a few dozen kbuild
// steps, not the ~2,000 of a clean build; each folder's .config is its
// key's; System.map has seedfs and, after the removal, no virtio RNG code
// although its stale object is still in the folder; the folders started
// from are unchanged. The two new folders are removed at the end (the
// first is also what README's seed-series example builds: a user who had
// it gets it back by the same incremental path).
func TestConfigChangeStartsFromNearest(t *testing.T) {
	needKernelSource(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	seed, err := ReadSeries("../examples/seed-series")
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"qemu-minimal", "lockdep"}
	req := Request{Source: tarball, Patches: seed[:1], Configs: base, Progress: progressWriter{t}}
	r0, err := Build(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("without seedfs: %s, incremental=%v, %d steps", r0.Duration, r0.Incremental, r0.Compiled)
	if systemMapHas(t, r0.SystemMap, "seedfs_fill_super") {
		t.Fatal("seedfs built without CONFIG_SEEDFS")
	}
	state0 := folderState(t, r0)

	req.Configs = append(append([]string{}, base...), "../examples/seed-series/seedfs.config")
	r1 := buildFresh(ctx, t, req)
	t.Logf("with seedfs: %s, from %s (%d symbols differ), %d steps", r1.Duration, r1.From, r1.FromDistance, r1.Compiled)
	if r1.Key == r0.Key || r1.From != r0.Key || r1.FromDistance != 1 || !r1.Incremental {
		t.Errorf("with seedfs: key %s from %q (distance %d, incremental %v); want a new key started from %s, 1 symbol apart",
			r1.Key, r1.From, r1.FromDistance, r1.Incremental, r0.Key)
	}
	// A clean build of this config runs about 2,000 kbuild steps.
	if r1.Compiled > 100 {
		t.Errorf("with seedfs: %d kbuild steps; adding one option needs a few dozen", r1.Compiled)
	}
	checkKey(t, r1)
	if !systemMapHas(t, r1.SystemMap, "seedfs_fill_super") {
		t.Error("with seedfs: System.map lacks seedfs_fill_super")
	}
	if !systemMapHas(t, r1.SystemMap, "random_recv_done") {
		t.Error("with seedfs: System.map lacks the virtio RNG driver's random_recv_done")
	}
	if s := folderState(t, r0); s != state0 {
		t.Errorf("the folder started from changed: %s, was %s", s, state0)
	}
	if _, err := os.Stat(filepath.Join(r1.Dir, "ext")); err == nil {
		t.Error("the copy took the out-of-tree module trees along")
	}
	state1 := folderState(t, r1)

	req.Configs = append(req.Configs, "testdata/no-virtio-rng.config")
	r2 := buildFresh(ctx, t, req)
	t.Logf("with seedfs, without virtio-rng: %s, from %s (%d symbols differ), %d steps", r2.Duration, r2.From, r2.FromDistance, r2.Compiled)
	if r2.From != r1.Key || r2.FromDistance != 1 {
		t.Errorf("without virtio-rng: started from %q (distance %d), want the nearest, %s, 1 symbol apart", r2.From, r2.FromDistance, r1.Key)
	}
	if r2.Compiled > 100 {
		t.Errorf("without virtio-rng: %d kbuild steps; removing one option needs a few dozen", r2.Compiled)
	}
	checkKey(t, r2)
	cfg, _ := os.ReadFile(r2.Config)
	if !bytes.Contains(cfg, []byte("\n# CONFIG_HW_RANDOM_VIRTIO is not set\n")) || !bytes.Contains(cfg, []byte("\nCONFIG_SEEDFS=y\n")) {
		t.Error("without virtio-rng: .config does not have SEEDFS=y and HW_RANDOM_VIRTIO unset")
	}
	if _, err := os.Stat(filepath.Join(r2.Dir, "drivers", "char", "hw_random", "virtio-rng.o")); err != nil {
		t.Logf("no stale virtio-rng.o in the copy (%v): the check below proves less", err)
	}
	if systemMapHas(t, r2.SystemMap, "random_recv_done") {
		t.Error("without virtio-rng: the removed driver is still linked (random_recv_done in System.map)")
	}
	if !systemMapHas(t, r2.SystemMap, "seedfs_fill_super") {
		t.Error("without virtio-rng: System.map lacks seedfs_fill_super")
	}
	if s := folderState(t, r1); s != state1 {
		t.Errorf("the folder started from changed: %s, was %s", s, state1)
	}
}

package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// A fake proc tree: init (1) has threads 1 and 7 (and 11, whose children
// file is gone); its children are 5, 6 and 8; 9 is a zombie whose parent
// is also 1 but that no children file lists (only the full scan finds
// it), 10 a zombie of another parent.
func fakeProc(t *testing.T, childrenFiles bool) string {
	t.Helper()
	proc := t.TempDir()
	write := func(rel, data string) {
		p := filepath.Join(proc, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1/stat", "1 (init) S 0 1 1 0")
	write("5/stat", "5 (sh) Z 1 5 5 0")
	write("6/stat", "6 (a b) c) S 1 6 6 0")
	write("8/stat", "8 (x) Z 1 8 8 0")
	write("9/stat", "9 (y) Z 1 9 9 0")
	write("10/stat", "10 (z) Z 4 10 10 0")
	if childrenFiles {
		write("1/task/1/children", "5 6 ")
		write("1/task/7/children", "8 ")
		write("1/task/11/stat", "")
	}
	return proc
}

func TestOrphanZombiesFromChildrenFiles(t *testing.T) {
	if got := orphanZombies(fakeProc(t, true), 1); !slices.Equal(got, []int{5, 8}) {
		t.Errorf("with children files: %v, want [5 8]", got)
	}
	got := orphanZombies(fakeProc(t, false), 1)
	slices.Sort(got)
	if !slices.Equal(got, []int{5, 8, 9}) {
		t.Errorf("full scan: %v, want [5 8 9]", got)
	}
}

// On this host's kernel: a child of the test that has exited and is not
// waited for is a zombie of the test process, found through the children
// files when the kernel has them and by the full scan when not; once
// waited for it is gone.
func TestOrphanZombiesRealKernel(t *testing.T) {
	me := os.Getpid()
	_, viaChildren := childrenOf("/proc", me)
	t.Logf("children files: %v", viaChildren)
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	var found bool
	for i := 0; i < 200 && !found; i++ {
		found = slices.Contains(orphanZombies("/proc", me), pid)
		if !found {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !found {
		t.Errorf("zombie %d not found among %d's children", pid, me)
	}
	cmd.Wait()
	if slices.Contains(orphanZombies("/proc", me), pid) {
		t.Errorf("%d still listed after it was waited for", pid)
	}
}

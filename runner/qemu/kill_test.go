package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kregress/kregress/internal/proc/proctest"

	"github.com/kregress/kregress/internal/proc"
	"github.com/kregress/kregress/internal/testkernel"
	"github.com/kregress/kregress/runner"
)

// TestHelperVMParent is not a test: TestSIGKILLLeavesNoQEMU runs it as
// the kregress that starts a VM and is killed.
func TestHelperVMParent(t *testing.T) {
	kernel := os.Getenv("KREGRESS_RUNNER_TEST_KERNEL")
	if kernel == "" {
		t.Skip("helper process for TestSIGKILLLeavesNoQEMU")
	}
	inst, err := runner.Start(context.Background(), runner.Config{Backend: Backend{}, Kernel: kernel, Initrd: os.Getenv("KREGRESS_RUNNER_TEST_INITRD"),
		Dir: os.Getenv("KREGRESS_RUNNER_TEST_DIR"), Accel: runner.AccelTCG})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("started", inst.Machine().(*Machine).Scratch())
	time.Sleep(time.Hour)
}

// TestSIGKILLLeavesNoQEMU starts a VM from a process, SIGKILLs that
// process, and checks that QEMU goes with it and that the next start
// removes the scratch directory it could not.
func TestSIGKILLLeavesNoQEMU(t *testing.T) {
	kernel, modDir := testkernel.DebianWithModules(t)
	img := agentImage(t, modDir, silentTree(t))
	tmp := t.TempDir()
	parent := proctest.Start(t, "TestHelperVMParent", "TMPDIR="+tmp, "KREGRESS_RUNNER_TEST_KERNEL="+kernel,
		"KREGRESS_RUNNER_TEST_INITRD="+img, "KREGRESS_RUNNER_TEST_DIR="+t.TempDir())
	scratch, ok := strings.CutPrefix(parent.First, "started ")
	if !ok {
		t.Fatalf("helper: %q", parent.First)
	}
	if before := proc.Describe(parent.Procs()); strings.Count(before, " "+qemuBinary+" ") != 2 { // the guard's command line names it too
		t.Fatalf("want QEMU and its guard running: %s", before)
	}
	// A live VM's scratch directory (owned by this process) must stay.
	live, lock, err := newScratch(tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if gone := sweepScratch(tmp); len(gone) != 0 {
		t.Fatalf("removed scratch directories of live VMs: %q", gone)
	}
	parent.KillAndCheck(t, 5*time.Second)
	if _, err := os.Stat(filepath.Join(scratch, "qmp.sock")); err != nil {
		t.Fatalf("the killed run's scratch directory is not there to sweep: %v", err)
	}
	gone := sweepScratch(tmp)
	if len(gone) != 1 || gone[0] != scratch {
		t.Errorf("sweep removed %q, want only %s", gone, scratch)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the live scratch directory went: %v", err)
	}
}

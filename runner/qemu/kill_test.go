package qemu

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kregress/kregress/internal/testkernel"
	"github.com/kregress/kregress/runner"
)

// markEnv tags the processes a kill test starts, so that survivors are
// found wherever they were reparented.
const markEnv = "KREGRESS_RUNNER_TEST_MARK"

// marked lists the live processes whose environment holds markEnv=mark.
func marked(mark string) []string {
	want := []byte(markEnv + "=" + mark + "\x00")
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		st, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if i := bytes.LastIndexByte(st, ')'); i >= 0 && bytes.HasPrefix(st[i+1:], []byte(" Z")) {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		out = append(out, e.Name()+" "+string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
	}
	return out
}

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
	mark := fmt.Sprint(time.Now().UnixNano())
	parent := exec.Command(os.Args[0], "-test.run=^TestHelperVMParent$")
	parent.Env = append(os.Environ(), "TMPDIR="+tmp, markEnv+"="+mark, "KREGRESS_RUNNER_TEST_KERNEL="+kernel,
		"KREGRESS_RUNNER_TEST_INITRD="+img, "KREGRESS_RUNNER_TEST_DIR="+t.TempDir())
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer parent.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	scratch, ok := strings.CutPrefix(strings.TrimSpace(line), "started ")
	if !ok {
		t.Fatalf("helper: %q", line)
	}
	before := marked(mark)
	qemu := 0
	for _, p := range before {
		if strings.Contains(p, " "+qemuBinary+" ") {
			qemu++
		}
	}
	if qemu != 2 { // the guard's command line names it too
		t.Fatalf("want QEMU and its guard running: %q", before)
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
	parent.Process.Signal(syscall.SIGKILL)
	parent.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for len(marked(mark)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := marked(mark); len(left) > 0 {
		for _, p := range left {
			pid, _ := strconv.Atoi(strings.Fields(p)[0])
			syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Fatalf("survived the SIGKILL of kregress: %q", left)
	}
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

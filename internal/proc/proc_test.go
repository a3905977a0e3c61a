package proc_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kregress/kregress/internal/proc"
	"github.com/kregress/kregress/internal/proc/proctest"
)

// markEnv tags every process a test starts, so that survivors can be
// found wherever they were reparented.
const markEnv = "KREGRESS_PROC_TEST_MARK"

// marked returns the live processes tagged with markEnv=mark.
func marked(mark string) []int { return proc.Tagged(markEnv, mark) }

func describe(pids []int) string { return proc.Describe(pids) }

// waitFor polls until cond holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// makefile has a recursive sub-make, parallel "compilers" (sleeps), a
// shell with a background job and a process that leaves the group with
// setsid, as build systems do.
const makefile = `all: a b
a:
	$(MAKE) -f $(firstword $(MAKEFILE_LIST)) sub
b:
	sleep 1001
sub: c d e
c:
	sleep 1002
d:
	sh -c 'sleep 1003 & wait'
e:
	setsid sleep 1004 & sleep 1005
`

// TestHelperParent is not a test: run by TestSIGKILLOfParentKillsMake as
// the parent (kregress's stand-in) that starts make and is then killed.
func TestHelperParent(t *testing.T) {
	dir := os.Getenv("KREGRESS_PROC_TEST_PARENT")
	if dir == "" {
		t.Skip("helper process for TestSIGKILLOfParentKillsMake")
	}
	cmd := proc.Command(context.Background(), "make", "-j8", "-f", filepath.Join(dir, "Makefile"))
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("started", cmd.Process.Pid)
	time.Sleep(time.Hour)
}

// TestSIGKILLOfParentKillsMake starts a real make (sub-make, parallel
// jobs, a setsid escapee) from a parent process, SIGKILLs the parent and
// checks that no process of the make survives.
func TestSIGKILLOfParentKillsMake(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is needed: ", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte(makefile), 0o644); err != nil {
		t.Fatal(err)
	}
	parent := proctest.Start(t, "TestHelperParent", "KREGRESS_PROC_TEST_PARENT="+dir)
	if !strings.HasPrefix(parent.First, "started") {
		t.Fatalf("helper parent: %q", parent.First)
	}
	// The parent, its guard, two makes, shells and five sleeps.
	sleeps := func() int {
		n := 0
		for _, p := range parent.Procs() {
			c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
			if bytes.HasPrefix(c, []byte("sleep\x00100")) {
				n++
			}
		}
		return n
	}
	if !waitFor(10*time.Second, func() bool { return sleeps() == 5 }) {
		t.Fatalf("make did not start its five sleeps: %s", proc.Describe(parent.Procs()))
	}
	t.Logf("before SIGKILL: %s", proc.Describe(parent.Procs()))
	parent.KillAndCheck(t, 5*time.Second)
}

func TestExitStatusAndStreams(t *testing.T) {
	ctx := context.Background()
	cmd := proc.Command(ctx, "sh", "-c", "read x; echo out:$x; echo err >&2; exit 3")
	cmd.Stdin = strings.NewReader("in\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit: %v, want exit status 3", err)
	}
	if stdout.String() != "out:in\n" || stderr.String() != "err\n" {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
	out, err := proc.Command(ctx, "sh", "-c", "kill -TERM $$").CombinedOutput()
	if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("a command killed by SIGTERM: %v %q, want signal: terminated", err, out)
	}
	if _, err := proc.Command(ctx, "/nonexistent/tool").Output(); err == nil || !strings.Contains(err.Error(), "/nonexistent/tool") {
		t.Errorf("missing program: %v", err)
	}
	// Extra files reach the command at fd 3.
	r, w, _ := os.Pipe()
	cmd = proc.Command(ctx, "sh", "-c", "echo via-fd3 >&3")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, _ := bufio.NewReader(r).ReadString('\n')
	if got != "via-fd3\n" {
		t.Errorf("fd 3: %q", got)
	}
}

// TestCancelKillsEverything: a context's end kills the command and what
// it started, including a process that left the group.
func TestCancelKillsEverything(t *testing.T) {
	mark := fmt.Sprint(time.Now().UnixNano())
	ctx, cancel := context.WithCancel(context.Background())
	cmd := proc.Command(ctx, "sh", "-c", "setsid sleep 1006 & sleep 1007 & wait")
	cmd.Env = append(os.Environ(), markEnv+"="+mark)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return len(marked(mark)) == 4 }) {
		t.Fatalf("want guard, sh and two sleeps: %s", describe(marked(mark)))
	}
	cancel()
	start := time.Now()
	if err := cmd.Wait(); err == nil {
		t.Error("Wait returned no error after cancel")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("cancel took %v", took)
	}
	if !waitFor(2*time.Second, func() bool { return len(marked(mark)) == 0 }) {
		t.Fatalf("left after cancel: %s", describe(marked(mark)))
	}
}

// TestLeftoversKilledAtExit: what a command leaves running when it exits
// is killed too.
func TestLeftoversKilledAtExit(t *testing.T) {
	mark := fmt.Sprint(time.Now().UnixNano())
	cmd := proc.Command(context.Background(), "sh", "-c", "setsid sleep 1008 >/dev/null 2>&1 & exit 0")
	cmd.Env = append(os.Environ(), markEnv+"="+mark)
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if left := marked(mark); len(left) > 0 {
		t.Fatalf("left after the command exited: %s", describe(left))
	}
}

// TestHeldLockLastsUntilTheCommandIsGone: a lock file handed to the
// guard stays locked while the command runs even after the caller drops
// its own descriptor.
func TestHeldLockLastsUntilTheCommandIsGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build.lock")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(proc.WithHeld(context.Background(), f))
	cmd := proc.Command(ctx, "sh", "-c", "ls -l /proc/$$/fd | grep -c build.lock; sleep 1009")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The caller's copy goes, as when kregress is killed.
	f.Close()
	time.Sleep(200 * time.Millisecond)
	tryLock := func() bool {
		g, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		return syscall.Flock(int(g.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
	}
	if tryLock() {
		t.Fatal("the lock was free while the command ran")
	}
	cancel()
	cmd.Wait()
	if !tryLock() {
		t.Error("the lock is still held after the command ended")
	}
	if strings.TrimSpace(out.String()) != "0" {
		t.Errorf("the command itself got the held file (%q open descriptors on it)", out.String())
	}
}

package proc_test

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/kregress/kregress/internal/proc"
	"github.com/kregress/kregress/internal/proc/proctest"
)

// leaderExitsEnv makes the test binary, at init, a process whose leader
// thread exits on SIGUSR1 while another thread lives on: what a killed
// QEMU or guard is for a moment, its leader a zombie, its files still open.
const leaderExitsEnv = "KREGRESS_PROC_TEST_LEADER_EXITS"

func init() {
	if os.Getenv(leaderExitsEnv) == "" {
		return
	}
	runtime.LockOSThread() // init runs on the leader thread; keep it there
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	locked := make(chan bool)
	go func() {
		runtime.LockOSThread() // another thread, which outlives the leader
		locked <- true
		for {
			syscall.RawSyscall(syscall.SYS_PAUSE, 0, 0, 0)
		}
	}()
	<-locked
	fmt.Println("ready")
	<-usr1
	syscall.RawSyscall(syscall.SYS_EXIT, 0, 0, 0) // this thread only
}

// TestAliveWhileAThreadLives: a process whose leader thread is a zombie
// but another thread still runs is alive (it holds its files and their
// locks); the kill check remembers it although its environment is gone;
// and once killed it is not alive.
func TestAliveWhileAThreadLives(t *testing.T) {
	parent := proctest.Start(t, "TestAliveWhileAThreadLives", leaderExitsEnv+"=1")
	if parent.First != "ready" {
		t.Fatalf("helper: %q", parent.First)
	}
	pid := parent.Cmd.Process.Pid
	if got := parent.Procs(); !slices.Contains(got, pid) {
		t.Fatalf("Procs() = %v before the leader exits, want %d in it", got, pid)
	}
	syscall.Kill(pid, syscall.SIGUSR1)
	if !waitFor(5*time.Second, func() bool { return proc.State(pid) == "Z" }) {
		t.Fatalf("the leader thread of %d did not exit: state %q", pid, proc.State(pid))
	}
	if !proc.Alive(pid) {
		t.Errorf("Alive(%d) = false with its leader a zombie and another thread running", pid)
	}
	t.Logf("Tagged finds it: %v (its environment: the leader's memory)", slices.Contains(proc.Tagged(proctest.TagEnv, parent.Tag), pid))
	if got := parent.Procs(); !slices.Contains(got, pid) {
		t.Errorf("Procs() = %v with the leader a zombie and another thread running, want %d in it", got, pid)
	}
	parent.KillAndCheck(t, 5*time.Second)
	if proc.Alive(pid) {
		t.Errorf("Alive(%d) = true after SIGKILL and wait", pid)
	}
}

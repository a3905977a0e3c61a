// Package proctest helps kill tests: start a stand-in for kregress (the
// test binary re-run as one helper test) with a unique tag in its
// environment, kill it, and check that nothing it started survives.
package proctest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kregress/kregress/internal/proc"
)

// TagEnv is the environment variable a Parent's processes carry.
const TagEnv = "KREGRESS_PROCTEST_TAG"

// Parent is a helper process and everything it started.
type Parent struct {
	Cmd *exec.Cmd
	// Tag is the unique value of TagEnv in all its processes.
	Tag string
	// First is the first line the helper printed.
	First string
	// seen holds every pid found tagged so far: an exiting process drops
	// out of proc.Tagged (its environment goes with its memory) before it
	// has closed its files.
	seen map[int]bool
}

// Start runs the test binary's helper test (by name) with env added, and
// returns once it printed its first line. The helper is SIGKILLed when t
// ends if still running.
func Start(t *testing.T, helper string, env ...string) *Parent {
	t.Helper()
	p := &Parent{Tag: fmt.Sprint(time.Now().UnixNano()), seen: map[int]bool{}}
	p.Cmd = exec.Command(os.Args[0], "-test.run=^"+helper+"$")
	p.Cmd.Env = append(append(os.Environ(), env...), TagEnv+"="+p.Tag)
	out, err := p.Cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Cmd.Process.Kill(); p.Cmd.Wait() })
	p.First, _ = bufio.NewReader(out).ReadString('\n')
	p.First = strings.TrimSpace(p.First)
	return p
}

// Procs lists the live processes of the parent (itself included): the
// tagged ones, and those seen tagged by an earlier call that are not
// zombies yet.
func (p *Parent) Procs() []int {
	for _, pid := range proc.Tagged(TagEnv, p.Tag) {
		p.seen[pid] = true
	}
	var live []int
	for pid := range p.seen {
		if proc.Alive(pid) {
			live = append(live, pid)
		} else {
			delete(p.seen, pid)
		}
	}
	sort.Ints(live)
	return live
}

// KillAndCheck SIGKILLs the helper and fails t if any process it started
// is still alive after within (they are killed then).
func (p *Parent) KillAndCheck(t *testing.T, within time.Duration) {
	t.Helper()
	p.Procs() // remember them while their environments can be read
	p.Cmd.Process.Signal(syscall.SIGKILL)
	p.Cmd.Wait()
	deadline := time.Now().Add(within)
	for len(p.Procs()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := p.Procs(); len(left) > 0 {
		msg := proc.Describe(left)
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Fatalf("survived the SIGKILL of their parent: %s", msg)
	}
}

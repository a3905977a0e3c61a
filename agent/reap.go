package agent

import (
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// children tracks the processes the agent started itself, which their
// exec.Cmd waits for, so that the orphan reaper leaves them alone.
var children = &childSet{pids: map[int]bool{}}

type childSet struct {
	mu   sync.Mutex
	pids map[int]bool
}

// start starts cmd and records its pid, under the lock the reaper holds
// while it scans, so a child that exits at once is never reaped by it.
func (c *childSet) start(cmd *exec.Cmd) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	c.pids[cmd.Process.Pid] = true
	return nil
}

func (c *childSet) forget(pid int) {
	c.mu.Lock()
	delete(c.pids, pid)
	c.mu.Unlock()
}

// reapOrphans runs forever as PID 1's duty: processes whose parent died are
// re-parented to PID 1, and their zombies must be collected. It looks for
// zombies among PID 1's children that are not the agent's own, on every
// SIGCHLD and once a second.
//
// The look happens without the lock that starting a command takes (which
// only the reaping does): each command's shell ends in a SIGCHLD, and a
// scan of every process under TCG took 11-80 ms, which the next command's
// start used to wait for. A zombie the look found can only be reaped by
// this loop or, if it is the agent's own child, by its exec.Cmd, which
// children.start recorded before the child could exit; so deciding under
// the lock afterwards is as safe as looking under it.
func reapOrphans() {
	sig := make(chan os.Signal, 16)
	signal.Notify(sig, unix.SIGCHLD)
	tick := time.NewTicker(time.Second)
	for {
		select {
		case <-sig:
		case <-tick.C:
		}
		zombies := orphanZombies("/proc", 1)
		children.mu.Lock()
		for _, pid := range zombies {
			if !children.pids[pid] {
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			}
		}
		children.mu.Unlock()
	}
}

// orphanZombies lists the processes in state Z whose parent is init (pid
// 1) in the proc filesystem at proc. It reads init's children from
// proc/1/task/*/children (CONFIG_PROC_CHILDREN, which Debian's kernel
// has) and only their stat files; without those files it reads the stat
// file of every process. The children files are a snapshot that can miss
// a process being re-parented at that moment; its SIGCHLD or the next
// tick finds it.
func orphanZombies(proc string, init int) []int {
	var out []int
	zombie := func(pid int) bool {
		data, err := os.ReadFile(proc + "/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		// pid (comm) state ppid ...: comm may hold spaces and parens.
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			return false
		}
		f := strings.Fields(s[i+1:])
		return len(f) >= 2 && f[0] == "Z" && f[1] == strconv.Itoa(init)
	}
	if kids, ok := childrenOf(proc, init); ok {
		for _, pid := range kids {
			if zombie(pid) {
				out = append(out, pid)
			}
		}
		return out
	}
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil
	}
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && zombie(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// childrenOf lists pid's children from its threads' children files; ok is
// false when the kernel has none.
func childrenOf(proc string, pid int) (kids []int, ok bool) {
	dir := proc + "/" + strconv.Itoa(pid) + "/task"
	if _, err := os.Stat(dir + "/" + strconv.Itoa(pid) + "/children"); err != nil {
		return nil, false
	}
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil, false
	}
	for _, t := range tasks {
		data, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil {
			continue // the thread ended meanwhile
		}
		for _, f := range strings.Fields(string(data)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids, true
}

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
// re-parented to PID 1, and their zombies must be collected. It scans
// /proc for zombies whose parent is 1 and that are not the agent's own
// children, on every SIGCHLD and once a second.
func reapOrphans() {
	sig := make(chan os.Signal, 16)
	signal.Notify(sig, unix.SIGCHLD)
	tick := time.NewTicker(time.Second)
	for {
		select {
		case <-sig:
		case <-tick.C:
		}
		children.mu.Lock()
		for _, pid := range orphanZombies() {
			if !children.pids[pid] {
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			}
		}
		children.mu.Unlock()
	}
}

// orphanZombies lists processes in state Z whose parent is PID 1.
func orphanZombies() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parens.
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) >= 2 && f[0] == "Z" && f[1] == "1" {
			out = append(out, pid)
		}
	}
	return out
}

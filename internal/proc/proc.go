// Package proc starts kregress's child processes (make and its compilers,
// git, QEMU, tools) so that none of them outlives kregress, even when
// kregress is killed with SIGKILL and has no chance to clean up.
//
// A parent-death signal alone reaches only the direct child: make's
// sub-makes and compilers would run on. So every child is started through
// a guard: kregress re-executes its own binary (/proc/self/exe) in guard
// mode, in a process group of its own, with a parent-death signal. The
// guard is a child subreaper; it starts the real command in its group and
// relays its exit status. When kregress dies (the guard's parent-death
// signal), when the caller's context ends, or when the command exits and
// left descendants behind, the guard SIGKILLs every process below it
// (orphans come back to it, being a subreaper, so none escapes by
// daemonizing) before it exits itself.
//
// Files a build holds locks on can be handed to the guards of every child
// started under a context (WithHeld): an flock lives as long as any copy
// of its descriptor, so a build-directory lock is released only when the
// last process of the build is gone, never while a leftover compiler still
// writes into the directory.
//
// The guard mode is entered from this package's init, so any binary that
// imports it (kregress, the test binaries) can be its own guard.
package proc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// guardEnv marks a process as a guard; its value is "H,E,P": H held
// descriptors from fd 3 that the guard keeps, then E it passes on to the
// command, and P the pid of the parent the guard must die with.
const guardEnv = "KREGRESS_PROC_GUARD"

// WaitDelay bounds how long Wait waits after the context ended before the
// guard itself is killed.
const WaitDelay = 5 * time.Second

func init() {
	if v, ok := os.LookupEnv(guardEnv); ok {
		os.Exit(guard(v))
	}
}

// Cmd is an exec.Cmd whose process dies with kregress. Set its fields as
// for exec.Cmd (Dir, Env, Stdin, Stdout, Stderr, ExtraFiles); Cancel,
// WaitDelay and SysProcAttr belong to this package.
type Cmd struct {
	*exec.Cmd
	ctx      context.Context
	prepared bool
}

// Command returns a Cmd that runs name with args. When ctx ends, the
// command and everything it started are killed. Without a context use
// context.Background(): the command still dies with kregress.
func Command(ctx context.Context, name string, args ...string) *Cmd {
	return &Cmd{Cmd: exec.CommandContext(ctx, name, args...), ctx: ctx}
}

type heldKey struct{}

// WithHeld returns a context under which every Command started also
// keeps files open (in its guard, not in the command) until the command
// and all it started are gone. Used for lock files.
func WithHeld(ctx context.Context, files ...*os.File) context.Context {
	prev, _ := ctx.Value(heldKey{}).([]*os.File)
	return context.WithValue(ctx, heldKey{}, append(append([]*os.File(nil), prev...), files...))
}

// prepare turns the command into its guard's command line.
func (c *Cmd) prepare() {
	if c.Err != nil || c.Process != nil || c.prepared {
		return
	}
	c.prepared = true
	if filepath.IsAbs(c.Path) {
		// Let exec say what is wrong with a program it cannot start.
		if _, err := exec.LookPath(c.Path); err != nil {
			return
		}
	}
	held, _ := c.ctx.Value(heldKey{}).([]*os.File)
	env := c.Env
	if env == nil {
		env = os.Environ()
	}
	c.Env = append(env[:len(env):len(env)], fmt.Sprintf("%s=%d,%d,%d", guardEnv, len(held), len(c.ExtraFiles), os.Getpid()))
	c.ExtraFiles = append(append([]*os.File(nil), held...), c.ExtraFiles...)
	c.Args = append([]string{"kregress-guard", c.Path}, c.Args...)
	c.Path = "/proc/self/exe"
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
	c.WaitDelay = WaitDelay
}

// Start starts the command through its guard.
func (c *Cmd) Start() error {
	c.prepare()
	return c.Cmd.Start()
}

// Run starts the command and waits for it.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Output runs the command and returns its standard output.
func (c *Cmd) Output() ([]byte, error) {
	c.prepare()
	return c.Cmd.Output()
}

// CombinedOutput runs the command and returns its standard output and
// standard error together.
func (c *Cmd) CombinedOutput() ([]byte, error) {
	c.prepare()
	return c.Cmd.CombinedOutput()
}

// Kill kills the command and everything it started at once (its guard's
// process group); the guard reaps the rest.
func (c *Cmd) Kill() error {
	if c.Process == nil {
		return nil
	}
	return syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
}

// guard is the guard process's main: os.Args is
// [kregress-guard, path, argv0, args...]; spec is guardEnv's value.
func guard(spec string) int {
	os.Unsetenv(guardEnv)
	var held, nextra, parent int
	if n, err := fmt.Sscanf(spec, "%d,%d,%d", &held, &nextra, &parent); n != 3 || err != nil || len(os.Args) < 3 {
		fmt.Fprintf(os.Stderr, "kregress guard: bad invocation %q %q\n", spec, os.Args)
		return 127
	}
	// Held descriptors stay with the guard only.
	for fd := 3; fd < 3+held; fd++ {
		syscall.CloseOnExec(fd)
	}
	var extra []*os.File
	for fd := 3 + held; fd < 3+held+nextra; fd++ {
		extra = append(extra, os.NewFile(uintptr(fd), "fd"+strconv.Itoa(fd)))
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "kregress guard: PR_SET_CHILD_SUBREAPER: %v\n", err)
		return 127
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	// The parent may have died before the handler was in place.
	if os.Getppid() != parent {
		return 137
	}
	cmd := &exec.Cmd{
		Path: os.Args[1], Args: os.Args[2:], Env: os.Environ(),
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "kregress guard: %v\n", err)
		return 127
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
		killDescendants()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() {
			return ws.ExitStatus()
		}
		// Die of the same signal where Go lets a program do so.
		switch s := ws.Signal(); s {
		case syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP:
			signal.Reset(s)
			syscall.Kill(os.Getpid(), s)
			time.Sleep(time.Second)
		}
		return 128 + int(ws.Signal())
	case <-sigs:
		killDescendants()
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		return 137
	}
}

// killDescendants SIGKILLs every live process below this one until none
// is left; orphans of the killed come back to this subreaper and are
// found by the next pass.
func killDescendants() {
	self := os.Getpid()
	for pass := 0; pass < 100; pass++ {
		pids := Descendants(self)
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(time.Duration(pass+1) * time.Millisecond)
	}
}

// Descendants returns the live processes (see Alive) below pid, found by
// walking /proc.
func Descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	live := map[int]bool{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, state, ok := stat("/proc/" + e.Name())
		if !ok {
			continue
		}
		children[ppid] = append(children[ppid], p)
		live[p] = running(state) || Alive(p) // a zombie leader's threads may live on
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if live[c] {
				out = append(out, c)
			}
			queue = append(queue, c)
		}
	}
	return out
}

// Tagged returns the live processes (see Alive) whose environment holds
// key=value, wherever they were reparented: tests and soak runs tag what
// they start with a unique value and look for survivors with it.
func Tagged(key, value string) []int {
	want := []byte(key + "=" + value + "\x00")
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		if Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Alive says whether process pid exists and one of its threads is not a
// zombie. A killed process's threads exit one by one: its leader can be a
// zombie, and its environment unreadable (Tagged no longer finds it), while
// another thread still holds the process's files and their locks. Callers
// that must know a process is gone remember its pid and ask Alive.
func Alive(pid int) bool {
	dir := "/proc/" + strconv.Itoa(pid)
	if _, state, ok := stat(dir); ok && running(state) {
		return true
	}
	tasks, _ := os.ReadDir(dir + "/task")
	for _, t := range tasks {
		if _, state, ok := stat(dir + "/task/" + t.Name()); ok && running(state) {
			return true
		}
	}
	return false
}

// running says whether a /proc stat state is a task's that has not exited
// (not Z, a zombie, nor X, dead).
func running(state string) bool { return state != "Z" && state != "X" }

// Describe gives "pid command line" for each pid, one a line, for
// messages.
func Describe(pids []int) string {
	var b strings.Builder
	for _, p := range pids {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		fmt.Fprintf(&b, "\n  %d %s", p, bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))
	}
	return b.String()
}

// stat reads a process's (or a thread's) parent and state from the stat
// file of its /proc directory.
func stat(dir string) (ppid int, state string, ok bool) {
	data, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return 0, "", false
	}
	// The command name is in parentheses and may hold anything.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0], err == nil
}

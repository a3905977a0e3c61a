// Package runner boots a kernel in QEMU and drives it: the serial console is
// streamed line by line to console.log, to a caller's callback and to the
// crash detector; a QMP socket (github.com/digitalocean/go-qemu) queries and
// stops the machine; commands run in the guest over SSH to the kregress
// guest agent, reached through a loopback-only port forward.
//
// An Instance is one VM. Its life ends in exactly one Outcome: the caller
// stopped it, the kernel crashed, it never became ready (boot-timeout), the
// console went silent too long (no-output), or QEMU exited by itself. Close
// always leaves QEMU gone, the port free and the temp files removed, on
// every path including context cancellation.
package runner

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
	"golang.org/x/crypto/ssh"

	"github.com/kregress/kregress/agent/protocol"
	"github.com/kregress/kregress/internal/proc"
	"github.com/kregress/kregress/results/triage"
	"github.com/kregress/kregress/runner/pvh"
)

const qemuBinary = "qemu-system-x86_64"

// Outcome says how a VM's life ended.
type Outcome string

// Outcomes.
const (
	OutcomeRunning     Outcome = ""             // still running
	OutcomeStopped     Outcome = "stopped"      // stopped by the caller
	OutcomeCrash       Outcome = "crash"        // the console showed a kernel crash report
	OutcomeBootTimeout Outcome = "boot-timeout" // the agent was not ready in time
	OutcomeNoOutput    Outcome = "no-output"    // the console was silent too long
	OutcomeExited      Outcome = "exited"       // QEMU exited on its own (poweroff, reboot, panic)
	OutcomeCanceled    Outcome = "canceled"     // the context was canceled
)

// Line is one console line.
type Line struct {
	N    int       // 1-based line number in console.log
	Text string    // without the line ending
	Time time.Time // when it arrived
}

// Config describes one VM.
type Config struct {
	Kernel string // bzImage to boot (required)
	Initrd string // initramfs; with Agent true it must hold the kregress agent as /init
	Append string // extra kernel command line
	// Accel is "kvm", "tcg", or "" to probe (cached; see ProbeAccel).
	Accel    string
	MemoryMB int // default 1024
	CPUs     int // default 2
	// Dir receives console.log; it must exist. The QMP socket lives in a
	// private temp dir removed on Close.
	Dir string
	// Agent says the initrd runs the kregress agent: Start then waits for
	// it and connects over SSH before returning.
	Agent bool
	// BootTimeout bounds the time until the agent is ready (default 120s).
	BootTimeout time.Duration
	// NoOutputTimeout ends the VM when the console is silent this long
	// (default 0: none). Silence is normal for a quiet idle guest, so
	// callers set it around work that must print.
	NoOutputTimeout time.Duration
	// OnLine, if set, is called for every console line, in order, from one
	// goroutine.
	OnLine func(Line)
	// StopOnCrash ends the VM as soon as a crash report is complete
	// (default true when unset via DefaultConfig; a zero Config means false).
	StopOnCrash bool
	// CacheDir holds the accelerator probe's answer and the kernels
	// extracted for direct boot.
	CacheDir string
	// Boot is how QEMU enters the kernel: "" or "auto" boots the vmlinux
	// inside a PVH-capable bzImage directly (extracted once into CacheDir;
	// see package pvh), which under TCG saves the seconds the firmware and
	// the kernel's decompressor take; "bzimage" always boots the bzImage
	// the classic way. Without a CacheDir, auto means bzimage.
	Boot string
	// Log receives the runner's own progress lines (nil: discarded).
	Log func(format string, args ...any)
}

// Instance is one running VM.
type Instance struct {
	cfg       Config
	accel     ProbeResult
	kernel    pvh.Kernel // what -kernel gets
	cmd       *proc.Cmd
	tmpDir    string
	owner     *os.File // tmpDir's owner lock
	port      int
	qmpPath   string
	console   *os.File
	sshClient *ssh.Client
	started   time.Time
	bootTime  time.Duration

	mu       sync.Mutex
	outcome  Outcome
	reason   string
	crashes  []triage.Report
	tail     []string
	lines    int
	lastOut  time.Time
	ready    chan string // the agent's host key fingerprint
	exited   chan struct{}
	stopOnce sync.Once
	closed   bool
	readerWG sync.WaitGroup
}

// tailLines is how many console lines an Instance keeps for reports.
const tailLines = 60

// Start boots the VM. With cfg.Agent it returns once the guest agent
// answers over SSH (or with an error carrying the outcome and console tail
// when it does not). The VM stops when ctx is canceled.
func Start(ctx context.Context, cfg Config) (*Instance, error) {
	if cfg.Kernel == "" {
		return nil, errors.New("runner: no kernel given")
	}
	if _, err := os.Stat(cfg.Kernel); err != nil {
		return nil, fmt.Errorf("runner: kernel: %w", err)
	}
	if cfg.Initrd != "" {
		if _, err := os.Stat(cfg.Initrd); err != nil {
			return nil, fmt.Errorf("runner: initrd: %w", err)
		}
	}
	if cfg.Dir == "" {
		return nil, errors.New("runner: no run directory given")
	}
	if _, err := exec.LookPath(qemuBinary); err != nil {
		return nil, fmt.Errorf("runner: %s not found (install Debian's qemu-system-x86): %w", qemuBinary, err)
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = 1024
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	if cfg.BootTimeout == 0 {
		cfg.BootTimeout = 120 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	inst := &Instance{cfg: cfg, ready: make(chan string, 1), exited: make(chan struct{})}
	switch cfg.Accel {
	case AccelKVM, AccelTCG:
		inst.accel = ProbeResult{Accel: cfg.Accel, Reason: "requested"}
	case "":
		inst.accel = ProbeAccel(ctx, cfg.Kernel, cfg.CacheDir)
		cached := ""
		if inst.accel.Cached {
			cached = " (cached probe)"
		}
		cfg.Log("accelerator: %s: %s%s", inst.accel.Accel, inst.accel.Reason, cached)
	default:
		return nil, fmt.Errorf("runner: unknown accelerator %q (want kvm or tcg)", cfg.Accel)
	}
	inst.kernel = pvh.Kernel{Path: cfg.Kernel, Reason: "bzimage boot requested"}
	switch cfg.Boot {
	case "", BootAuto:
		if cfg.CacheDir == "" {
			inst.kernel.Reason = "no cache directory to extract the kernel into"
			break
		}
		k, err := pvh.Prepare(ctx, cfg.Kernel, filepath.Join(cfg.CacheDir, "kernels"))
		if err != nil {
			return nil, fmt.Errorf("runner: %w", err)
		}
		inst.kernel = k
		if k.PVH {
			cfg.Log("boot: direct PVH entry into %s", k.Path)
		} else {
			cfg.Log("boot: bzImage through the firmware: %s", k.Reason)
		}
	case BootBzImage:
	default:
		return nil, fmt.Errorf("runner: unknown boot mode %q (want auto or bzimage)", cfg.Boot)
	}
	if err := inst.boot(ctx); err != nil {
		inst.Close()
		return nil, err
	}
	return inst, nil
}

// Boot modes for Config.Boot.
const (
	BootAuto    = "auto"
	BootBzImage = "bzimage"
)

// BootProtocol says how QEMU entered the kernel: "pvh" (the extracted
// vmlinux) or "bzimage".
func (i *Instance) BootProtocol() string {
	if i.kernel.PVH {
		return "pvh"
	}
	return "bzimage"
}

// Accel is the accelerator this VM runs under.
func (i *Instance) Accel() string { return i.accel.Accel }

// AccelReason says why the accelerator was chosen.
func (i *Instance) AccelReason() string { return i.accel.Reason }

// BootTime is the time from QEMU's start until the agent answered.
func (i *Instance) BootTime() time.Duration { return i.bootTime }

// Port is the host loopback port forwarded to the guest's SSH.
func (i *Instance) Port() int { return i.port }

func (i *Instance) boot(ctx context.Context) error {
	var err error
	if gone := sweepScratch(os.TempDir()); len(gone) > 0 {
		i.cfg.Log("removed %d scratch directories of dead kregress runs", len(gone))
	}
	i.tmpDir, i.owner, err = newScratch(os.TempDir())
	if err != nil {
		return err
	}
	i.qmpPath = filepath.Join(i.tmpDir, "qmp.sock")
	i.console, err = os.Create(filepath.Join(i.cfg.Dir, "console.log"))
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	var signer ssh.Signer
	appendLine := "console=ttyS0 nokaslr panic=-1 printk.devkmsg=on " + i.cfg.Append
	if i.cfg.Agent {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		signer, err = ssh.NewSignerFromKey(priv)
		if err != nil {
			return err
		}
		sshPub, _ := ssh.NewPublicKey(pub)
		appendLine += fmt.Sprintf(" %s=%s %s=22", protocol.KeyParam, base64.StdEncoding.EncodeToString(sshPub.Marshal()), protocol.PortParam)
	}
	// A free port can be taken between our probe and QEMU's bind when
	// several VMs start at once; QEMU then fails at once and we retry.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		lastErr = i.startQEMU(ctx, appendLine)
		if lastErr == nil {
			break
		}
		if !errors.Is(lastErr, errPortTaken) {
			return lastErr
		}
	}
	if lastErr != nil {
		return lastErr
	}
	go i.watch(ctx)
	if !i.cfg.Agent {
		return nil
	}
	return i.connect(ctx, signer)
}

var errPortTaken = errors.New("host forwarding port taken")

func (i *Instance) startQEMU(ctx context.Context, appendLine string) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("runner: pick a port: %w", err)
	}
	i.port = port
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-m", fmt.Sprint(i.cfg.MemoryMB), "-smp", fmt.Sprint(i.cfg.CPUs),
		"-kernel", i.kernel.Path, "-append", strings.TrimSpace(appendLine),
		"-serial", "stdio",
		"-qmp", "unix:" + i.qmpPath + ",server=on,wait=off",
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22", port),
		"-device", "virtio-net-pci,netdev=n0",
	}
	if i.cfg.Initrd != "" {
		args = append(args, "-initrd", i.cfg.Initrd)
	}
	if i.accel.Accel == AccelKVM {
		args = append(args, "-accel", "kvm", "-cpu", "host")
	} else {
		args = append(args, "-accel", "tcg", "-cpu", "max")
	}
	// QEMU dies with kregress (package proc); the runner stops it itself
	// (QMP quit, then kill), so it gets no context.
	cmd := proc.Command(proc.WithHeld(context.Background(), i.owner), qemuBinary, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	cmd.Stdin = nil
	i.started = time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("runner: start %s: %w", qemuBinary, err)
	}
	i.cmd = cmd
	i.mu.Lock()
	i.lastOut = time.Now()
	i.mu.Unlock()
	i.readerWG.Add(1)
	go i.readConsole(stdout)
	go func() {
		i.readerWG.Wait()
		cmd.Wait()
		close(i.exited)
	}()
	// QEMU validates its arguments and binds the forward before it runs
	// the guest; an early exit is a start failure.
	select {
	case <-i.exited:
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "host forwarding") {
			i.exited = make(chan struct{})
			return errPortTaken
		}
		return fmt.Errorf("runner: %s exited at start: %s", qemuBinary, msg)
	case <-time.After(300 * time.Millisecond):
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// readConsole splits QEMU's serial output into lines, records them and
// feeds the crash detector.
func (i *Instance) readConsole(r io.Reader) {
	defer i.readerWG.Done()
	det := triage.NewStream()
	br := bufio.NewReaderSize(r, 64<<10)
	w := bufio.NewWriter(i.console)
	defer w.Flush()
	handle := func(text string) {
		now := time.Now()
		text = strings.TrimRight(text, "\r")
		w.WriteString(text)
		w.WriteByte('\n')
		i.mu.Lock()
		i.lines++
		n := i.lines
		i.lastOut = now
		i.tail = append(i.tail, text)
		if len(i.tail) > tailLines {
			i.tail = i.tail[len(i.tail)-tailLines:]
		}
		i.mu.Unlock()
		if i.cfg.OnLine != nil {
			i.cfg.OnLine(Line{N: n, Text: text, Time: now})
		}
		if fp, ok := strings.CutPrefix(text, protocol.HostKeyMarker); ok {
			select {
			case i.ready <- strings.TrimSpace(fp):
			default:
			}
		}
		if reps := det.Feed(text); len(reps) > 0 {
			w.Flush()
			i.addCrashes(reps)
		}
	}
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			handle(strings.TrimSuffix(line, "\n"))
		}
		// Keep console.log current for anyone tailing it, without a
		// write per line when output comes in bursts.
		if br.Buffered() == 0 {
			w.Flush()
		}
		if err != nil {
			break
		}
	}
	if reps := det.Flush(); len(reps) > 0 {
		i.addCrashes(reps)
	}
}

func (i *Instance) addCrashes(reps []triage.Report) {
	i.mu.Lock()
	i.crashes = append(i.crashes, reps...)
	i.mu.Unlock()
	if i.cfg.StopOnCrash {
		// Called from the console reader, which kill waits for: kill
		// from another goroutine.
		i.setOutcome(OutcomeCrash, reps[0].Title)
		go i.kill()
	}
}

// watch enforces the no-output timeout and cancellation, and records QEMU
// exiting on its own.
func (i *Instance) watch(ctx context.Context) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-i.exited:
			i.setOutcome(OutcomeExited, "QEMU exited")
			return
		case <-ctx.Done():
			i.finish(OutcomeCanceled, ctx.Err().Error())
			return
		case <-tick.C:
			if t := i.cfg.NoOutputTimeout; t > 0 {
				i.mu.Lock()
				silent := time.Since(i.lastOut)
				i.mu.Unlock()
				if silent > t {
					i.finish(OutcomeNoOutput, fmt.Sprintf("no console output for %v", silent.Round(time.Second)))
					return
				}
			}
		}
	}
}

// setOutcome records the first outcome only.
func (i *Instance) setOutcome(o Outcome, reason string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.outcome == OutcomeRunning {
		i.outcome, i.reason = o, reason
	}
}

// finish records the outcome and kills QEMU.
func (i *Instance) finish(o Outcome, reason string) {
	i.setOutcome(o, reason)
	i.kill()
}

// kill stops QEMU: a QMP quit first, SIGKILL to its process group if it
// lingers. It returns when QEMU has exited.
func (i *Instance) kill() {
	i.stopOnce.Do(func() {
		if i.cmd == nil {
			return
		}
		if mon, err := qmp.NewSocketMonitor("unix", i.qmpPath, time.Second); err == nil {
			if mon.Connect() == nil {
				mon.Run([]byte(`{"execute":"quit"}`))
				mon.Disconnect()
			}
		}
		select {
		case <-i.exited:
		case <-time.After(2 * time.Second):
			i.cmd.Kill()
			<-i.exited
		}
	})
	if i.cmd != nil {
		<-i.exited
	}
}

// Status asks QEMU over QMP for the VM's run state ("running", "paused", ...).
func (i *Instance) Status() (string, error) {
	mon, err := qmp.NewSocketMonitor("unix", i.qmpPath, 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("runner: qmp: %w", err)
	}
	if err := mon.Connect(); err != nil {
		return "", fmt.Errorf("runner: qmp: %w", err)
	}
	defer mon.Disconnect()
	raw, err := mon.Run([]byte(`{"execute":"query-status"}`))
	if err != nil {
		return "", fmt.Errorf("runner: qmp query-status: %w", err)
	}
	var r struct {
		Return struct {
			Status string `json:"status"`
		} `json:"return"`
	}
	if err := jsonUnmarshal(raw, &r); err != nil {
		return "", err
	}
	return r.Return.Status, nil
}

// Powerdown asks the guest to power off (QMP system_powerdown, the ACPI
// power button, which the kregress agent answers by syncing and powering
// off) and waits up to timeout for QEMU to exit; then it kills QEMU. It
// reports whether the guest powered off by itself in time.
func (i *Instance) Powerdown(timeout time.Duration) (clean bool) {
	if mon, err := qmp.NewSocketMonitor("unix", i.qmpPath, time.Second); err == nil {
		if mon.Connect() == nil {
			mon.Run([]byte(`{"execute":"system_powerdown"}`))
			mon.Disconnect()
		}
	}
	select {
	case <-i.exited:
		clean = true
	case <-time.After(timeout):
	}
	if clean {
		// QEMU's exit was asked for: it is a stop, not the guest's own
		// doing (a crash seen meanwhile keeps its outcome).
		i.mu.Lock()
		if i.outcome == OutcomeRunning || i.outcome == OutcomeExited {
			i.outcome, i.reason = OutcomeStopped, "the guest powered off after system_powerdown"
		}
		i.mu.Unlock()
		i.kill()
	} else {
		i.finish(OutcomeStopped, fmt.Sprintf("killed: the guest did not power off within %v of system_powerdown", timeout))
	}
	return clean
}

// Wait blocks until QEMU exits or ctx ends.
func (i *Instance) Wait(ctx context.Context) error {
	select {
	case <-i.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when QEMU has exited.
func (i *Instance) Done() <-chan struct{} { return i.exited }

// Outcome says how the VM ended (OutcomeRunning while it runs) and why.
func (i *Instance) Outcome() (Outcome, string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.outcome, i.reason
}

// Crashes returns the crash reports seen so far.
func (i *Instance) Crashes() []triage.Report {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]triage.Report(nil), i.crashes...)
}

// ConsoleTail returns the last console lines.
func (i *Instance) ConsoleTail() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]string(nil), i.tail...)
}

// ConsoleLines is the number of console lines so far.
func (i *Instance) ConsoleLines() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.lines
}

// Close stops the VM if it runs and removes its temporary files. After
// Close, the QEMU process is gone and its port free.
func (i *Instance) Close() error {
	i.mu.Lock()
	if i.closed {
		i.mu.Unlock()
		return nil
	}
	i.closed = true
	i.mu.Unlock()
	if i.sshClient != nil {
		i.sshClient.Close()
	}
	i.finish(OutcomeStopped, "closed")
	i.readerWG.Wait()
	if i.console != nil {
		i.console.Close()
	}
	if i.tmpDir != "" {
		os.RemoveAll(i.tmpDir)
		i.owner.Close()
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

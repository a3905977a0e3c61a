// Package runner drives one test machine, whatever runs it. A Backend
// boots a Machine (package runner/qemu: QEMU on this host; runner/fake: a
// scripted machine for tests; next, a worker on a cluster node); an
// Instance watches it, the same for every backend: the console is streamed
// line by line to console.log, to the caller's callback and to the crash
// detector (results/triage), a complete crash report stops the machine,
// and silence, the boot deadline and the caller's context are enforced.
// Commands run in the guest through the kregress guest agent, which the
// backend reaches once the agent printed its host key on the console
// (package agent/protocol).
//
// An Instance's life ends in exactly one Outcome, decided once, with a
// reason: the caller stopped it, the kernel crashed, it never became ready
// (boot-timeout), the console went silent too long (no-output), the
// caller's context ended (canceled: which signal or limit), or the machine
// ended by itself (exited: how, e.g. QEMU killed by a signal). Close
// always leaves the machine gone and its resources released, on every
// path including context cancellation.
package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kregress/kregress/agent/protocol"
	"github.com/kregress/kregress/results/triage"
)

// Outcome says how a VM's life ended.
type Outcome string

// Outcomes.
const (
	OutcomeRunning     Outcome = ""             // still running
	OutcomeStopped     Outcome = "stopped"      // stopped by the caller
	OutcomeCrash       Outcome = "crash"        // the console showed a kernel crash report
	OutcomeBootTimeout Outcome = "boot-timeout" // the agent was not ready in time
	OutcomeNoOutput    Outcome = "no-output"    // the console was silent too long
	OutcomeExited      Outcome = "exited"       // the machine ended by itself (poweroff, reset, QEMU killed)
	OutcomeCanceled    Outcome = "canceled"     // the caller's context ended (a signal, a time limit)
)

// Line is one console line.
type Line struct {
	N    int       // 1-based line number in console.log
	Text string    // without the line ending
	Time time.Time // when it arrived
}

// Accelerators.
const (
	AccelKVM = "kvm"
	AccelTCG = "tcg"
)

// Boot modes for Config.Boot.
const (
	BootAuto    = "auto"
	BootBzImage = "bzimage"
)

// Config describes one VM.
type Config struct {
	// Backend boots the machine (required): qemu.Backend{} for QEMU on
	// this host.
	Backend Backend
	Kernel  string // bzImage to boot (required)
	Initrd  string // initramfs; with Agent true it must hold the kregress agent as /init
	Append  string // extra kernel command line
	// Accel is "kvm", "tcg", or "" to probe (cached; see qemu.ProbeAccel).
	Accel    string
	MemoryMB int // default 1024
	CPUs     int // default 2
	// Dir receives console.log; it must exist.
	Dir string
	// Agent says the initrd runs the kregress agent: Start then waits for
	// it and connects before returning.
	Agent bool
	// Serial has the agent (with Agent) serve SSH on a virtio-serial port
	// instead of TCP over a NIC: the guest kernel needs virtio_console
	// (built in, or its module in the image). Without it the machine has
	// a NIC.
	Serial bool
	// Network gives the guest a NIC on QEMU user networking (the host is
	// 10.0.2.2 from the guest) also when Serial carries the agent's SSH.
	// A machine with Serial and without Network has no network at all.
	Network bool
	// BootTimeout bounds the time until the agent is ready (default 120s).
	BootTimeout time.Duration
	// NoOutputTimeout ends the VM when the console is silent this long
	// (default 0: none). Silence is normal for a quiet idle guest, so
	// callers set it around work that must print.
	NoOutputTimeout time.Duration
	// OnLine, if set, is called for every console line, in order, from one
	// goroutine.
	OnLine func(Line)
	// StopOnCrash ends the VM as soon as a crash report is complete.
	StopOnCrash bool
	// CacheDir holds the accelerator probe's answers and the kernels
	// extracted for direct boot.
	CacheDir string
	// Boot is how the machine enters the kernel: "" or "auto" boots the
	// vmlinux inside a PVH-capable bzImage directly (see package pvh);
	// "bzimage" always boots the bzImage the classic way.
	Boot string
	// Log receives the runner's own progress lines (nil: discarded).
	Log func(format string, args ...any)
}

// KVMSilence is how long a machine under KVM may print nothing at all
// before the runner says KVM looks broken instead of waiting for the boot
// timeout: under a working KVM the kernel's first line comes within a
// second or two. A variable for tests.
var KVMSilence = 10 * time.Second

// Info is what a machine runs under.
type Info struct {
	Accel       string // kvm or tcg
	AccelReason string // why that accelerator
	Boot        string // how the kernel was entered: pvh or bzimage
}

// Backend boots machines.
type Backend interface {
	// Boot starts a machine for cfg and returns once it runs (its console
	// streams). With cfg.Agent the guest is given what it needs to serve
	// the host (protocol.KeyParam...); the Instance then calls Connect.
	// A failure to start at all (bad input, missing tools) is an error
	// and leaves nothing running.
	Boot(ctx context.Context, cfg Config) (Machine, error)
}

// Machine is one running machine of some backend. Its methods may be
// called from several goroutines.
type Machine interface {
	// Console is the machine's raw console output; it reaches EOF once the
	// machine is gone.
	Console() io.Reader
	// Info says what the machine runs under.
	Info() Info
	// Connect waits until the guest agent, which printed this host key
	// fingerprint on the console, answers; ctx bounds the wait.
	Connect(ctx context.Context, fingerprint string) error
	// Run runs command with /bin/sh -c in the guest, streaming its
	// output, and returns its exit status. When ctx ends the command is
	// killed and ctx's error returned. An error wrapping ErrNotStarted
	// means the command never started.
	Run(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer) (exit int, err error)
	// Done is closed when the machine has ended.
	Done() <-chan struct{}
	// Exit says how the machine ended (after Done), for the case nobody
	// stopped it: "QEMU was killed by SIGKILL", ...
	Exit() string
	// Stop ends the machine at once and returns when it has ended.
	Stop()
	// Close stops the machine and releases everything it held.
	Close() error
}

// ErrNotStarted is wrapped by a Machine's Run error when the command never
// started in the guest.
var ErrNotStarted = errors.New("the command did not start")

// Instance is one running VM and its monitor.
type Instance struct {
	cfg      Config
	m        Machine
	console  *os.File
	started  time.Time
	bootTime time.Duration

	mu       sync.Mutex
	outcome  Outcome
	reason   string
	crashes  []triage.Report
	tail     []string
	lines    int
	lastOut  time.Time
	ready    chan string // the agent's host key fingerprint
	ended    chan struct{}
	readerWG sync.WaitGroup
	closed   bool
}

// tailLines is how many console lines an Instance keeps for reports.
const tailLines = 60

// Start boots the VM. With cfg.Agent it returns once the guest agent
// answers (or with a *VMError carrying the outcome, the console tail and
// the crashes seen when it does not). The VM stops when ctx ends.
func Start(ctx context.Context, cfg Config) (*Instance, error) {
	if cfg.Backend == nil {
		return nil, errors.New("runner: no backend given")
	}
	if cfg.Dir == "" {
		return nil, errors.New("runner: no run directory given")
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
	console, err := os.Create(filepath.Join(cfg.Dir, "console.log"))
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	m, err := cfg.Backend.Boot(ctx, cfg)
	if err != nil {
		console.Close()
		return nil, err
	}
	i := &Instance{cfg: cfg, m: m, console: console, started: time.Now(), lastOut: time.Now(),
		ready: make(chan string, 1), ended: make(chan struct{})}
	i.readerWG.Add(1)
	go i.readConsole(m.Console())
	go func() {
		i.readerWG.Wait()
		<-m.Done()
		i.setOutcome(OutcomeExited, m.Exit())
		close(i.ended)
	}()
	go i.watch(ctx)
	if cfg.Agent {
		if err := i.connect(ctx); err != nil {
			i.Close()
			return nil, err
		}
	}
	return i, nil
}

// Machine is the backend's machine, for what only it can do.
func (i *Instance) Machine() Machine { return i.m }

// Info says what the VM runs under.
func (i *Instance) Info() Info { return i.m.Info() }

// BootTime is the time from the machine's start until the agent answered.
func (i *Instance) BootTime() time.Duration { return i.bootTime }

// readConsole splits the console into lines, records them and feeds the
// crash detector.
func (i *Instance) readConsole(r io.Reader) {
	defer i.readerWG.Done()
	det := triage.NewStream()
	var detMu sync.Mutex // det is fed here and polled in quiet periods
	quietDone := make(chan struct{})
	var quietWG sync.WaitGroup
	quietWG.Add(1)
	go func() {
		defer quietWG.Done()
		i.closeQuietReports(det, &detMu, quietDone)
	}()
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
		detMu.Lock()
		reps := det.Feed(text)
		detMu.Unlock()
		if len(reps) > 0 {
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
	close(quietDone)
	quietWG.Wait()
	if reps := det.Flush(); len(reps) > 0 {
		i.addCrashes(reps)
	}
}

// quietPeriod is how long the console must be silent before the reports
// whose stack trace has ended count as complete (triage.Stream.Idle): an
// RCU stall detected by another CPU has no end marker, and the next report
// may come a stall timeout later, or never.
const quietPeriod = 2 * time.Second

// closeQuietReports takes the reports that a quiet console completed, until
// done is closed.
func (i *Instance) closeQuietReports(det *triage.Stream, detMu *sync.Mutex, done <-chan struct{}) {
	t := time.NewTicker(quietPeriod / 4)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		i.mu.Lock()
		quiet := time.Since(i.lastOut) >= quietPeriod
		i.mu.Unlock()
		if !quiet {
			continue
		}
		detMu.Lock()
		reps := det.Idle()
		detMu.Unlock()
		if len(reps) > 0 {
			i.addCrashes(reps)
		}
	}
}

func (i *Instance) addCrashes(reps []triage.Report) {
	i.mu.Lock()
	i.crashes = append(i.crashes, reps...)
	i.mu.Unlock()
	if i.cfg.StopOnCrash {
		// Called from the console reader, which the end waits for: stop
		// from another goroutine.
		i.setOutcome(OutcomeCrash, reps[0].Title)
		go i.m.Stop()
	}
}

// watch enforces the no-output timeout, KVM's first-output deadline and
// the context.
func (i *Instance) watch(ctx context.Context) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	kvm := i.m.Info().Accel == AccelKVM
	for {
		select {
		case <-i.ended:
			return
		case <-ctx.Done():
			i.finish(OutcomeCanceled, Cause(ctx))
			return
		case <-tick.C:
			i.mu.Lock()
			silent, lines := time.Since(i.lastOut), i.lines
			i.mu.Unlock()
			if kvm && lines == 0 && silent > KVMSilence {
				i.finish(OutcomeNoOutput, fmt.Sprintf("no console output at all within %v under KVM: KVM looks broken on this host (nested virtualization?); run with --accel tcg", KVMSilence))
				return
			}
			if t := i.cfg.NoOutputTimeout; t > 0 && silent > t {
				i.finish(OutcomeNoOutput, fmt.Sprintf("no console output for %v (the no-output timeout)", silent.Round(time.Second)))
				return
			}
		}
	}
}

// Cause says why ctx ended, in words: the signal or the time limit its
// canceler named (context.Cause), else "canceled" or "deadline exceeded".
func Cause(ctx context.Context) string {
	err := context.Cause(ctx)
	switch {
	case err == nil:
		return ""
	case err == context.Canceled:
		return "canceled"
	case err == context.DeadlineExceeded:
		return "time limit reached"
	}
	return err.Error()
}

// setOutcome records the first outcome only.
func (i *Instance) setOutcome(o Outcome, reason string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.outcome == OutcomeRunning {
		i.outcome, i.reason = o, reason
	}
}

// finish records the outcome and stops the machine.
func (i *Instance) finish(o Outcome, reason string) {
	i.setOutcome(o, reason)
	i.m.Stop()
}

// connect waits for the agent's host key line on the console, then for
// the backend to reach the agent, within the boot timeout.
func (i *Instance) connect(ctx context.Context) error {
	deadline := time.NewTimer(i.cfg.BootTimeout)
	defer deadline.Stop()
	var fingerprint string
	select {
	case fingerprint = <-i.ready:
	case <-deadline.C:
		i.finish(OutcomeBootTimeout, fmt.Sprintf("the guest agent was not ready within %v", i.cfg.BootTimeout))
		return i.failure("boot")
	case <-i.ended:
		return i.failure("boot")
	case <-ctx.Done():
		i.finish(OutcomeCanceled, Cause(ctx))
		return i.failure("boot")
	}
	cctx, cancel := context.WithDeadline(ctx, i.started.Add(i.cfg.BootTimeout))
	defer cancel()
	go func() {
		select {
		case <-i.ended:
			cancel()
		case <-cctx.Done():
		}
	}()
	err := i.m.Connect(cctx, fingerprint)
	switch {
	case err == nil:
		i.bootTime = time.Since(i.started)
		return nil
	case ctx.Err() != nil:
		i.finish(OutcomeCanceled, Cause(ctx))
	case i.hasEnded():
	default:
		i.finish(OutcomeBootTimeout, fmt.Sprintf("the guest agent did not answer within %v: %v", i.cfg.BootTimeout, err))
	}
	return i.failure("boot")
}

func (i *Instance) hasEnded() bool {
	select {
	case <-i.ended:
		return true
	default:
		return false
	}
}

// VMError is returned when the VM ended instead of doing what was asked.
type VMError struct {
	Op      string // what was being done: "boot", "run"
	Outcome Outcome
	Reason  string
	// NotStarted says the command asked for never started.
	NotStarted bool
	Tail       []string // last console lines
	// Crashes are the crash reports the console showed.
	Crashes []triage.Report
	// Info says what the machine ran under.
	Info Info
}

func (e *VMError) Error() string {
	return fmt.Sprintf("runner: %s: %s: %s", e.Op, e.Outcome, e.Reason)
}

// failure waits for the VM's end (its outcome is then final) and
// describes it.
func (i *Instance) failure(op string) *VMError {
	<-i.ended
	o, r := i.Outcome()
	return &VMError{Op: op, Outcome: o, Reason: r, Tail: i.ConsoleTail(), Crashes: i.Crashes(), Info: i.m.Info()}
}

// Result is what a guest command did.
type Result struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
	Duration time.Duration
	// TimedOut is set when the command ran past its timeout and was killed.
	TimedOut bool
}

// ErrTimeout is wrapped by Run's error when a command outlives its timeout.
var ErrTimeout = errors.New("timeout")

// ErrInterrupted is wrapped by Run's error when the caller's context ended
// while the command ran; the error says why (Cause).
var ErrInterrupted = errors.New("interrupted")

// Run runs command with /bin/sh -c in the guest, with stdin (may be nil),
// and waits for it for at most timeout (0: no limit). On timeout the
// command is killed and the error wraps ErrTimeout; when ctx ends it wraps
// ErrInterrupted. If the VM ends meanwhile (crash, silence, exit) the error
// is a *VMError.
func (i *Instance) Run(ctx context.Context, command string, stdin io.Reader, timeout time.Duration) (Result, error) {
	var stdout, stderr strings.Builder
	r, err := i.RunStream(ctx, command, stdin, &stdout, &stderr, timeout)
	r.Stdout, r.Stderr = []byte(stdout.String()), []byte(stderr.String())
	return r, err
}

// RunStream is Run with the command's output streamed to stdout and stderr.
func (i *Instance) RunStream(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer, timeout time.Duration) (Result, error) {
	res := Result{ExitCode: -1}
	if i.hasEnded() {
		e := i.failure("run")
		e.NotStarted = true
		return res, e
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timedOut <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timedOut = t.C
	}
	var flagExpired, flagEnded bool
	var flag sync.Mutex
	go func() {
		select {
		case <-timedOut:
			flag.Lock()
			flagExpired = true
			flag.Unlock()
		case <-i.ended:
			flag.Lock()
			flagEnded = true
			flag.Unlock()
		case <-rctx.Done():
		}
		cancel()
	}()
	start := time.Now()
	code, err := i.m.Run(rctx, command, stdin, stdout, stderr)
	res.Duration = time.Since(start)
	cancel()
	flag.Lock()
	expired, vmEnded := flagExpired, flagEnded
	flag.Unlock()
	if err == nil {
		res.ExitCode = code
		return res, nil
	}
	if !vmEnded && ctx.Err() == nil && !expired {
		// A lost connection without an exit status: the VM likely
		// ended; give its end a moment to be seen.
		select {
		case <-i.ended:
			vmEnded = true
		case <-time.After(2 * time.Second):
		}
	}
	switch {
	case vmEnded || i.hasEnded():
		e := i.failure("run")
		e.NotStarted = errors.Is(err, ErrNotStarted)
		return res, e
	case ctx.Err() != nil:
		return res, fmt.Errorf("runner: %q: %w: %s", command, ErrInterrupted, Cause(ctx))
	case expired:
		res.TimedOut = true
		return res, fmt.Errorf("runner: %q ran past %v: %w", command, timeout, ErrTimeout)
	}
	return res, fmt.Errorf("runner: %q: %w", command, err)
}

// Put copies data into a guest file with the given permission bits.
func (i *Instance) Put(ctx context.Context, guestPath string, data io.Reader, mode uint32) error {
	if strings.ContainsAny(guestPath, "\n\x00") {
		return fmt.Errorf("runner: bad guest path %q", guestPath)
	}
	r, err := i.Run(ctx, fmt.Sprintf("%s %o %s", protocol.PutCommand, mode, guestPath), data, time.Minute)
	if err != nil {
		return err
	}
	if r.ExitCode != 0 {
		return fmt.Errorf("runner: copy to guest %s: %s", guestPath, strings.TrimSpace(string(r.Stderr)))
	}
	return nil
}

// Get copies a guest file to w.
func (i *Instance) Get(ctx context.Context, guestPath string, w io.Writer) error {
	var stderr strings.Builder
	r, err := i.RunStream(ctx, protocol.GetCommand+" "+guestPath, nil, w, &stderr, time.Minute)
	if err != nil {
		return err
	}
	if r.ExitCode != 0 {
		return fmt.Errorf("runner: copy from guest %s: %s", guestPath, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Wait blocks until the VM ends or ctx ends.
func (i *Instance) Wait(ctx context.Context) error {
	select {
	case <-i.ended:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the VM has ended and its outcome is final.
func (i *Instance) Done() <-chan struct{} { return i.ended }

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

// Close stops the VM if it runs and releases it. After Close the machine is
// gone and console.log complete.
func (i *Instance) Close() error {
	i.mu.Lock()
	if i.closed {
		i.mu.Unlock()
		return nil
	}
	i.closed = true
	i.mu.Unlock()
	i.finish(OutcomeStopped, "closed")
	<-i.ended
	err := i.m.Close()
	i.console.Close()
	return err
}

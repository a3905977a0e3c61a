// Package qemu is the runner's QEMU backend: it boots a kernel and
// initramfs under qemu-system-x86_64 on this host (KVM when it really
// works, else TCG; directly into a PVH-capable vmlinux when it can, see
// package pvh), streams the serial console, stops the machine through QMP
// (github.com/digitalocean/go-qemu), and reaches the guest agent over SSH,
// pinned to the host key the agent printed on the console: through a
// virtio-serial port whose host end is a Unix socket in the machine's
// scratch directory (runner.Config.Serial), else through a loopback-only
// port forward of the NIC.
//
// QEMU is started through internal/proc, so it dies with kregress even on
// SIGKILL; its scratch directory (the QMP socket) is owned by a lock that
// QEMU's guard holds, and every Boot removes the scratch directories of
// dead runs.
package qemu

import (
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
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/kregress/kregress/agent/protocol"
	"github.com/kregress/kregress/internal/proc"
	"github.com/kregress/kregress/runner"
	"github.com/kregress/kregress/runner/pvh"
)

const qemuBinary = "qemu-system-x86_64"

// Backend boots machines under QEMU on this host.
type Backend struct{}

// Machine is one QEMU process and the guest agent's SSH connection.
type Machine struct {
	info    runner.Info
	cmd     *proc.Cmd
	console *os.File // read end of QEMU's stdout
	stderr  *tailBuffer
	scratch string
	owner   *os.File // scratch's owner lock
	qmpPath string
	port    int    // the host port forwarded to the agent's SSH, when over the NIC
	serial  string // the host end of the agent's virtio-serial port, when over it
	signer  ssh.Signer
	done    chan struct{}

	mu       sync.Mutex
	client   *ssh.Client
	stopOnce sync.Once
}

// Boot starts QEMU for cfg.
func (Backend) Boot(ctx context.Context, cfg runner.Config) (runner.Machine, error) {
	if cfg.Kernel == "" {
		return nil, errors.New("qemu: no kernel given")
	}
	if _, err := os.Stat(cfg.Kernel); err != nil {
		return nil, fmt.Errorf("qemu: kernel: %w", err)
	}
	if cfg.Initrd != "" {
		if _, err := os.Stat(cfg.Initrd); err != nil {
			return nil, fmt.Errorf("qemu: initrd: %w", err)
		}
	}
	if _, err := exec.LookPath(qemuBinary); err != nil {
		return nil, fmt.Errorf("qemu: %s not found (install Debian's qemu-system-x86): %w", qemuBinary, err)
	}
	log := cfg.Log
	if log == nil {
		log = func(string, ...any) {}
	}
	m := &Machine{done: make(chan struct{})}
	switch cfg.Accel {
	case runner.AccelKVM, runner.AccelTCG:
		m.info.Accel, m.info.AccelReason = cfg.Accel, "requested"
	case "":
		p := ProbeAccel(ctx, cfg.Kernel, cfg.CacheDir)
		cached := ""
		if p.Cached {
			cached = " (cached probe)"
		}
		log("accelerator: %s: %s%s", p.Accel, p.Reason, cached)
		m.info.Accel, m.info.AccelReason = p.Accel, p.Reason
	default:
		return nil, fmt.Errorf("qemu: unknown accelerator %q (want kvm or tcg)", cfg.Accel)
	}
	kernel := pvh.Kernel{Path: cfg.Kernel, Reason: "bzimage boot requested"}
	switch cfg.Boot {
	case "", runner.BootAuto:
		if cfg.CacheDir == "" {
			kernel.Reason = "no cache directory to extract the kernel into"
			break
		}
		k, err := pvh.Prepare(ctx, cfg.Kernel, filepath.Join(cfg.CacheDir, "kernels"))
		if err != nil {
			return nil, fmt.Errorf("qemu: %w", err)
		}
		kernel = k
		if k.PVH {
			log("boot: direct PVH entry into %s", k.Path)
		} else {
			log("boot: bzImage through the firmware: %s", k.Reason)
		}
	case runner.BootBzImage:
	default:
		return nil, fmt.Errorf("qemu: unknown boot mode %q (want auto or bzimage)", cfg.Boot)
	}
	m.info.Boot = "bzimage"
	if kernel.PVH {
		m.info.Boot = "pvh"
	}
	if gone := sweepScratch(os.TempDir()); len(gone) > 0 {
		log("removed %d scratch directories of dead kregress runs", len(gone))
	}
	var err error
	m.scratch, m.owner, err = newScratch(os.TempDir())
	if err != nil {
		return nil, err
	}
	m.qmpPath = filepath.Join(m.scratch, "qmp.sock")
	appendLine := "console=ttyS0 nokaslr panic=-1 printk.devkmsg=on "
	if m.info.Accel == runner.AccelTCG {
		// Under TCG on a loaded host the kernel's check that the timer
		// interrupt arrives through the IO-APIC can fail and panic the
		// boot ("IO-APIC + timer doesn't work!", seen here at load 24):
		// an artefact of emulation speed, not of the kernel under test.
		appendLine += "no_timer_check "
	}
	appendLine += cfg.Append
	if cfg.Agent {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err == nil {
			m.signer, err = ssh.NewSignerFromKey(priv)
		}
		if err != nil {
			m.release()
			return nil, fmt.Errorf("qemu: SSH key: %w", err)
		}
		sshPub, _ := ssh.NewPublicKey(pub)
		appendLine += fmt.Sprintf(" %s=%s", protocol.KeyParam, base64.StdEncoding.EncodeToString(sshPub.Marshal()))
		switch {
		case cfg.Serial:
			m.serial = filepath.Join(m.scratch, "agent.sock")
			appendLine += fmt.Sprintf(" %s=%s", protocol.SerialParam, protocol.SerialPort)
			if cfg.Network {
				appendLine += fmt.Sprintf(" %s=1", protocol.NICParam)
			}
		default:
			appendLine += fmt.Sprintf(" %s=22", protocol.PortParam)
		}
	}
	// A free port can be taken between our probe and QEMU's bind when
	// several VMs start at once; QEMU then fails at once and we retry.
	for attempt := 0; ; attempt++ {
		err = m.start(cfg, kernel.Path, strings.TrimSpace(appendLine))
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, errPortTaken) || attempt == 4 {
			m.release()
			return nil, err
		}
	}
}

var errPortTaken = errors.New("host forwarding port taken")

func (m *Machine) start(cfg runner.Config, kernel, appendLine string) error {
	// The q35 machine, not QEMU's default pc (i440fx): on pc, enabling
	// the NIC's interrupt had the kernel evaluate the ACPI _PRT in its
	// interpreter, 0.15 s of each boot under TCG (runner/NOTES.md); on
	// q35 it takes nothing, and a bare boot takes the same on both.
	args := []string{
		"-machine", "q35",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-m", fmt.Sprint(cfg.MemoryMB), "-smp", fmt.Sprint(cfg.CPUs),
		"-kernel", kernel, "-append", appendLine,
		"-serial", "stdio",
		"-qmp", "unix:" + m.qmpPath + ",server=on,wait=off",
	}
	if m.serial != "" {
		args = append(args, "-device", "virtio-serial-pci",
			"-chardev", "socket,id=agent,path="+m.serial+",server=on,wait=off",
			"-device", "virtserialport,chardev=agent,name="+protocol.SerialPort)
	}
	if m.serial == "" || cfg.Network {
		netdev := "user,id=n0"
		if cfg.Agent && m.serial == "" {
			port, err := freePort()
			if err != nil {
				return fmt.Errorf("qemu: pick a port: %w", err)
			}
			m.port = port
			netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:22", port)
		}
		args = append(args, "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0")
	}
	if cfg.Initrd != "" {
		args = append(args, "-initrd", cfg.Initrd)
	}
	if m.info.Accel == runner.AccelKVM {
		args = append(args, "-accel", "kvm", "-cpu", "host")
	} else {
		args = append(args, "-accel", "tcg", "-cpu", "max")
	}
	// QEMU dies with kregress (package proc) and its guard holds the
	// scratch directory's lock; Stop ends it (QMP quit, then kill), so it
	// gets no context.
	cmd := proc.Command(proc.WithHeld(context.Background(), m.owner), qemuBinary, args...)
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	cmd.Stdout = w
	m.stderr = &tailBuffer{max: 4096}
	cmd.Stderr = m.stderr
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return fmt.Errorf("qemu: start %s: %w", qemuBinary, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	// QEMU validates its arguments and binds the forward before it runs
	// the guest; an early exit is a start failure.
	select {
	case <-exited:
		r.Close()
		if strings.Contains(m.stderr.String(), "host forwarding") {
			return errPortTaken
		}
		return fmt.Errorf("qemu: %s ended at start: %s", qemuBinary, describeExit(cmd, m.stderr))
	case <-time.After(300 * time.Millisecond):
	}
	m.cmd, m.console = cmd, r
	go func() {
		<-exited
		close(m.done)
	}()
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

// Console is QEMU's serial output.
func (m *Machine) Console() io.Reader { return m.console }

// Info says what the machine runs under.
func (m *Machine) Info() runner.Info { return m.info }

// Port is the host loopback port forwarded to the guest's SSH (0 when the
// agent is reached over virtio-serial).
func (m *Machine) Port() int { return m.port }

// Pid is QEMU's guard's pid (QEMU's process group).
func (m *Machine) Pid() int { return m.cmd.Process.Pid }

// Scratch is the machine's scratch directory (the QMP socket).
func (m *Machine) Scratch() string { return m.scratch }

// Done is closed when QEMU has exited.
func (m *Machine) Done() <-chan struct{} { return m.done }

// Exit says how QEMU ended, from its exit status and last stderr line.
func (m *Machine) Exit() string {
	select {
	case <-m.done:
	default:
		return ""
	}
	return describeExit(m.cmd, m.stderr)
}

// describeExit says how an exited QEMU ended.
func describeExit(cmd *proc.Cmd, stderr *tailBuffer) string {
	last := lastLine(stderr.String())
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		return fmt.Sprintf("QEMU was killed by %s (%v)", unix.SignalName(ws.Signal()), ws.Signal())
	case ws.ExitStatus() != 0:
		return fmt.Sprintf("QEMU exited with status %d: %s", ws.ExitStatus(), last)
	case last != "":
		// "terminating on signal 15 from pid ...": QEMU stops cleanly
		// on SIGTERM, SIGINT and SIGHUP and says who sent it.
		return "QEMU exited: " + last
	}
	return "QEMU exited by itself (the guest powered off or reset)"
}

// Stop ends QEMU: a QMP quit first, SIGKILL to its process group if it
// lingers. It returns when QEMU has exited.
func (m *Machine) Stop() {
	m.stopOnce.Do(func() {
		select {
		case <-m.done:
			return
		default:
		}
		qmpRun(m.qmpPath, time.Second, "quit")
		select {
		case <-m.done:
		case <-time.After(2 * time.Second):
			m.cmd.Kill()
		}
	})
	<-m.done
}

// Close stops QEMU and removes its scratch directory.
func (m *Machine) Close() error {
	m.mu.Lock()
	if m.client != nil {
		m.client.Close()
		m.client = nil
	}
	m.mu.Unlock()
	m.Stop()
	m.console.Close()
	m.release()
	return nil
}

// release removes the scratch directory.
func (m *Machine) release() {
	if m.scratch != "" {
		os.RemoveAll(m.scratch)
		m.owner.Close()
		m.scratch = ""
	}
}

// Status asks QEMU over QMP for the VM's run state ("running", "paused", ...).
func (m *Machine) Status() (string, error) {
	var r struct {
		Status string `json:"status"`
	}
	if err := qmpRun(m.qmpPath, 2*time.Second, "query-status", &r); err != nil {
		return "", err
	}
	return r.Status, nil
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

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

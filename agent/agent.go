// Package agent is the kregress guest agent: the static binary that runs as
// /init in the guest. As PID 1 it mounts proc, sys, dev and tmp, loads the
// kernel modules the image lists, brings up the network that QEMU's user
// networking expects when the machine has a NIC, and serves SSH
// (golang.org/x/crypto/ssh) to the one host key pair of this run, on a
// virtio-serial port (kregress.serial=) or on a TCP port of the NIC
// (kregress.port=): exec with exit status, stdout and stderr, signals,
// and file copy. Nothing else in the guest speaks to the host. The host
// ends the guest by ending QEMU: nothing in a guest needs a clean shutdown
// (the root is the initramfs, targets are tmpfs or the host's simulated
// server, the console log is complete either way).
//
// The host passes the run's authorized public key and the SSH port on the
// kernel command line (kregress.key=, kregress.port=). The agent prints
// its own host key fingerprint and a ready line on the console, which the
// runner waits for and pins. What host and agent agree on (markers,
// command-line keys, command and workload names) is in package protocol.
package agent

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/kregress/kregress/agent/protocol"
)

// Guest network set-up for QEMU user networking.
const (
	guestAddr = "10.0.2.15/24"
	gateway   = "10.0.2.2"
)

// Init runs the agent as PID 1. It never returns: on a fatal error it
// prints the reason on the console and powers the machine off, so the
// runner sees both the reason and QEMU's exit.
func Init() {
	console := os.Stdout
	logf := func(format string, args ...any) {
		fmt.Fprintf(console, "kregress-agent: "+format+"\n", args...)
	}
	fail := func(err error) {
		logf("fatal: %v", err)
		unix.Sync()
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		select {}
	}
	if err := mountBasics(); err != nil {
		fail(err)
	}
	os.Setenv("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
	os.Setenv("HOME", "/root")
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		fail(err)
	}
	params := parseCmdline(string(cmdline))
	// The SSH server's host key does not need the network: it is made
	// on the other CPU while the modules load.
	key := params[protocol.KeyParam]
	type served struct {
		srv *Server
		err error
	}
	server := make(chan served, 1)
	if key != "" {
		go func() {
			srv, err := NewServer(key)
			server <- served{srv, err}
		}()
	}
	// The NIC, when the machine has one, is brought up as soon as it
	// exists, before the modules that need it (an LNet stack configures
	// its interfaces at load). Without a serial port to serve on, SSH
	// goes over the NIC.
	serialPort := params[protocol.SerialParam]
	nic := serialPort == "" || params[protocol.NICParam] == "1"
	netUp := false
	netReady := func() error {
		if netUp || !nic {
			return nil
		}
		if _, err := os.Stat("/sys/class/net/eth0"); err != nil {
			return nil
		}
		netUp = true
		return setupNetwork()
	}
	if err := loadModules("/etc/kregress/modules", netReady, loadModule); err != nil {
		fail(err)
	}
	if nic && !netUp {
		if err := setupNetwork(); err != nil {
			fail(err)
		}
	}
	if key == "" {
		logf("no %s= on the kernel command line; not serving SSH", protocol.KeyParam)
		runShellOnConsole()
		return
	}
	sv := <-server
	if sv.err != nil {
		fail(sv.err)
	}
	srv := sv.srv
	if serialPort != "" {
		dev, err := findSerialPort(serialPort)
		if err != nil {
			fail(err)
		}
		// One write: the host reads the key and starts at once.
		fmt.Fprintf(console, "%s%s\n%s on virtio-serial port %s (%s)\n", protocol.HostKeyMarker, srv.Fingerprint(), protocol.ReadyMarker, serialPort, dev)
		go reapOrphans()
		if err := srv.ServePort(dev); err != nil {
			fail(err)
		}
		return
	}
	port := params[protocol.PortParam]
	if port == "" {
		port = "22"
	}
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fail(err)
	}
	fmt.Fprintf(console, "%s%s\n%s on port %s\n", protocol.HostKeyMarker, srv.Fingerprint(), protocol.ReadyMarker, port)
	go reapOrphans()
	if err := srv.Serve(ln); err != nil {
		fail(err)
	}
}

// runShellOnConsole gives a human a shell when no host key was passed (a
// kernel booted by hand with the image).
func runShellOnConsole() {
	cmd := exec.Command("/bin/sh")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Run()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

func mountBasics() error {
	mounts := []struct{ src, dst, typ string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
		{"tmpfs", "/run", "tmpfs"},
	}
	for _, m := range mounts {
		os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.typ, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.typ, m.dst, err)
		}
	}
	os.MkdirAll("/dev/pts", 0o755)
	unix.Mount("devpts", "/dev/pts", "devpts", 0, "")
	// debugfs is optional: kernels without it simply do not have it.
	unix.Mount("debugfs", "/sys/kernel/debug", "debugfs", 0, "")
	return nil
}

func parseCmdline(s string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

// loadModules loads, in order, the modules listed one per line in list,
// as a path optionally followed by a space and the module's parameters. A module the kernel already has (EEXIST) is fine.
// Before each module, and after the last, it calls between, which may
// act on what the modules so far brought (the network). load loads one
// module (loadModule; tests fake it).
//
// Loading the NIC's drivers concurrently (each after what modules.dep
// says it needs) was tried and measured: each load then took longer
// (virtio_pci's 0.5 s instead of 0.2-0.37 s; not traced further: loads
// share locks, and the loader patches kernel text with cross-CPU calls),
// and from /init to the network was 0.7-0.9 s instead of 0.5-0.6 s at a
// host load of 2.6-3.
func loadModules(list string, between func() error, load func(path, params string) error) error {
	f, err := os.Open(list)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "path [params...]"
		p, params, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if p == "" {
			continue
		}
		if err := between(); err != nil {
			return err
		}
		if err := load(p, params); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return between()
}

func loadModule(path, params string) error {
	mf, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module: %w", err)
	}
	defer mf.Close()
	if err := unix.FinitModule(int(mf.Fd()), params, 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	return nil
}

func setupNetwork() error {
	var err error
	// The NIC may appear a moment after its driver loads.
	for try := 0; try < 100; try++ {
		if _, err = os.Stat("/sys/class/net/eth0"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("network: no eth0 (is virtio-net built in or its module listed?): %w", err)
	}
	if err := configureNetwork("eth0", netip.MustParsePrefix(guestAddr), netip.MustParseAddr(gateway)); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	return nil
}

// Server is the agent's SSH server: it accepts exactly one public key.
type Server struct {
	config  *ssh.ServerConfig
	hostKey ssh.Signer
}

// NewServer returns a server that accepts only the public key given as
// the base64 of its SSH wire form (the middle field of an authorized_keys
// line). A fresh host key is generated.
func NewServer(authorizedB64 string) (*Server, error) {
	raw, err := base64.StdEncoding.DecodeString(authorizedB64)
	if err != nil {
		return nil, fmt.Errorf("authorized key: %w", err)
	}
	authorized, err := ssh.ParsePublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("authorized key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	want := authorized.Marshal()
	cfg := &ssh.ServerConfig{
		// The link is a socket or forwarded port on the host's loopback to
		// a VM with keys made for this run; curve25519 alone is the
		// cheapest exchange for a guest that runs the code for the first
		// time under emulation (ML-KEM, x/crypto's first choice, added
		// about 25 ms to each boot's first handshake under TCG: 92 ms
		// median against 66 ms, 6 boots each).
		Config: ssh.Config{KeyExchanges: []string{ssh.KeyExchangeCurve25519}},
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if string(k.Marshal()) == string(want) {
				return nil, nil
			}
			return nil, errors.New("key not authorized")
		},
	}
	cfg.AddHostKey(signer)
	return &Server{config: cfg, hostKey: signer}, nil
}

// Fingerprint is the SHA256 fingerprint of the server's host key.
func (s *Server) Fingerprint() string { return ssh.FingerprintSHA256(s.hostKey.PublicKey()) }

// Serve accepts connections on ln until it fails.
func (s *Server) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go s.handleConn(c)
	}
}

func (s *Server) handleConn(c net.Conn) {
	defer c.Close()
	sconn, chans, reqs, err := ssh.NewServerConn(c, s.config)
	if err != nil {
		return
	}
	defer sconn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go handleSession(ch, creqs)
	}
}

// exitStatus is the payload of an SSH "exit-status" request.
type exitStatus struct{ Status uint32 }

func handleSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var env []string
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(req.Payload, &kv) == nil {
				env = append(env, kv.Name+"="+kv.Value)
			}
			req.Reply(true, nil)
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				req.Reply(false, nil)
				return
			}
			req.Reply(true, nil)
			status := runCommand(ch, reqs, p.Command, env)
			ch.SendRequest("exit-status", false, ssh.Marshal(exitStatus{status}))
			return
		default:
			req.Reply(false, nil)
		}
	}
}

// runCommand runs one exec request and returns its exit status. Signals
// sent on the channel go to the command's whole process group.
func runCommand(ch ssh.Channel, reqs <-chan *ssh.Request, command string, env []string) uint32 {
	switch {
	case strings.HasPrefix(command, protocol.PutCommand+" "):
		return putFile(ch, strings.TrimPrefix(command, protocol.PutCommand+" "))
	case strings.HasPrefix(command, protocol.GetCommand+" "):
		return getFile(ch, strings.TrimPrefix(command, protocol.GetCommand+" "))
	}
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = "/root"
	cmd.Stdin = ch
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := children.start(cmd); err != nil {
		fmt.Fprintf(ch.Stderr(), "kregress-agent: %v\n", err)
		return 127
	}
	defer children.forget(cmd.Process.Pid)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case req, ok := <-reqs:
				if !ok {
					// The host went away: end the command.
					unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
					return
				}
				if req.Type == "signal" {
					var p struct{ Signal string }
					ssh.Unmarshal(req.Payload, &p)
					unix.Kill(-cmd.Process.Pid, signalByName(p.Signal))
				}
				if req.WantReply {
					req.Reply(req.Type == "signal", nil)
				}
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + uint32(ws.Signal())
		}
		return uint32(ee.ExitCode())
	}
	return 127
}

func signalByName(name string) unix.Signal {
	switch name {
	case "INT":
		return unix.SIGINT
	case "TERM":
		return unix.SIGTERM
	case "HUP":
		return unix.SIGHUP
	case "QUIT":
		return unix.SIGQUIT
	default:
		return unix.SIGKILL
	}
}

// putFile writes the channel's input to a file: "kregress-put MODE PATH".
func putFile(ch ssh.Channel, args string) uint32 {
	modeStr, path, ok := strings.Cut(args, " ")
	mode, err := strconv.ParseUint(modeStr, 8, 32)
	if !ok || err != nil || path == "" {
		fmt.Fprintf(ch.Stderr(), "usage: kregress-put MODE PATH\n")
		return 2
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(mode))
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "%v\n", err)
		return 1
	}
	_, err = io.Copy(f, ch)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(path, os.FileMode(mode))
	}
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "%v\n", err)
		return 1
	}
	return 0
}

// getFile copies a file to the channel's output: "kregress-get PATH".
func getFile(ch ssh.Channel, path string) uint32 {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "%v\n", err)
		return 1
	}
	defer f.Close()
	if _, err := io.Copy(ch, f); err != nil {
		fmt.Fprintf(ch.Stderr(), "%v\n", err)
		return 1
	}
	return 0
}

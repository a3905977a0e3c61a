package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kregress/kregress/agent/protocol"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// connect waits for the agent's host key line on the console, then dials
// the forwarded port until SSH answers with that key or the boot timeout
// passes.
func (i *Instance) connect(ctx context.Context, signer ssh.Signer) error {
	deadline := time.NewTimer(i.cfg.BootTimeout)
	defer deadline.Stop()
	var fingerprint string
	select {
	case fingerprint = <-i.ready:
	case <-deadline.C:
		i.finish(OutcomeBootTimeout, fmt.Sprintf("the guest agent was not ready within %v", i.cfg.BootTimeout))
		return i.failure("boot")
	case <-i.exited:
		i.setOutcome(OutcomeExited, "QEMU exited during boot")
		return i.failure("boot")
	case <-ctx.Done():
		i.finish(OutcomeCanceled, ctx.Err().Error())
		return ctx.Err()
	}
	cfg := &ssh.ClientConfig{
		User: "root",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if got := ssh.FingerprintSHA256(key); got != fingerprint {
				return fmt.Errorf("guest host key %s, console said %s", got, fingerprint)
			}
			return nil
		},
		Timeout: 5 * time.Second,
	}
	addr := fmt.Sprintf("127.0.0.1:%d", i.port)
	for {
		c, err := ssh.Dial("tcp", addr, cfg)
		if err == nil {
			i.sshClient = c
			i.bootTime = time.Since(i.started)
			return nil
		}
		select {
		case <-deadline.C:
			i.finish(OutcomeBootTimeout, fmt.Sprintf("SSH to the guest agent at %s failed until the boot timeout: %v", addr, err))
			return i.failure("boot")
		case <-i.exited:
			i.setOutcome(OutcomeExited, "QEMU exited during boot")
			return i.failure("boot")
		case <-ctx.Done():
			i.finish(OutcomeCanceled, ctx.Err().Error())
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// VMError is returned when the VM ended instead of doing what was asked.
type VMError struct {
	Op      string // what was being done: "boot", "run"
	Outcome Outcome
	Reason  string
	Tail    []string // last console lines
}

func (e *VMError) Error() string {
	return fmt.Sprintf("runner: %s: %s: %s", e.Op, e.Outcome, e.Reason)
}

func (i *Instance) failure(op string) error {
	o, r := i.Outcome()
	return &VMError{Op: op, Outcome: o, Reason: r, Tail: i.ConsoleTail()}
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

// Run runs command with /bin/sh -c in the guest, with stdin (may be nil),
// and waits for it for at most timeout (0: no limit). On timeout the
// command's process group is killed and the error wraps ErrTimeout. If the
// VM ends meanwhile (crash, silence, exit) the error is a *VMError.
func (i *Instance) Run(ctx context.Context, command string, stdin io.Reader, timeout time.Duration) (Result, error) {
	var stdout, stderr bytes.Buffer
	r, err := i.RunStream(ctx, command, stdin, &stdout, &stderr, timeout)
	r.Stdout, r.Stderr = stdout.Bytes(), stderr.Bytes()
	return r, err
}

// RunStream is Run with the command's output streamed to stdout and stderr.
func (i *Instance) RunStream(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer, timeout time.Duration) (Result, error) {
	var res Result
	if i.sshClient == nil {
		return res, errors.New("runner: no guest agent connection (Config.Agent was false or boot failed)")
	}
	sess, err := i.sshClient.NewSession()
	if err != nil {
		if o, _ := i.Outcome(); o != OutcomeRunning {
			return res, i.failure("run")
		}
		return res, fmt.Errorf("runner: new SSH session: %w", err)
	}
	defer sess.Close()
	sess.Stdin, sess.Stdout, sess.Stderr = stdin, stdout, stderr
	start := time.Now()
	if err := sess.Start(command); err != nil {
		return res, fmt.Errorf("runner: start %q: %w", command, err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	var tc <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		tc = t.C
	}
	select {
	case err = <-done:
	case <-tc:
		sess.Signal(ssh.SIGKILL)
		res.TimedOut = true
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		res.Duration = time.Since(start)
		res.ExitCode = -1
		return res, fmt.Errorf("runner: %q ran past %v: %w", command, timeout, ErrTimeout)
	case <-i.exited:
		res.Duration = time.Since(start)
		res.ExitCode = -1
		return res, i.failure("run")
	case <-ctx.Done():
		sess.Signal(ssh.SIGKILL)
		return res, ctx.Err()
	}
	res.Duration = time.Since(start)
	if err == nil {
		return res, nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		res.ExitCode = ee.ExitStatus()
		return res, nil
	}
	// The connection died without an exit status: the VM likely did too.
	select {
	case <-i.exited:
	case <-time.After(2 * time.Second):
	}
	if o, _ := i.Outcome(); o != OutcomeRunning {
		res.ExitCode = -1
		return res, i.failure("run")
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
	var stderr bytes.Buffer
	r, err := i.RunStream(ctx, protocol.GetCommand+" "+guestPath, nil, w, &stderr, time.Minute)
	if err != nil {
		return err
	}
	if r.ExitCode != 0 {
		return fmt.Errorf("runner: copy from guest %s: %s", guestPath, strings.TrimSpace(stderr.String()))
	}
	return nil
}

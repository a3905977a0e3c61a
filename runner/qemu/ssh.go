package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kregress/kregress/runner"
)

// Connect dials the forwarded port until the agent answers with the host
// key it printed, or ctx ends.
func (m *Machine) Connect(ctx context.Context, fingerprint string) error {
	if m.signer == nil {
		return errors.New("qemu: the machine was booted without the agent")
	}
	cfg := &ssh.ClientConfig{
		User: "root",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(m.signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if got := ssh.FingerprintSHA256(key); got != fingerprint {
				return fmt.Errorf("guest host key %s, console said %s", got, fingerprint)
			}
			return nil
		},
		Timeout: 5 * time.Second,
	}
	addr := fmt.Sprintf("127.0.0.1:%d", m.port)
	for {
		c, err := ssh.Dial("tcp", addr, cfg)
		if err == nil {
			m.mu.Lock()
			m.client = c
			m.mu.Unlock()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("qemu: SSH to the guest agent at %s: %w (last: %v)", addr, ctx.Err(), err)
		case <-m.done:
			return fmt.Errorf("qemu: SSH to the guest agent at %s: QEMU exited", addr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Run runs command in the guest over an SSH session.
func (m *Machine) Run(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	m.mu.Lock()
	c := m.client
	m.mu.Unlock()
	if c == nil {
		return -1, fmt.Errorf("qemu: %w: no connection to the guest agent", runner.ErrNotStarted)
	}
	sess, err := c.NewSession()
	if err != nil {
		return -1, fmt.Errorf("qemu: %w: new SSH session: %v", runner.ErrNotStarted, err)
	}
	defer sess.Close()
	sess.Stdin, sess.Stdout, sess.Stderr = stdin, stdout, stderr
	if err := sess.Start(command); err != nil {
		return -1, fmt.Errorf("qemu: %w: %v", runner.ErrNotStarted, err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		sess.Signal(ssh.SIGKILL)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return -1, ctx.Err()
	}
	if err == nil {
		return 0, nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return ee.ExitStatus(), nil
	}
	return -1, fmt.Errorf("qemu: SSH session: %w", err)
}

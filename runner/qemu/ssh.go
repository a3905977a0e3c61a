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

// Connect dials the agent (its virtio-serial port's socket, or the
// forwarded port) until it answers with the host key it printed, or ctx
// ends.
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
	network, addr := "tcp", fmt.Sprintf("127.0.0.1:%d", m.port)
	if m.serial != "" {
		network, addr = "unix", m.serial
	}
	for {
		c, err := dial(ctx, network, addr, cfg)
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

// dial opens an SSH connection over network and addr. The handshake, not
// only the dial, ends with ctx: a virtio-serial port's socket accepts
// before the guest reads.
func dial(ctx context.Context, network, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	nc, err := net.DialTimeout(network, addr, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	c, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if !stop() || err != nil {
		nc.Close()
		if err == nil {
			c.Close()
			err = ctx.Err()
		}
		return nil, err
	}
	return ssh.NewClient(c, chans, reqs), nil
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

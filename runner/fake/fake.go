// Package fake is a runner backend for tests of what drives machines (the
// runner's monitor, job): a machine whose console the test writes and
// whose guest commands a test function answers, and which ends when the
// test says so. No QEMU, no kernel: the console text a test writes should
// be a real kernel's (testdata logs).
package fake

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/kregress/kregress/agent/protocol"
	"github.com/kregress/kregress/runner"
)

// Fingerprint is the host key fingerprint a fake agent prints.
const Fingerprint = "SHA256:fake"

// Backend boots its Machine (once).
type Backend struct{ Machine *Machine }

// Boot starts the machine: unless it has NoAgent, its agent prints its
// host key line on the console.
func (b Backend) Boot(_ context.Context, cfg runner.Config) (runner.Machine, error) {
	m := b.Machine
	if m.Under.Accel == "" {
		m.Under.Accel = cfg.Accel
	}
	if !m.NoAgent && cfg.Agent {
		go m.Print(protocol.HostKeyMarker + Fingerprint)
	}
	return m, nil
}

// Machine is a fake machine.
type Machine struct {
	// Under is what the machine claims to run under (Accel defaults to
	// the Config's).
	Under runner.Info
	// NoAgent keeps the agent's host key line off the console.
	NoAgent bool
	// RunFunc answers guest commands (nil: each exits 0 at once). It
	// should return when ctx ends.
	RunFunc func(ctx context.Context, command string, stdout, stderr io.Writer) (int, error)

	pr   *io.PipeReader
	pw   *io.PipeWriter
	done chan struct{}
	mu   sync.Mutex
	exit string
	once sync.Once
}

// New returns a machine that runs until Die or Stop.
func New() *Machine {
	m := &Machine{done: make(chan struct{})}
	m.pr, m.pw = io.Pipe()
	return m
}

// Print writes lines to the console; it returns once they were read.
func (m *Machine) Print(lines ...string) {
	m.pw.Write([]byte(strings.Join(lines, "\n") + "\n"))
}

// Die ends the machine as if it ended by itself; how is what Exit says.
func (m *Machine) Die(how string) {
	m.once.Do(func() {
		m.mu.Lock()
		m.exit = how
		m.mu.Unlock()
		m.pw.Close()
		close(m.done)
	})
}

// Console is what Print wrote.
func (m *Machine) Console() io.Reader { return m.pr }

// Info is Under.
func (m *Machine) Info() runner.Info { return m.Under }

// Connect accepts the fake agent's fingerprint.
func (m *Machine) Connect(ctx context.Context, fingerprint string) error {
	if fingerprint != Fingerprint {
		return fmt.Errorf("fake: host key %q, want %q", fingerprint, Fingerprint)
	}
	return nil
}

// Run answers command with RunFunc.
func (m *Machine) Run(ctx context.Context, command string, _ io.Reader, stdout, stderr io.Writer) (int, error) {
	select {
	case <-m.done:
		return -1, fmt.Errorf("fake: %w: the machine has ended", runner.ErrNotStarted)
	default:
	}
	if m.RunFunc == nil {
		return 0, nil
	}
	return m.RunFunc(ctx, command, stdout, stderr)
}

// Done is closed when the machine has ended.
func (m *Machine) Done() <-chan struct{} { return m.done }

// Exit says how the machine ended.
func (m *Machine) Exit() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.exit
}

// Stop ends the machine.
func (m *Machine) Stop() { m.Die("stopped") }

// Close ends the machine.
func (m *Machine) Close() error {
	m.Stop()
	return nil
}

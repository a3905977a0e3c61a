package qemu

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// qmpRun connects to the QMP socket at path, runs command and
// disconnects; with ret non-nil it decodes the reply's "return" into it.
// The whole exchange ends within timeout: go-qemu bounds only the dial,
// and a QEMU whose main loop is stuck accepts the connection but never
// answers, which must not keep Stop from killing it.
func qmpRun(path string, timeout time.Duration, command string, ret ...any) error {
	type answer struct {
		raw []byte
		err error
	}
	done := make(chan answer, 1)
	go func() {
		raw, err := qmpExchange(path, timeout, command)
		done <- answer{raw, err}
	}()
	var a answer
	select {
	case a = <-done:
	case <-time.After(timeout):
		// The exchange goroutine ends when QEMU answers or dies.
		return fmt.Errorf("qemu: QMP %s at %s: no answer within %v", command, path, timeout)
	}
	if a.err != nil || len(ret) == 0 {
		return a.err
	}
	var r struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(a.raw, &r); err != nil {
		return fmt.Errorf("qemu: QMP %s reply %q: %w", command, a.raw, err)
	}
	if err := json.Unmarshal(r.Return, ret[0]); err != nil {
		return fmt.Errorf("qemu: QMP %s reply %q: %w", command, a.raw, err)
	}
	return nil
}

// qmpExchange does qmpRun's exchange and returns the raw reply.
func qmpExchange(path string, timeout time.Duration, command string) ([]byte, error) {
	mon, err := qmp.NewSocketMonitor("unix", path, timeout)
	if err != nil {
		return nil, fmt.Errorf("qemu: QMP at %s: %w", path, err)
	}
	if err := mon.Connect(); err != nil {
		return nil, fmt.Errorf("qemu: QMP at %s: %w", path, err)
	}
	defer mon.Disconnect()
	raw, err := mon.Run([]byte(`{"execute":"` + command + `"}`))
	if err != nil {
		return nil, fmt.Errorf("qemu: QMP %s: %w", command, err)
	}
	return raw, nil
}

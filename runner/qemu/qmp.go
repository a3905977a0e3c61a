package qemu

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// qmpRun connects to the QMP socket at path, runs command and
// disconnects; with ret non-nil it decodes the reply's "return" into it.
func qmpRun(path string, timeout time.Duration, command string, ret ...any) error {
	mon, err := qmp.NewSocketMonitor("unix", path, timeout)
	if err != nil {
		return fmt.Errorf("qemu: QMP at %s: %w", path, err)
	}
	if err := mon.Connect(); err != nil {
		return fmt.Errorf("qemu: QMP at %s: %w", path, err)
	}
	defer mon.Disconnect()
	raw, err := mon.Run([]byte(`{"execute":"` + command + `"}`))
	if err != nil {
		return fmt.Errorf("qemu: QMP %s: %w", command, err)
	}
	if len(ret) == 0 {
		return nil
	}
	var r struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("qemu: QMP %s reply %q: %w", command, raw, err)
	}
	if err := json.Unmarshal(r.Return, ret[0]); err != nil {
		return fmt.Errorf("qemu: QMP %s reply %q: %w", command, raw, err)
	}
	return nil
}

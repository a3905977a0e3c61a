package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// The port is found by the name the host gave it, whatever its vport
// number; an absent name gives "".
func TestSerialPortDevice(t *testing.T) {
	class := t.TempDir()
	for dev, name := range map[string]string{"vport0p0": "", "vport0p1": "org.qemu.guest_agent.0", "vport1p1": "kregress.agent"} {
		os.MkdirAll(filepath.Join(class, dev), 0o755)
		os.WriteFile(filepath.Join(class, dev, "name"), []byte(name+"\n"), 0o644)
	}
	if got := serialPortDevice(class, "/dev", "kregress.agent"); got != "/dev/vport1p1" {
		t.Errorf("kregress.agent: %q, want /dev/vport1p1", got)
	}
	if got := serialPortDevice(class, "/dev", "other"); got != "" {
		t.Errorf("other: %q, want none", got)
	}
}

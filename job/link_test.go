package job

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The agent is reached over virtio-serial when the kernel has
// virtio_console, as a module or built in, and the NIC's driver is packed
// only when the suite needs a network or SSH must go over it.
func TestGuestLink(t *testing.T) {
	tree := func(dep, builtin string) string {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, "modules.dep"), []byte(dep), 0o644)
		os.WriteFile(filepath.Join(d, "modules.builtin"), []byte(builtin), 0o644)
		return d
	}
	const virtio = "kernel/drivers/virtio/virtio_pci.ko:\nkernel/drivers/net/virtio_net.ko:\n"
	modular := tree(virtio+"kernel/drivers/char/virtio_console.ko:\n", "")
	builtin := tree(virtio, "kernel/drivers/char/virtio_console.ko\n")
	without := tree(virtio, "")
	cases := []struct {
		name    string
		modDir  string
		network bool
		mods    []string
		serial  bool
	}{
		{"module", modular, false, []string{"virtio_pci", "virtio_console"}, true},
		{"module, network", modular, true, []string{"virtio_pci", "virtio_console", "virtio_net"}, true},
		{"built in", builtin, false, []string{"virtio_pci", "virtio_console"}, true},
		{"no virtio_console", without, false, []string{"virtio_pci", "virtio_net"}, false},
		{"no module tree", "", true, nil, false},
	}
	for _, c := range cases {
		mods, serial := guestLink(c.modDir, c.network)
		if !slices.Equal(mods, c.mods) || serial != c.serial {
			t.Errorf("%s: modules %q serial %v, want %q %v", c.name, mods, serial, c.mods, c.serial)
		}
	}
}

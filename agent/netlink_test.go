package agent

import (
	"net"
	"strings"
	"testing"
)

// ifindex reads the index the kernel gives the interface, as
// net.InterfaceByName finds it, and names the interface when it is not
// there.
func TestIfindexFromSysfs(t *testing.T) {
	want, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ifindex("/sys", "lo")
	if err != nil || got != want.Index {
		t.Errorf("ifindex lo = %d, %v; want %d", got, err, want.Index)
	}
	if _, err := ifindex("/sys", "no-such-if0"); err == nil || !strings.Contains(err.Error(), "no-such-if0") {
		t.Errorf("missing interface: %v", err)
	}
}

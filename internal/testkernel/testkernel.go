// Package testkernel finds the real kernel the tests boot: Debian's stock
// linux-image-amd64 under /boot. A test on a machine without it is skipped
// with a message naming the package to install.
package testkernel

import (
	"path/filepath"
	"testing"

	"github.com/kregress/kregress/images"
)

// Debian returns the newest /boot/vmlinuz-* (a bzImage), or skips t.
func Debian(t testing.TB) string {
	t.Helper()
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(ks) == 0 {
		t.Skip("no /boot/vmlinuz-*: install Debian's linux-image-amd64 (make setup)")
	}
	return ks[len(ks)-1]
}

// DebianWithModules returns Debian's kernel and its module tree
// (/lib/modules/<release>).
func DebianWithModules(t testing.TB) (kernel, modDir string) {
	t.Helper()
	kernel = Debian(t)
	rel, err := images.KernelRelease(kernel)
	if err != nil {
		t.Fatal(err)
	}
	return kernel, "/lib/modules/" + rel
}

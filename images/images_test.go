package images

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func debianModules(t *testing.T) (kernel, modDir string) {
	t.Helper()
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(ks) == 0 {
		t.Skip("no /boot/vmlinuz-*: install Debian's linux-image-amd64")
	}
	rel, err := KernelRelease(ks[len(ks)-1])
	if err != nil {
		t.Fatal(err)
	}
	return ks[len(ks)-1], "/lib/modules/" + rel
}

func TestKernelRelease(t *testing.T) {
	kernel, _ := debianModules(t)
	rel, err := KernelRelease(kernel)
	if err != nil {
		t.Fatal(err)
	}
	// Debian names the file after the release.
	if want := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-"); rel != want {
		t.Errorf("release %q, file name says %q", rel, want)
	}
	if _, err := KernelRelease("/etc/passwd"); err == nil || !strings.Contains(err.Error(), "/etc/passwd") {
		t.Errorf("non-kernel: %v", err)
	}
}

func TestResolveModulesDependenciesFirst(t *testing.T) {
	_, modDir := debianModules(t)
	got, err := ResolveModules(modDir, []string{"virtio_net", "virtio-pci"})
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, p := range got {
		pos[moduleName(p)] = i
	}
	// Independent reader: modinfo's depends field for each module.
	for _, p := range got {
		out, err := exec.Command("modinfo", "-F", "depends", filepath.Join(modDir, p)).Output()
		if err != nil {
			t.Skipf("modinfo: %v", err)
		}
		for _, d := range strings.Split(strings.TrimSpace(string(out)), ",") {
			if d == "" {
				continue
			}
			dp, ok := pos[strings.ReplaceAll(d, "-", "_")]
			if !ok || dp >= pos[moduleName(p)] {
				t.Errorf("%s depends on %s, which is not loaded before it (order %v)", p, d, got)
			}
		}
	}
	if _, ok := pos["virtio_net"]; !ok {
		t.Errorf("virtio_net missing from %v", got)
	}
	if _, err := ResolveModules(modDir, []string{"no_such_module_xyz"}); err == nil || !strings.Contains(err.Error(), "no_such_module_xyz") {
		t.Errorf("unknown module: %v", err)
	}
}

func TestBuildIsCachedAndReadableByCpio(t *testing.T) {
	_, modDir := debianModules(t)
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio not installed")
	}
	tmp := t.TempDir()
	agent := filepath.Join(tmp, "agent")
	os.WriteFile(agent, []byte("#!/bin/sh\n"), 0o755)
	extra := filepath.Join(tmp, "extra")
	os.MkdirAll(filepath.Join(extra, "etc", "x"), 0o755)
	os.WriteFile(filepath.Join(extra, "etc", "x", "hello"), []byte("hi\n"), 0o600)
	spec := Spec{Agent: agent, ModulesDir: modDir, Modules: []string{"virtio_net"}, ExtraDir: extra}
	cache := filepath.Join(tmp, "cache")
	p1, err := Build(context.Background(), spec, cache)
	if err != nil {
		t.Fatal(err)
	}
	st1, _ := os.Stat(p1)
	p2, err := Build(context.Background(), spec, cache)
	if err != nil || p2 != p1 {
		t.Fatalf("second build: %s, %v (first %s)", p2, err, p1)
	}
	if st2, _ := os.Stat(p2); !os.SameFile(st1, st2) {
		t.Error("second build rewrote the cached archive")
	}
	// Any input change gives another archive.
	os.WriteFile(filepath.Join(extra, "etc", "x", "hello"), []byte("changed\n"), 0o600)
	if p3, _ := Build(context.Background(), spec, cache); p3 == p1 {
		t.Error("changed input, same archive")
	}
	// GNU cpio, an independent reader, lists what we packed.
	out, err := exec.Command("sh", "-c", "cpio -itv < "+p1).CombinedOutput()
	if err != nil {
		t.Fatalf("cpio: %v\n%s", err, out)
	}
	list := string(out)
	for _, want := range []string{" init", " bin/busybox", "bin/sh -> busybox", " lib/modules/virtio_net.ko", " etc/x/hello", " etc/kregress/modules", "dev/console"} {
		if !strings.Contains(list, want) {
			t.Errorf("archive lacks %q:\n%s", want, list)
		}
	}
	if _, err := Build(context.Background(), Spec{Agent: filepath.Join(tmp, "missing")}, cache); err == nil {
		t.Error("missing agent accepted")
	}
}

// Out-of-tree modules are ordered by their own .modinfo depends, and the
// in-kernel modules they need come from the kernel's tree. Debian's
// virtio_net, net_failover and failover, given backwards, stand in for an
// out-of-tree set.
func TestExtraModulesOrderedByModinfo(t *testing.T) {
	_, modDir := debianModules(t)
	rel := func(n string) string {
		p, err := ResolveModules(modDir, []string{n})
		if err != nil {
			t.Fatal(err)
		}
		return filepath.Join(modDir, p[len(p)-1])
	}
	kos := []string{rel("virtio_net"), rel("net_failover"), rel("failover")}
	ordered, kdeps, err := orderExtraModules(kos)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range ordered {
		names = append(names, moduleName(o))
	}
	if strings.Join(names, " ") != "failover net_failover virtio_net" {
		t.Errorf("order %v", names)
	}
	out, _ := exec.Command("modinfo", "-F", "depends", kos[0]).Output()
	for _, d := range strings.Split(strings.TrimSpace(string(out)), ",") {
		if d == "failover" || d == "net_failover" || d == "" {
			continue
		}
		found := false
		for _, k := range kdeps {
			found = found || k == d
		}
		if !found {
			t.Errorf("kernel dependency %s of virtio_net not resolved (got %v)", d, kdeps)
		}
	}
	if _, err := ModuleDepends("/etc/passwd"); err == nil {
		t.Error("a non-module accepted")
	}
}

// Prune removes the least recently used images beyond the budget, never
// the one kept and never one used within the last hour; a reuse by Build
// counts as a use.
func TestPrune(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-3 * time.Hour)
	mk := func(name string, size int, used time.Time) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, used, used)
		return p
	}
	oldest := mk("initramfs-a.cpio.gz", 400, old.Add(-time.Hour))
	older := mk("initramfs-b.cpio", 300, old)
	kept := mk("initramfs-c.cpio", 300, old.Add(-2*time.Hour))
	recent := mk("initramfs-d.cpio", 500, time.Now().Add(-time.Minute))
	other := mk("vmlinux-x", 1000, old.Add(-5*time.Hour))
	gone := Prune(dir, 900, kept)
	if want := []string{oldest, older}; !reflect.DeepEqual(gone, want) {
		t.Errorf("removed %q, want %q", gone, want)
	}
	for _, p := range []string{kept, recent, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed", p)
		}
	}
	// Over budget, but what is left is kept or recent.
	if gone := Prune(dir, 1, kept); len(gone) != 0 {
		t.Errorf("removed %q", gone)
	}
}

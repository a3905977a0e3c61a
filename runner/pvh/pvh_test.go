package pvh

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kregress/kregress/internal/testkernel"
)

// TestDebianKernel extracts Debian's xz-compressed bzImage, checks the
// result with binutils' readelf, and checks the cache answers the second
// call.
func TestDebianKernel(t *testing.T) {
	bz := testkernel.Debian(t)
	cache := t.TempDir()
	k, err := Prepare(context.Background(), bz, cache)
	if err != nil {
		t.Fatal(err)
	}
	if !k.PVH || k.Reason != "" || filepath.Dir(k.Path) != cache {
		t.Fatalf("Prepare(%s) = %+v, want a PVH vmlinux in %s", bz, k, cache)
	}
	ef, err := elf.Open(k.Path)
	if err != nil {
		t.Fatal(err)
	}
	if ef.Machine != elf.EM_X86_64 || ef.Type != elf.ET_EXEC {
		t.Errorf("extracted kernel is %v %v, want an x86-64 executable", ef.Machine, ef.Type)
	}
	ef.Close()
	if _, err := exec.LookPath("readelf"); err == nil {
		out, err := exec.Command("readelf", "-n", k.Path).CombinedOutput()
		if err != nil {
			t.Fatalf("readelf -n: %v\n%s", err, out)
		}
		// readelf names Xen note 0x12 (PHYS32_ENTRY) by number or by name
		// depending on its version.
		if !strings.Contains(string(out), "0x00000012") && !strings.Contains(string(out), "PHYS32_ENTRY") {
			t.Errorf("readelf does not show the PVH entry note:\n%s", out)
		}
	}
	st1, _ := os.Stat(k.Path)
	k2, err := Prepare(context.Background(), bz, cache)
	if err != nil || k2 != k {
		t.Fatalf("second Prepare = %+v, %v; want %+v", k2, err, k)
	}
	st2, _ := os.Stat(k.Path)
	if !os.SameFile(st1, st2) {
		t.Error("second Prepare rewrote the extracted kernel instead of reusing it")
	}
	ents, _ := os.ReadDir(cache)
	if len(ents) != 1 {
		t.Errorf("cache holds %d entries, want the one vmlinux", len(ents))
	}
	// An ELF kernel with the note is used as it is.
	k3, err := Prepare(context.Background(), k.Path, t.TempDir())
	if err != nil || !k3.PVH || k3.Path != k.Path {
		t.Errorf("Prepare of the vmlinux itself = %+v, %v", k3, err)
	}
}

// fakeBzImage wraps payload in the real setup sectors of Debian's
// bzImage, with the header's payload fields pointing at it.
func fakeBzImage(t *testing.T, payload []byte) string {
	t.Helper()
	real, err := os.ReadFile(testkernel.Debian(t))
	if err != nil {
		t.Fatal(err)
	}
	setup := (int(real[0x1f1]) + 1) * 512
	img := append([]byte(nil), real[:setup]...)
	binary.LittleEndian.PutUint32(img[0x248:], 0)
	binary.LittleEndian.PutUint32(img[0x24c:], uint32(len(payload)))
	img = append(img, payload...)
	p := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNoPVHNoteFallsBack: a kernel without the note boots the classic
// way, and the answer is remembered.
func TestNoPVHNoteFallsBack(t *testing.T) {
	self, err := os.ReadFile("/bin/true") // an x86-64 ELF without Xen notes
	if err != nil {
		t.Skip(err)
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(self)
	w.Close()
	bz := fakeBzImage(t, gz.Bytes())
	cache := t.TempDir()
	k, err := Prepare(context.Background(), bz, cache)
	if err != nil {
		t.Fatal(err)
	}
	if k.PVH || k.Path != bz || !strings.Contains(k.Reason, "CONFIG_PVH") {
		t.Fatalf("Prepare = %+v, want the bzImage back with a reason naming CONFIG_PVH", k)
	}
	marks, _ := filepath.Glob(filepath.Join(cache, "*.nopvh"))
	if len(marks) != 1 {
		t.Fatalf("no .nopvh mark in the cache: %v", marks)
	}
	k2, err := Prepare(context.Background(), bz, cache)
	if err != nil || k2 != k {
		t.Errorf("second Prepare = %+v, %v; want %+v", k2, err, k)
	}
}

// TestBadKernels: each bad input gets an error naming the file and what
// is wrong, and the cache stays empty.
func TestBadKernels(t *testing.T) {
	bz := testkernel.Debian(t)
	real, err := os.ReadFile(bz)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		return p
	}
	corrupt := append([]byte(nil), real...)
	for i := len(corrupt) / 2; i < len(corrupt)/2+4096; i++ {
		corrupt[i] ^= 0x5a
	}
	cases := []struct {
		path, want string
	}{
		{write("text", []byte("this is not a kernel at all\n")), "not an x86 bzImage"},
		{write("short", []byte("ab")), "too short"},
		{write("truncated", real[:64<<10]), "lies outside"},
		{write("corrupt", corrupt), "decompress the xz payload"},
		{"/bin/true", "an ELF kernel that QEMU cannot boot"},
		{filepath.Join(dir, "missing"), "no such file"},
	}
	for _, c := range cases {
		cache := t.TempDir()
		k, err := Prepare(context.Background(), c.path, cache)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("Prepare(%s) = %+v, %v; want an error naming the file and %q", filepath.Base(c.path), k, err, c.want)
		}
		if ents, _ := os.ReadDir(cache); len(ents) != 0 {
			t.Errorf("Prepare(%s) left %d entries in the cache", filepath.Base(c.path), len(ents))
		}
	}
}

func TestCanceled(t *testing.T) {
	bz := testkernel.Debian(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Prepare(ctx, bz, t.TempDir()); err == nil {
		t.Error("Prepare with a canceled context succeeded")
	}
}

// FuzzPayload feeds arbitrary bytes to the parts that read a kernel image:
// none may panic, whatever the sizes in the headers say.
func FuzzPayload(f *testing.F) {
	f.Add([]byte("\x7fELF\x02\x01\x01"), uint32(4))
	f.Add(append(make([]byte, 12), "Xen\x00"...), uint32(18))
	f.Add([]byte{0xfe, 0xff, 0xff, 0xff, 0, 0, 0, 0, 18, 0, 0, 0}, uint32(18))
	f.Fuzz(func(t *testing.T, data []byte, typ uint32) {
		hasNote(data, binary.LittleEndian, "Xen", typ)
		elfHasPVH(bytes.NewReader(data))
		compression(data)
		p := filepath.Join(t.TempDir(), "k")
		os.WriteFile(p, data, 0o644)
		Prepare(context.Background(), p, t.TempDir())
	})
}

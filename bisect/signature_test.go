package bisect

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// compile builds a C source into an ELF object with debug info.
func compile(t *testing.T, dir, name, src string) string {
	t.Helper()
	c := filepath.Join(dir, name+".c")
	o := filepath.Join(dir, name+".o")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-O2", "-g", "-c", "-o", o, c).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return o
}

func TestImageSignature(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Fatal("gcc is needed (build-essential)")
	}
	dir := t.TempDir()
	code := "int f(int x) { return x * 3 + 1; }\n"
	a := compile(t, dir, "a", code)
	// The same code moved down two lines and with a comment: only the
	// debug info differs.
	b := compile(t, dir, "b", "/* a comment */\n\n"+code)
	c := compile(t, dir, "c", "int f(int x) { return x * 5 + 1; }\n")
	sig := func(vmlinux, mods string) string {
		s, err := ImageSignature(vmlinux, mods)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if sig(a, "") != sig(b, "") {
		t.Error("a change in debug info alone changed the signature")
	}
	if sig(a, "") == sig(c, "") {
		t.Error("a change in code left the signature unchanged")
	}
	// Modules count: the same vmlinux with a module that differs in code.
	m1, m2 := filepath.Join(dir, "m1"), filepath.Join(dir, "m2")
	for _, d := range []string{m1, m2} {
		os.MkdirAll(filepath.Join(d, "extra"), 0o755)
	}
	copyTo(t, a, filepath.Join(m1, "extra", "x.ko"))
	copyTo(t, c, filepath.Join(m2, "extra", "x.ko"))
	if sig(a, m1) == sig(a, m2) {
		t.Error("a module's code change left the signature unchanged")
	}
	if sig(a, m1) == sig(a, "") {
		t.Error("a module's presence left the signature unchanged")
	}
	if _, err := ImageSignature(filepath.Join(dir, "a.c"), ""); err == nil {
		t.Error("a non-ELF file was accepted")
	}
}

func copyTo(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

package symbolize

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kregress/kregress/results/triage"
)

// testProgram has static inline helpers that gcc -O2 inlines into their
// callers, a function in a second code section, and noinline functions.
const testProgram = `
#include <stdio.h>
volatile int sink;
static inline int square(int x) {
	sink += x;
	return x * x;
}
static inline int sum_squares(int a, int b) {
	int s = square(a);
	s += square(b);
	return s;
}
__attribute__((noinline)) int compute(int a, int b) {
	int r = sum_squares(a, b);
	if (r > 100)
		r -= sink;
	return r;
}
__attribute__((noinline, section(".text.other"))) int other(int n) {
	int t = 0;
	for (int i = 0; i < n; i++)
		t += sum_squares(i, n);
	return t;
}
int main(int argc, char **argv) {
	printf("%d %d\n", compute(argc, 3), other(argc));
	return 0;
}
`

// skipOrFail skips a test whose tool is missing, or fails it under
// CI=true, where `make setup` installs every tool the tests need.
func skipOrFail(t *testing.T, tool string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing under CI=true: %v", tool, err)
	}
	t.Skipf("skipping: %s not found: %v", tool, err)
}

// build compiles the test program with gcc; obj selects a relocatable
// object (like a kernel module) instead of an executable.
func build(t *testing.T, obj bool) string {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		skipOrFail(t, "gcc", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "prog.c")
	if err := os.WriteFile(src, []byte(testProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "prog")
	args := []string{"-g", "-O2", "-fno-pie", "-no-pie", "-o", out, src}
	if obj {
		out = filepath.Join(dir, "prog.ko")
		args = []string{"-g", "-O2", "-c", "-o", out, src}
	}
	if b, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %v: %v\n%s", args, err, b)
	}
	return out
}

// addr2line asks binutils (an independent reader, used only here) for
// the inlining chain at addr of section sec ("" for executables).
func addr2line(t *testing.T, bin, sec string, addr uint64) []Location {
	tool, err := exec.LookPath("addr2line")
	if err != nil {
		skipOrFail(t, "addr2line", err)
	}
	args := []string{"-e", bin, "-i", "-f"}
	if sec != "" {
		args = append(args, "-j", sec)
	}
	args = append(args, fmt.Sprintf("%#x", addr))
	b, err := exec.Command(tool, args...).Output()
	if err != nil {
		t.Fatalf("addr2line %v: %v", args, err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var out []Location
	for i := 0; i+1 < len(lines); i += 2 {
		pos := lines[i+1]
		if j := strings.Index(pos, " (discriminator"); j >= 0 {
			pos = pos[:j]
		}
		c := strings.LastIndexByte(pos, ':')
		ln, _ := strconv.Atoi(pos[c+1:])
		out = append(out, Location{Func: lines[i], File: filepath.Base(pos[:c]), Line: ln})
	}
	return out
}

func sameChain(got, want []Location) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].Func != want[i].Func || filepath.Base(got[i].File) != want[i].File || got[i].Line != want[i].Line {
			return false
		}
	}
	return true
}

// funcAddrs returns the symbol's start, size and section of fn.
func funcSym(t *testing.T, path, fn string) elf.Symbol {
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if s.Name == fn {
			return s
		}
	}
	t.Fatalf("no symbol %s in %s", fn, path)
	return elf.Symbol{}
}

// TestAgainstAddr2line symbolizes every offset of compute and other in an
// executable and a relocatable object and compares the whole inlining
// chain with addr2line -i -f.
func TestAgainstAddr2line(t *testing.T) {
	for _, obj := range []bool{false, true} {
		bin := build(t, obj)
		b, err := Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		inlined, compared := 0, 0
		for _, fn := range []string{"compute", "other"} {
			sym := funcSym(t, bin, fn)
			sec := ""
			if obj {
				f, _ := elf.Open(bin)
				sec = f.Sections[sym.Section].Name
				f.Close()
			}
			for off := uint64(0); off < sym.Size; off++ {
				got, err := b.Frame(fn, off, sym.Size, true)
				if err != nil {
					t.Fatalf("%s+%#x: %v", fn, off, err)
				}
				want := addr2line(t, bin, sec, sym.Value+off)
				if len(want) == 0 || want[0].Line == 0 {
					continue // addr2line has no line either
				}
				compared++
				if !sameChain(got, want) {
					t.Errorf("obj=%v %s+%#x: got %+v, addr2line %+v", obj, fn, off, got, want)
				}
				if len(got) > 1 {
					inlined++
				}
			}
		}
		t.Logf("obj=%v: %d addresses agree with addr2line, %d of them in inlined code", obj, compared, inlined)
		if inlined == 0 {
			t.Errorf("obj=%v: no address resolved to inlined frames; the test program no longer exercises inlining", obj)
		}
	}
}

// TestSymbolizeReport resolves a report's module frames found by name
// under a module directory, return addresses looked up at the call.
func TestSymbolizeReport(t *testing.T) {
	ko := build(t, true)
	sym := funcSym(t, ko, "compute")
	log := fmt.Sprintf("[    1.0] BUG: kernel NULL pointer dereference, address: 0000000000000000\n"+
		"[    1.1] RIP: 0010:compute+0x%x/0x%x [prog]\n[    1.2] Call Trace:\n[    1.3]  other+0x4/0x40 [prog]\n"+
		"[    1.4] ---[ end trace 0000000000000000 ]---\n", sym.Size/2, sym.Size)
	reps := triage.Parse([]byte(log))
	if len(reps) != 1 {
		t.Fatalf("got %d reports", len(reps))
	}
	s, err := New("", filepath.Dir(ko))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := reps[0]
	if err := s.SymbolizeReport(&r); err != nil {
		t.Fatal(err)
	}
	if len(r.Stack) != 2 {
		t.Fatalf("stack %+v", r.Stack)
	}
	for _, f := range r.Stack {
		if filepath.Base(f.File) != "prog.c" || f.Line == 0 {
			t.Errorf("frame %+v not resolved to prog.c", f)
		}
	}
	if !r.Stack[0].Exact || r.Stack[1].Exact {
		t.Errorf("exactness %v %v, want the RIP frame exact only", r.Stack[0].Exact, r.Stack[1].Exact)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := New(""); err == nil {
		t.Error("New with nothing succeeded")
	}
	bad := filepath.Join(t.TempDir(), "vmlinux")
	os.WriteFile(bad, []byte("not an ELF file"), 0o644)
	if _, err := New(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("New(%q) error %v, want one naming the file", bad, err)
	}
}

// TestRealModule symbolizes the crashmod frames of the real console logs
// with the module's debug info, checks the lines a maintainer expects, and
// checks every frame against addr2line.
func TestRealModule(t *testing.T) {
	const ko = "testdata/crashmod.ko"
	s, err := New("", "testdata")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := Open(ko)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	want := map[string][]string{
		"null-deref.log":  {"crashmod_null_deref+0x4/0x9 [crashmod] crashmod.c:54"},
		"double-lock.log": {"crashmod_double_lock+0x14/0x19 [crashmod] crashmod.c:47", "crashmod_double_lock+0x9/0x19 [crashmod] crashmod.c:45"},
	}
	for log, lines := range want {
		data, err := os.ReadFile(filepath.Join("../testdata/kernel", log))
		if err != nil {
			t.Fatal(err)
		}
		r := triage.Parse(data)[0]
		if err := s.SymbolizeReport(&r); err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			fn, loc, _ := strings.Cut(l, " [crashmod] ")
			found := false
			for _, ln := range strings.Split(r.Report, "\n") {
				if strings.Contains(ln, fn+" [crashmod] ") && strings.HasSuffix(ln, "/"+loc) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: no line %q in the symbolized report:\n%s", log, l, r.Report)
			}
		}
		checked := 0
		for _, f := range r.Stack {
			if f.Module != "crashmod" {
				continue
			}
			sym := funcSym(t, ko, f.Func)
			ef, _ := elf.Open(ko)
			sec := ef.Sections[sym.Section].Name
			ef.Close()
			addr := sym.Value + f.Offset
			if !f.Exact {
				addr--
			}
			got, err := b.Frame(f.Func, f.Offset, f.Size, f.Exact)
			if err != nil {
				t.Fatal(err)
			}
			if w := addr2line(t, ko, sec, addr); !sameChain(got, w) {
				t.Errorf("%s %s+%#x: got %+v, addr2line %+v", log, f.Func, f.Offset, got, w)
			}
			checked++
		}
		if checked == 0 {
			t.Errorf("%s: no crashmod frames", log)
		}
	}
}

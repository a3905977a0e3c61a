package build

import (
	"reflect"
	"testing"
)

// TestParseDiagnostic reads compiler and linker lines as gcc 12 and ld
// print them in a kernel build (absolute source paths with make O=).
func TestParseDiagnostic(t *testing.T) {
	const src = "/cache/src/tar-1"
	for line, want := range map[string]Diagnostic{
		"/cache/src/tar-1/kernel/kregress_test.c:11:13: warning: unused variable \u2018x\u2019 [-Wunused-variable]": {File: "kernel/kregress_test.c", Line: 11, Col: 13, Severity: "warning", Message: "unused variable 'x' [-Wunused-variable]"},
		"\x1b[01m\x1b[K/cache/src/tar-1/fs/a.c:3:1:\x1b[m\x1b[K \x1b[01;31m\x1b[Kerror: \x1b[m\x1b[Kexpected ';'":   {File: "fs/a.c", Line: 3, Col: 1, Severity: "error", Message: "expected ';'"},
		"ld: vmlinux.o: in function `f': undefined reference to `g'":                                                {Severity: "error", Message: "ld: vmlinux.o: in function `f': undefined reference to `g'"},
		"ERROR: modpost: \"g\" [m.ko] undefined!":                                                                   {Severity: "error", Message: "ERROR: modpost: \"g\" [m.ko] undefined!"},
	} {
		got, ok := parseDiagnostic(line, src)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("parseDiagnostic(%q) = %+v, %v; want %+v", line, got, ok, want)
		}
	}
	for _, line := range []string{"  CC      fs/stat.o", "In file included from x.h:1,", "make[2]: *** [x] Error 1"} {
		if d, ok := parseDiagnostic(line, src); ok {
			t.Errorf("parseDiagnostic(%q) = %+v, want nothing", line, d)
		}
	}
	if got := targets([]string{"-C", "/src", "O=/o", "-j3", "CC=ccache gcc", "bzImage", "modules"}); !reflect.DeepEqual(got, []string{"bzImage", "modules"}) {
		t.Errorf("targets = %q", got)
	}
}

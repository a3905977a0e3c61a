package job

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kregress/kregress/internal/testkernel"
	"github.com/kregress/kregress/suites"
)

// TestBadInputLeavesNoRunDir (issue 12 item 17): a run that cannot start
// for bad input is an error and leaves no run directory.
func TestBadInputLeavesNoRunDir(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "bzImage")
	os.WriteFile(garbage, []byte(strings.Repeat("not a kernel\n", 100)), 0o644)
	smoke, err := suites.Load("smoke")
	if err != nil {
		t.Fatal(err)
	}
	lustre := *smoke
	lustre.Target = suites.TargetLustre
	for _, c := range []struct {
		name string
		spec Spec
		want string
	}{
		{"missing kernel", Spec{Kernel: "/nonexistent/bzImage", Suite: smoke}, "/nonexistent/bzImage"},
		{"not a bzImage", Spec{Kernel: garbage, Suite: smoke}, "not an x86 bzImage"},
		{"lustre without client modules", Spec{Kernel: testkernel.Debian(t), Suite: &lustre}, "needs the Lustre client modules"},
		{"a .ko that is no module", Spec{Kernel: testkernel.Debian(t), Suite: smoke, ExtraModules: []string{garbage}}, garbage},
		{"a module the kernel lacks", Spec{Kernel: testkernel.Debian(t), Suite: smoke, Modules: []string{"nosuchmod"}}, `"nosuchmod"`},
	} {
		out := t.TempDir()
		c.spec.Out = out
		_, dir, err := Run(t.Context(), c.spec)
		if err == nil || !strings.Contains(err.Error(), c.want) || dir != "" {
			t.Errorf("%s: %q, %v; want an error saying %q", c.name, dir, err, c.want)
		}
		if left, _ := os.ReadDir(out); len(left) != 0 {
			t.Errorf("%s: %d entries left in %s", c.name, len(left), out)
		}
	}
}

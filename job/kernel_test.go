package job

import (
	"reflect"
	"testing"

	"github.com/kregress/kregress/build"
)

// TestUseBuild: a build result becomes the kernel, module tree, modules to
// load and source root of a run, without touching the caller's slices.
func TestUseBuild(t *testing.T) {
	br := &build.Result{BzImage: "/b/bzImage", Vmlinux: "/nonexistent/vmlinux", Source: "/src", Release: "6.1.192+",
		ModulesDir: "/b/staging", External: []build.ExternalResult{{Modules: []string{"extra/crashmod.ko", "extra/lustre.ko.xz"}}}}
	base := Spec{Modules: make([]string, 1, 8)}
	base.Modules[0] = "loop"
	s := base
	closeSym := s.UseBuild(br)
	defer closeSym()
	if s.Kernel != "/b/bzImage" || s.SourceRoot != "/src" || s.ModulesDir != "/b/staging/lib/modules/6.1.192+" {
		t.Errorf("spec %+v", s)
	}
	if want := []string{"loop", "crashmod", "lustre"}; !reflect.DeepEqual(s.Modules, want) {
		t.Errorf("modules %v, want %v", s.Modules, want)
	}
	if base.Modules[:2][1] != "" {
		t.Errorf("UseBuild wrote into the caller's array: %v", base.Modules[:2])
	}
	s2 := Spec{}
	defer s2.UseBuild(&build.Result{BzImage: "/b/bzImage"})()
	if s2.ModulesDir != "" || s2.Symbolizer != nil {
		t.Errorf("a kernel without modules or vmlinux: %+v", s2)
	}
}

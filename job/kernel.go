package job

import (
	"path/filepath"
	"strings"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/results/triage/symbolize"
)

// UseBuild points the spec at a kernel kregress built: its bzImage, its
// module tree (modules_install's staging), its out-of-tree modules (loaded
// at boot), and a symbolizer for its vmlinux and modules, with the build's
// source tree as the root cut from source paths. It is the one place a
// build result becomes a run. The returned function closes the
// symbolizer; call it when the runs are done.
func (s *Spec) UseBuild(br *build.Result) (closeSymbolizer func()) {
	s.Kernel, s.SourceRoot = br.BzImage, br.Source
	s.ModulesDir = ""
	if br.ModulesDir != "" {
		s.ModulesDir = filepath.Join(br.ModulesDir, "lib", "modules", br.Release)
	}
	s.Modules = append([]string(nil), s.Modules...) // never the caller's array
	for _, e := range br.External {
		for _, m := range e.Modules {
			s.Modules = append(s.Modules, moduleName(m))
		}
	}
	s.Symbolizer = nil
	var modDirs []string
	if s.ModulesDir != "" {
		modDirs = append(modDirs, s.ModulesDir)
	}
	if sym, err := symbolize.New(br.Vmlinux, modDirs...); err == nil {
		s.Symbolizer = sym
		return func() { sym.Close() }
	}
	return func() {}
}

// moduleName turns "extra/crashmod.ko" into "crashmod".
func moduleName(path string) string {
	b := filepath.Base(path)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return b
}

package job

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kregress/kregress/images"
	"github.com/kregress/kregress/suites"
)

// check finds, before a run directory is made, what makes the spec
// unworkable: no kernel file, a file that is not a bzImage, modules asked
// of a kernel without a module tree or that its tree does not have, a .ko
// file that is no kernel module, a lustre-target suite without client
// modules. Bad input leaves nothing
// behind (issue 12 item 17).
func (s *Spec) check() error {
	if _, err := os.Stat(s.Kernel); err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	rel, err := images.KernelRelease(s.Kernel)
	if err != nil {
		return err
	}
	if len(s.Modules) > 0 {
		modDir := s.ModulesDir
		if modDir == "" {
			modDir = filepath.Join("/lib/modules", rel)
			if _, err := os.Stat(filepath.Join(modDir, "modules.dep")); err != nil {
				return fmt.Errorf("modules %v requested but kernel %s has no module tree", s.Modules, rel)
			}
		}
		// A module the kernel has neither as a file nor built in.
		if _, err := images.ResolveModules(modDir, s.Modules); err != nil {
			return err
		}
	}
	for _, ko := range append(append([]string(nil), s.ExtraModules...), s.Lustre.Modules...) {
		if _, err := images.ModuleDepends(ko); err != nil {
			return err
		}
	}
	if s.Suite.Target == suites.TargetLustre && len(s.Lustre.Modules) == 0 {
		return errors.New("the lustre target needs the Lustre client modules for this kernel (kregress run --lustre-modules DIR)")
	}
	return nil
}

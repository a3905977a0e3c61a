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
// of a kernel without a module tree, a lustre-target suite without client
// modules. Bad input leaves nothing behind (issue 12 item 17).
func (s *Spec) check() error {
	if _, err := os.Stat(s.Kernel); err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	rel, err := images.KernelRelease(s.Kernel)
	if err != nil {
		return err
	}
	if len(s.Modules) > 0 && s.ModulesDir == "" {
		if _, err := os.Stat(filepath.Join("/lib/modules", rel, "modules.dep")); err != nil {
			return fmt.Errorf("modules %v requested but kernel %s has no module tree", s.Modules, rel)
		}
	}
	if s.Suite.Target == suites.TargetLustre && len(s.Lustre.Modules) == 0 {
		return errors.New("the lustre target needs the Lustre client modules for this kernel (kregress run --lustre-modules DIR)")
	}
	return nil
}

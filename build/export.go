package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kregress/kregress/internal/proc"

	"github.com/kregress/kregress/results"
)

// exportManifest lists, one name a line, what Export wrote into a folder:
// the only entries it may replace there.
const exportManifest = ".kregress-out"

// Export copies a build's outputs into dir (made if missing): bzImage,
// vmlinux, config, System.map and, when the kernel has modules, the
// module tree as modules/. It never replaces what kregress did not write
// there: an entry of that name that a former Export did not create (its
// manifest, dir/.kregress-out, names what it did) is an *InputError and
// nothing is written. It returns a copy of res whose paths point into dir.
func Export(ctx context.Context, res *Result, dir string) (*Result, error) {
	files := [][2]string{{res.BzImage, "bzImage"}, {res.Vmlinux, "vmlinux"}, {res.Config, "config"}, {res.SystemMap, "System.map"}}
	names := []string{"bzImage", "vmlinux", "config", "System.map"}
	if res.ModulesDir != "" {
		names = append(names, "modules")
	}
	owned := map[string]bool{}
	if data, err := os.ReadFile(filepath.Join(dir, exportManifest)); err == nil {
		for _, n := range strings.Fields(string(data)) {
			owned[n] = true
		}
	}
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil && !owned[n] {
			return nil, badInput("build: output folder %s already holds %s, which kregress did not write there: choose another folder or remove it", dir, n)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("build: output folder: %w", err)
	}
	// Say what is ours before writing it, so an interrupted export can be
	// redone.
	for _, n := range names {
		owned[n] = true
	}
	var list []string
	for n := range owned {
		list = append(list, n)
	}
	sort.Strings(list)
	if err := results.WriteAtomic(filepath.Join(dir, exportManifest), []byte(strings.Join(list, "\n")+"\n")); err != nil {
		return nil, fmt.Errorf("build: output folder: %w", err)
	}
	out := *res
	for _, f := range files {
		if err := results.CopyFile(f[0], filepath.Join(dir, f[1])); err != nil {
			return nil, fmt.Errorf("build: output folder: %w", err)
		}
	}
	out.BzImage, out.Vmlinux, out.Config, out.SystemMap = filepath.Join(dir, "bzImage"), filepath.Join(dir, "vmlinux"), filepath.Join(dir, "config"), filepath.Join(dir, "System.map")
	if res.ModulesDir != "" {
		dst := filepath.Join(dir, "modules")
		tmp := dst + ".partial"
		os.RemoveAll(tmp)
		// cp -a: the staging folder holds symlinks (build, source).
		if msg, err := proc.Command(ctx, "cp", "-a", res.ModulesDir, tmp).CombinedOutput(); err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("build: output folder: copying modules: %w: %s", err, msg)
		}
		if err := os.RemoveAll(dst); err != nil { // ours: checked above
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("build: output folder: %w", err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("build: output folder: %w", err)
		}
		out.ModulesDir = dst
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("build: output folder: %w", err)
	}
	return &out, nil
}

package images

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ResolveModules reads modulesDir/modules.dep and returns the module files
// (paths relative to modulesDir) needed for names, dependencies first, each
// once. A name that modules.builtin lists is built into the kernel and needs
// no file. Dashes and underscores in names are equivalent, as for modprobe.
func ResolveModules(modulesDir string, names []string) ([]string, error) {
	order, _, err := resolveModulesWithDeps(modulesDir, names)
	return order, err
}

// resolveModulesWithDeps is ResolveModules that also returns each module's
// direct dependencies, as modules.dep lists them.
func resolveModulesWithDeps(modulesDir string, names []string) ([]string, map[string][]string, error) {
	depPath := filepath.Join(modulesDir, "modules.dep")
	f, err := os.Open(depPath)
	if err != nil {
		return nil, nil, fmt.Errorf("images: resolve modules %v: %w", names, err)
	}
	defer f.Close()
	deps := map[string][]string{} // rel path -> deps (rel paths)
	byName := map[string]string{} // module name -> rel path
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		byName[moduleName(mod)] = mod
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("images: read %s: %w", depPath, err)
	}
	builtin := map[string]bool{}
	if data, err := os.ReadFile(filepath.Join(modulesDir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(data)) {
			builtin[moduleName(l)] = true
		}
	}
	var order []string
	seen := map[string]bool{}
	var visit func(rel string, chain []string) error
	visit = func(rel string, chain []string) error {
		if seen[rel] {
			return nil
		}
		for _, c := range chain {
			if c == rel {
				return fmt.Errorf("images: dependency loop in %s: %s", depPath, strings.Join(append(chain, rel), " -> "))
			}
		}
		for _, d := range deps[rel] {
			if err := visit(d, append(chain, rel)); err != nil {
				return err
			}
		}
		seen[rel] = true
		order = append(order, rel)
		return nil
	}
	for _, n := range names {
		key := strings.ReplaceAll(n, "-", "_")
		rel, ok := byName[key]
		if !ok {
			if builtin[key] {
				continue
			}
			return nil, nil, fmt.Errorf("images: module %q is neither in %s nor built in", n, depPath)
		}
		if err := visit(rel, nil); err != nil {
			return nil, nil, err
		}
	}
	return order, deps, nil
}

// moduleName turns "kernel/drivers/net/virtio_net.ko.xz" into "virtio_net".
func moduleName(path string) string {
	b := filepath.Base(path)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

// KernelRelease reads the release string ("6.1.0-56-amd64") from an x86
// bzImage's setup header, as `file` and the boot loader see it.
func KernelRelease(bzImage string) (string, error) {
	f, err := os.Open(bzImage)
	if err != nil {
		return "", fmt.Errorf("images: kernel release: %w", err)
	}
	defer f.Close()
	hdr := make([]byte, 0x210)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return "", fmt.Errorf("images: kernel release of %s: %w", bzImage, err)
	}
	if string(hdr[0x202:0x206]) != "HdrS" {
		return "", fmt.Errorf("images: %s is not an x86 bzImage (no HdrS setup header)", bzImage)
	}
	off := int64(binary.LittleEndian.Uint16(hdr[0x20e:])) + 0x200
	buf := make([]byte, 256)
	n, _ := f.ReadAt(buf, off)
	buf = buf[:n]
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	rel, _, _ := strings.Cut(string(buf), " ")
	if rel == "" {
		return "", fmt.Errorf("images: %s has an empty kernel version string", bzImage)
	}
	return rel, nil
}

// ModuleDepends reads the "depends=" field of a .ko file's .modinfo
// section: the modules it needs loaded first.
func ModuleDepends(ko string) ([]string, error) {
	f, err := elf.Open(ko)
	if err != nil {
		return nil, fmt.Errorf("images: module %s: %w", ko, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("images: %s has no .modinfo section: not a kernel module", ko)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("images: module %s: %w", ko, err)
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var out []string
			for _, d := range strings.Split(string(v), ",") {
				if d = strings.TrimSpace(d); d != "" {
					out = append(out, strings.ReplaceAll(d, "-", "_"))
				}
			}
			return out, nil
		}
	}
	return nil, nil
}

// orderExtraModules sorts out-of-tree modules so each comes after the
// ones it depends on (keeping the given order otherwise), and returns the
// in-kernel modules they need from the kernel's tree.
func orderExtraModules(kos []string) (ordered []string, kernelDeps []string, err error) {
	byName := map[string]string{}
	deps := map[string][]string{}
	for _, ko := range kos {
		n := moduleName(ko)
		byName[n] = ko
		d, err := ModuleDepends(ko)
		if err != nil {
			return nil, nil, err
		}
		deps[n] = d
	}
	seen := map[string]bool{}
	kseen := map[string]bool{}
	var visit func(n string, chain []string) error
	visit = func(n string, chain []string) error {
		if seen[n] {
			return nil
		}
		for _, c := range chain {
			if c == n {
				return fmt.Errorf("images: module dependency loop: %s", strings.Join(append(chain, n), " -> "))
			}
		}
		for _, d := range deps[n] {
			if _, ours := byName[d]; ours {
				if err := visit(d, append(chain, n)); err != nil {
					return err
				}
			} else if !kseen[d] {
				kseen[d] = true
				kernelDeps = append(kernelDeps, d)
			}
		}
		seen[n] = true
		ordered = append(ordered, byName[n])
		return nil
	}
	for _, ko := range kos {
		if err := visit(moduleName(ko), nil); err != nil {
			return nil, nil, err
		}
	}
	return ordered, kernelDeps, nil
}

package bisect

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ImageSignature hashes what a kernel build puts into memory: the
// allocated sections (SHF_ALLOC, with contents) of vmlinux and of every
// module under modulesDir ("" for none), in a fixed order, leaving out
// debug sections (never allocated) and the build-ID note (which hashes the
// debug info too). Two builds with the same signature run the same code:
// a bisection whose culprit does not change the signature against its
// parent found a change that cannot matter, and says so.
//
// The build must fix the identity strings the kernel embeds
// (KBUILD_BUILD_TIMESTAMP, KBUILD_BUILD_VERSION, user and host), or every
// build differs in its version banner.
func ImageSignature(vmlinux, modulesDir string) (string, error) {
	h := sha256.New()
	if err := hashELF(h, vmlinux, "vmlinux"); err != nil {
		return "", err
	}
	if modulesDir != "" {
		var kos []string
		err := filepath.WalkDir(modulesDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(p, ".ko") {
				kos = append(kos, p)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("image signature: %w", err)
		}
		sort.Strings(kos)
		for _, ko := range kos {
			rel, _ := filepath.Rel(modulesDir, ko)
			if err := hashELF(h, ko, rel); err != nil {
				return "", err
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashELF(h io.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("image signature: %w", err)
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		return fmt.Errorf("image signature: %s: %w", path, err)
	}
	fmt.Fprintf(h, "file %s\n", name)
	for _, s := range ef.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Type == elf.SHT_NOBITS || s.Name == ".note.gnu.build-id" {
			continue
		}
		fmt.Fprintf(h, "section %s %d\n", s.Name, s.Size)
		if _, err := io.Copy(h, s.Open()); err != nil {
			return fmt.Errorf("image signature: %s section %s: %w", path, s.Name, err)
		}
	}
	return nil
}

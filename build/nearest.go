package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/kregress/kregress/kconfig"
)

// A build folder for a config that has none yet is not started empty: it
// starts as a copy of the cached build folder of the same base whose .config
// differs in the fewest symbols, and make brings the copy to the new config.
// kbuild records, per object, the CONFIG symbols its sources use (fixdep,
// include/config/*) and its command line (.cmd files): after the new .config
// is written, syncconfig touches the files of the symbols that changed and
// only the objects that depend on them (and the link) are rebuilt. Objects of
// options the new config removes stay in the folder but are no longer linked:
// the build lists (built-in.a, modules.order) are remade from the Makefiles.

// copySkip are the top-level entries of a build folder that a copy leaves
// out: the module staging (remade by every build), the out-of-tree module
// trees (their objects name the kernel folder by absolute path, so they would
// all be rebuilt anyway), the log and the completion marker.
var copySkip = map[string]bool{"staging": true, "ext": true, "build.log": true, completeMarker: true}

// nearest is a cached build folder a new one can start from.
type nearest struct {
	key      string
	dir      string
	distance int       // symbols whose values differ
	done     time.Time // when its last build completed
}

// configDistance counts the symbols whose values differ between two final
// configs ("not set" and absent are the same).
func configDistance(a, b kconfig.Config) int {
	n := 0
	for k := range a {
		if a.Value(k) != b.Value(k) {
			n++
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok && b.Value(k) != "n" {
			n++
		}
	}
	return n
}

// nearestBuilds lists the complete build folders under root/builds of the
// same base (baseID) other than key, nearest config first (then the last
// built). A folder counts
// only when its name is the key its .config and baseID give, so a folder of
// another base or with an edited .config is never picked, and when it was
// built from the same work tree srcDir (kbuild's "source" link): the same
// commit built from another repository's private clone has other command
// lines (the source path is in them), so everything would be rebuilt.
func nearestBuilds(root, baseID, key, srcDir string, cfg kconfig.Config) []nearest {
	dirs, _ := filepath.Glob(filepath.Join(root, "builds", "*"))
	var out []nearest
	for _, d := range dirs {
		name := filepath.Base(d)
		if name == key || len(name) != len(key) {
			continue
		}
		mk, err := os.Stat(filepath.Join(d, completeMarker))
		if err != nil {
			continue
		}
		if l, err := os.Readlink(filepath.Join(d, "source")); err != nil || filepath.Clean(l) != filepath.Clean(srcDir) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(d, ".config"))
		if err != nil || digest(baseID, digest(string(data)))[:len(key)] != name {
			continue
		}
		c, err := kconfig.ParseConfig(data)
		if err != nil {
			continue
		}
		out = append(out, nearest{key: name, dir: d, distance: configDistance(cfg, c), done: mk.ModTime()})
	}
	// Between equally near folders, the one built last: its objects were
	// built from sources most like the tree's now (the same series step,
	// often), so make has the fewest changed files to redo.
	sort.Slice(out, func(i, j int) bool {
		if out[i].distance != out[j].distance {
			return out[i].distance < out[j].distance
		}
		if !out[i].done.Equal(out[j].done) {
			return out[i].done.After(out[j].done)
		}
		return out[i].key < out[j].key
	})
	return out
}

// startFromNearest fills dir, the new build folder of key (locked by the
// caller, holding no build), with a copy of the nearest cached build folder
// of the same base and work tree. The folder copied is locked meanwhile; one that
// another build holds is passed over, so two builds never wait for each
// other. It returns the folder copied, or nil when there was none to copy
// (dir is then as it was).
func startFromNearest(ctx context.Context, root string, src *source, key, dir string, cfg kconfig.Config, st *status) (*nearest, error) {
	for _, n := range nearestBuilds(root, src.baseID, key, src.dir, cfg) {
		lk, err := tryLock(n.dir + ".lock")
		if err != nil {
			return nil, err
		}
		if lk == nil {
			st.note("build folder " + n.key + " is in use by another build: not starting from it")
			continue
		}
		// Checked again under its lock: a build of it may have started
		// (and removed the marker) since the listing.
		if _, err := os.Stat(filepath.Join(n.dir, completeMarker)); err != nil {
			lk.unlock()
			continue
		}
		st.phase("copy", fmt.Sprintf("starting from build folder %s (%d config symbols differ)", n.key, n.distance))
		err = copyBuildDir(ctx, n.dir, dir)
		lk.unlock()
		if err != nil {
			return nil, err
		}
		return &n, nil
	}
	return nil, nil
}

// copyBuildDir copies the build folder from into to (which must hold no
// build) through to.partial, keeping times, modes and symbolic links, and
// sharing blocks where the file system can (cp --reflink=auto). Hard links
// are not used: make, the compiler and the shell rewrite some outputs in
// place (.cmd files, for one), which would change the source folder too.
func copyBuildDir(ctx context.Context, from, to string) error {
	tmp := to + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("build: clearing %s: %w", tmp, err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("build: creating %s: %w", tmp, err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("build: reading build folder %s: %w", from, err)
	}
	args := []string{"cp", "-a", "--reflink=auto"}
	for _, e := range ents {
		if !copySkip[e.Name()] {
			args = append(args, filepath.Join(from, e.Name()))
		}
	}
	args = append(args, tmp+"/")
	if _, err := run(ctx, "", nil, args...); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("build: copying build folder %s: %w", from, err)
	}
	if err := repath(filepath.Join(tmp, "tools"), from, to); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.RemoveAll(to); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("build: clearing %s: %w", to, err)
	}
	if err := os.Rename(tmp, to); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("build: moving copied build folder into place: %w", err)
	}
	return nil
}

// tryLock takes the flock on path if it is free; nil (and no error) when
// another process holds it.
func tryLock(path string) (*lockFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("build: opening lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("build: locking %s: %w", path, err)
	}
	return &lockFile{f: f}, nil
}

// repath rewrites the absolute path of the folder copied (from) to that of
// the copy (to) in the saved command files (.*.cmd) under dir, keeping their
// times. The kernel's own objects are built with paths relative to the
// build folder, but the host tools built through tools/ (objtool, for one)
// get the absolute output folder in their command lines; without this the
// copy would rebuild objtool, and every object depends on objtool, so
// everything would be rebuilt.
func repath(dir, from, to string) error {
	old := []byte(filepath.Clean(from) + "/")
	repl := []byte(filepath.Clean(to) + "/")
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() || !strings.HasPrefix(d.Name(), ".") || !strings.HasSuffix(d.Name(), ".cmd") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(data, old) {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, bytes.ReplaceAll(data, old, repl), fi.Mode().Perm()); err != nil {
			return err
		}
		return os.Chtimes(p, fi.ModTime(), fi.ModTime())
	})
	if err != nil {
		return fmt.Errorf("build: rewriting paths in the copy of %s: %w", from, err)
	}
	return nil
}

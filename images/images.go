// Package images builds the guest's initramfs: an uncompressed cpio (newc)
// archive holding busybox, the kregress guest agent as /init, the kernel
// modules the guest needs (resolved through modules.dep and loaded by the agent
// in order), suite files and any extra tree the user asks for.
//
// Images are cached by a digest of everything that goes into them, so a second
// run with the same inputs reuses the archive instead of rebuilding it; the
// cache keeps to a size budget, least recently used first (Prune).
//
// The archive is not compressed: the kernel unpacks the initramfs on the
// boot's critical path (the first request_module waits for it), and under
// TCG inflating a gzip'ed 3.4 MB image of the default smoke run costs about
// 0.3 s of every boot, against 0.05 s for copying the 7 MB raw archive
// (runner/NOTES.md). Every kernel with initramfs support takes a raw cpio;
// not every kernel has the decompressors configured.
package images

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/cpio"
)

// ModuleListPath is where in the guest the agent finds the ordered list of
// kernel modules to load at boot, one guest path per line.
const ModuleListPath = "/etc/kregress/modules"

// Spec describes the contents of one initramfs.
type Spec struct {
	// Agent is the host path of the static guest agent binary; it becomes /init.
	Agent string
	// Busybox is the host path of a static busybox; "" means /bin/busybox.
	Busybox string
	// ModulesDir is the kernel's module tree (/lib/modules/<release>) from
	// which Modules are resolved; "" when the kernel needs no modules.
	ModulesDir string
	// Modules names the modules (as modules.dep names them, without .ko)
	// the guest must load, e.g. "virtio_net". Each is packed with its
	// dependencies and loaded after them. Names that are built into the
	// kernel (listed in modules.builtin) are skipped.
	Modules []string
	// ExtraModules are host paths of out-of-tree .ko files, loaded after
	// Modules, each after the modules its .modinfo says it depends on;
	// in-kernel modules they depend on are resolved from ModulesDir.
	ExtraModules []string
	// KernelRelease ("6.1.0-56-amd64") places the modules under
	// /lib/modules/<release>/ with a modules.dep, so that the kernel's own
	// request_module() finds them through /sbin/modprobe (busybox); ""
	// puts them under /lib/modules/ with no modprobe support.
	KernelRelease string
	// ModuleParams gives load-time parameters by module name, e.g.
	// "lnet": "networks=tcp0(eth0) accept_port=988".
	ModuleParams map[string]string
	// Files maps guest paths to host paths of extra files (suites, helpers).
	Files map[string]string
	// ExtraDir is a host directory whose whole tree is copied into the
	// guest's root (kregress run --initrd-extra).
	ExtraDir string
}

// entry is one file or directory destined for the archive.
type entry struct {
	guest string // absolute guest path
	host  string // host source path, "" for generated content
	data  []byte // generated content
	mode  uint64 // permission bits
	dir   bool
	link  string    // symlink target
	char  [2]uint64 // major, minor of a character device node when nonzero
}

// Build writes the initramfs described by spec into cacheDir (created if
// needed) and returns its path. If an archive with the same inputs exists
// it is reused. Build is safe to call from several processes at once: the
// archive is written to a temporary file and renamed into place.
func Build(ctx context.Context, spec Spec, cacheDir string) (string, error) {
	entries, err := plan(spec)
	if err != nil {
		return "", err
	}
	key, err := digest(entries)
	if err != nil {
		return "", err
	}
	out := filepath.Join(cacheDir, "initramfs-"+key[:16]+".cpio")
	if _, err := os.Stat(out); err == nil {
		// The modification time is the last use, for Prune.
		now := time.Now()
		os.Chtimes(out, now, now)
		return out, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("images: create cache dir: %w", err)
	}
	tmp, err := os.CreateTemp(cacheDir, ".initramfs-*")
	if err != nil {
		return "", fmt.Errorf("images: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := write(ctx, tmp, entries); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("images: write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", fmt.Errorf("images: %w", err)
	}
	Prune(cacheDir, CacheBudget, out)
	return out, nil
}

// CacheBudget is the size Build keeps the image cache within (4 GiB: a
// Lustre client's image is 130 MB, a smoke run's 7 MB).
var CacheBudget int64 = 4 << 30

// pruneGrace is how recently an image may have been used and still be
// removed: never one used in the last hour, which another kregress process
// may be about to boot.
const pruneGrace = time.Hour

// Prune removes the least recently used images of cacheDir (Build's
// archives, and the gzip'ed ones of earlier kregress versions) until the
// rest fit in budget bytes, never keep and never one used within the last
// hour. It returns the paths it removed.
func Prune(cacheDir string, budget int64, keep string) []string {
	ents, err := os.ReadDir(cacheDir)
	if err != nil {
		return nil
	}
	type img struct {
		path string
		size int64
		used time.Time
	}
	var imgs []img
	var total int64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "initramfs-") || !(strings.HasSuffix(name, ".cpio") || strings.HasSuffix(name, ".cpio.gz")) {
			continue
		}
		st, err := e.Info()
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		total += st.Size()
		imgs = append(imgs, img{filepath.Join(cacheDir, name), st.Size(), st.ModTime()})
	}
	sort.Slice(imgs, func(a, b int) bool { return imgs[a].used.Before(imgs[b].used) })
	var gone []string
	for _, im := range imgs {
		if total <= budget {
			break
		}
		if im.path == keep || time.Since(im.used) < pruneGrace {
			continue
		}
		if os.Remove(im.path) == nil {
			total -= im.size
			gone = append(gone, im.path)
		}
	}
	return gone
}

// busyboxApplets are the names linked to busybox in /bin; the suites and
// the agent call commands by these names.
var busyboxApplets = []string{
	"sh", "ash", "ls", "cat", "echo", "stat", "mkdir", "rmdir", "rm", "mv", "cp",
	"ln", "touch", "mount", "umount", "uname", "ip", "ifconfig", "route",
	"sleep", "dmesg", "grep", "sed", "awk", "head", "tail", "wc", "find",
	"chmod", "chown", "sync", "test", "[", "true", "false", "printf", "id",
	"ps", "kill", "insmod", "rmmod", "lsmod", "modprobe", "df", "du", "env",
	"readlink", "realpath", "seq", "sort", "uniq", "tr", "cut", "xargs",
	"md5sum", "sha256sum", "dd", "hostname", "mknod", "date", "tee", "basename",
	"dirname", "yes", "timeout", "poweroff", "reboot", "halt", "free", "top",
	"vi", "less", "more", "which", "expr", "nproc", "diff", "cmp", "mktemp",
}

// plan turns spec into the list of archive entries, sorted by guest path.
func plan(spec Spec) ([]entry, error) {
	if spec.Agent == "" {
		return nil, errors.New("images: no guest agent binary given")
	}
	if _, err := os.Stat(spec.Agent); err != nil {
		return nil, fmt.Errorf("images: guest agent: %w", err)
	}
	bb := spec.Busybox
	if bb == "" {
		bb = "/bin/busybox"
	}
	if _, err := os.Stat(bb); err != nil {
		return nil, fmt.Errorf("images: busybox (install Debian's busybox-static): %w", err)
	}
	var es []entry
	for _, d := range []string{"/bin", "/sbin", "/dev", "/proc", "/sys", "/tmp", "/mnt", "/root", "/etc", "/etc/kregress", "/lib", "/lib/modules", "/run", "/var", "/usr", "/usr/bin"} {
		es = append(es, entry{guest: d, dir: true, mode: 0o755})
	}
	es = append(es,
		entry{guest: "/init", host: spec.Agent, mode: 0o755},
		entry{guest: "/bin/busybox", host: bb, mode: 0o755},
		entry{guest: "/dev/console", char: [2]uint64{5, 1}, mode: 0o600},
		entry{guest: "/dev/null", char: [2]uint64{1, 3}, mode: 0o666},
		entry{guest: "/etc/passwd", data: []byte("root:x:0:0:root:/root:/bin/sh\n"), mode: 0o644},
		entry{guest: "/etc/group", data: []byte("root:x:0:\n"), mode: 0o644},
	)
	for _, a := range busyboxApplets {
		es = append(es, entry{guest: "/bin/" + a, link: "busybox"})
	}
	var loadOrder []string
	extras, kernelDeps, err := orderExtraModules(spec.ExtraModules)
	if err != nil {
		return nil, err
	}
	guestDir := "/lib/modules"
	if spec.KernelRelease != "" {
		guestDir = "/lib/modules/" + spec.KernelRelease
	}
	depLines := map[string][]string{} // guest file -> its dependencies' guest files (relative)
	wanted := append(append([]string{}, spec.Modules...), kernelDeps...)
	if len(wanted) > 0 && spec.ModulesDir == "" {
		return nil, fmt.Errorf("images: modules %v requested but no modules directory given", wanted)
	}
	if spec.ModulesDir != "" && len(wanted) > 0 {
		paths, deps, err := resolveModulesWithDeps(spec.ModulesDir, wanted)
		if err != nil {
			return nil, err
		}
		for _, rel := range paths {
			g := guestDir + "/" + filepath.Base(rel)
			es = append(es, entry{guest: g, host: filepath.Join(spec.ModulesDir, rel), mode: 0o644})
			loadOrder = append(loadOrder, g)
			for _, d := range deps[rel] {
				depLines[g] = append(depLines[g], filepath.Base(d))
			}
		}
	}
	byName := map[string]string{}
	for _, g := range loadOrder {
		byName[moduleName(g)] = filepath.Base(g)
	}
	for _, ko := range extras {
		byName[moduleName(ko)] = filepath.Base(ko)
	}
	for _, ko := range extras {
		g := guestDir + "/" + filepath.Base(ko)
		es = append(es, entry{guest: g, host: ko, mode: 0o644})
		loadOrder = append(loadOrder, g)
		ds, _ := ModuleDepends(ko)
		for _, d := range ds {
			if f, ok := byName[d]; ok {
				depLines[g] = append(depLines[g], f)
			}
		}
	}
	if spec.KernelRelease != "" && len(loadOrder) > 0 {
		var dep strings.Builder
		for _, g := range loadOrder {
			fmt.Fprintf(&dep, "%s:", filepath.Base(g))
			for _, d := range depLines[g] {
				fmt.Fprintf(&dep, " %s", d)
			}
			dep.WriteString("\n")
		}
		es = append(es,
			entry{guest: guestDir + "/modules.dep", data: []byte(dep.String()), mode: 0o644},
			entry{guest: "/sbin/modprobe", link: "/bin/busybox"})
	}
	for i, g := range loadOrder {
		if p := spec.ModuleParams[moduleName(g)]; p != "" {
			loadOrder[i] = g + " " + p
		}
	}
	es = append(es, entry{guest: ModuleListPath, data: []byte(strings.Join(loadOrder, "\n") + "\n"), mode: 0o644})
	for g, h := range spec.Files {
		st, err := os.Stat(h)
		if err != nil {
			return nil, fmt.Errorf("images: file for %s: %w", g, err)
		}
		es = append(es, entry{guest: g, host: h, mode: uint64(st.Mode().Perm())})
	}
	if spec.ExtraDir != "" {
		err := filepath.WalkDir(spec.ExtraDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(spec.ExtraDir, p)
			if rel == "." {
				return nil
			}
			g := "/" + filepath.ToSlash(rel)
			info, err := d.Info()
			if err != nil {
				return err
			}
			switch {
			case d.IsDir():
				es = append(es, entry{guest: g, dir: true, mode: uint64(info.Mode().Perm())})
			case info.Mode()&fs.ModeSymlink != 0:
				t, err := os.Readlink(p)
				if err != nil {
					return err
				}
				es = append(es, entry{guest: g, link: t})
			case info.Mode().IsRegular():
				es = append(es, entry{guest: g, host: p, mode: uint64(info.Mode().Perm())})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("images: extra tree %s: %w", spec.ExtraDir, err)
		}
	}
	// Later entries win (an extra tree may replace a default file); parents
	// are created for every file.
	byPath := map[string]entry{}
	for _, e := range es {
		for d := filepath.Dir(e.guest); d != "/" && d != "."; d = filepath.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = entry{guest: d, dir: true, mode: 0o755}
			}
		}
		byPath[e.guest] = e
	}
	out := make([]entry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].guest < out[j].guest })
	return out, nil
}

// digest hashes the entries' paths, modes and contents.
func digest(es []entry) (string, error) {
	h := sha256.New()
	for _, e := range es {
		fmt.Fprintf(h, "%s\x00%o\x00%v\x00%s\x00%v\x00", e.guest, e.mode, e.dir, e.link, e.char)
		switch {
		case e.host != "":
			f, err := os.Open(e.host)
			if err != nil {
				return "", fmt.Errorf("images: %w", err)
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return "", fmt.Errorf("images: read %s: %w", e.host, err)
			}
		default:
			h.Write(e.data)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// write streams the archive: cpio newc, uncompressed.
func write(ctx context.Context, w io.Writer, es []entry) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	rw := cpio.Newc.Writer(bw)
	for i, e := range es {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := strings.TrimPrefix(e.guest, "/")
		var rec cpio.Record
		switch {
		case e.dir:
			rec = cpio.Directory(name, e.mode)
		case e.char != [2]uint64{}:
			rec = cpio.CharDev(name, e.mode, e.char[0], e.char[1])
		case e.link != "":
			rec = cpio.Symlink(name, e.link)
		case e.host != "":
			data, err := os.ReadFile(e.host)
			if err != nil {
				return fmt.Errorf("images: %w", err)
			}
			rec = cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | e.mode, FileSize: uint64(len(data))})
		default:
			rec = cpio.StaticRecord(e.data, cpio.Info{Name: name, Mode: cpio.S_IFREG | e.mode, FileSize: uint64(len(e.data))})
		}
		rec.Info.Ino = uint64(i + 1)
		rec.Info.NLink = 1
		if err := rw.WriteRecord(rec); err != nil {
			return fmt.Errorf("images: write %s: %w", e.guest, err)
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return fmt.Errorf("images: trailer: %w", err)
	}
	return bw.Flush()
}

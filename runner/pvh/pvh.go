// Package pvh prepares an x86 kernel for QEMU's direct PVH boot: it takes
// the compressed vmlinux out of a bzImage, checks that it carries the PVH
// entry point (the Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY, present when the
// kernel was built with CONFIG_PVH), and caches the result by the bzImage's
// content.
//
// Booting the uncompressed ELF skips the firmware's real-mode setup and the
// kernel's own decompressor, which under TCG emulation cost about three
// seconds of a five-second boot of Debian's xz-compressed kernel. The kernel
// code that runs is the same; only the entry path differs (and there is no
// KASLR, which kregress turns off anyway).
package pvh

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kregress/kregress/internal/proc"
)

// Kernel is what Prepare found.
type Kernel struct {
	// Path is the file to hand QEMU's -kernel: the extracted vmlinux when
	// PVH is true, else the bzImage itself.
	Path string
	// PVH says Path is an ELF with a PVH entry point.
	PVH bool
	// Reason says why the kernel cannot be booted through PVH ("" when it can).
	Reason string
}

// keepKernels bounds how many extracted kernels the cache keeps (each is
// tens of megabytes); the least recently used are removed first.
const keepKernels = 12

// xenNotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY, the note QEMU's PVH
// loader looks for.
const xenNotePhys32Entry = 18

// Prepare returns how to boot kernel. A bzImage whose payload is a
// PVH-capable ELF is extracted once into cacheDir (as vmlinux-<digest>);
// later calls with the same bzImage reuse it, and a bzImage that cannot be
// booted that way is remembered too, so the payload is decompressed at most
// once. An ELF kernel is used as it is when it has the PVH note and is an
// error otherwise, since QEMU can boot it no other way. Errors name the file
// and what was wrong with it; a kernel that is merely not PVH-capable is
// not an error (Kernel.Reason says why).
func Prepare(ctx context.Context, kernel, cacheDir string) (Kernel, error) {
	f, err := os.Open(kernel)
	if err != nil {
		return Kernel{}, fmt.Errorf("pvh: %w", err)
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return Kernel{}, fmt.Errorf("pvh: %s: too short to be a kernel: %w", kernel, err)
	}
	if string(magic[:]) == elf.ELFMAG {
		ok, why, err := elfHasPVH(f)
		if err != nil {
			return Kernel{}, fmt.Errorf("pvh: %s: %w", kernel, err)
		}
		if !ok {
			return Kernel{}, fmt.Errorf("pvh: %s is an ELF kernel that QEMU cannot boot: %s; pass its bzImage instead", kernel, why)
		}
		return Kernel{Path: kernel, PVH: true}, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Kernel{}, fmt.Errorf("pvh: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return Kernel{}, fmt.Errorf("pvh: read %s: %w", kernel, err)
	}
	key := hex.EncodeToString(h.Sum(nil))[:20]
	out := filepath.Join(cacheDir, "vmlinux-"+key)
	no := filepath.Join(cacheDir, "vmlinux-"+key+".nopvh")
	now := time.Now()
	if _, err := os.Stat(out); err == nil {
		os.Chtimes(out, now, now) // mark as recently used for pruning
		return Kernel{Path: out, PVH: true}, nil
	}
	if b, err := os.ReadFile(no); err == nil {
		return Kernel{Path: kernel, Reason: strings.TrimSpace(string(b))}, nil
	}

	payload, format, err := bzImagePayload(f)
	if err != nil {
		return Kernel{}, fmt.Errorf("pvh: %s: %w", kernel, err)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Kernel{}, fmt.Errorf("pvh: %w", err)
	}
	vmlinux, err := decompress(ctx, payload, format)
	if errors.Is(err, errUnsupported) {
		reason := err.Error()
		os.WriteFile(no, []byte(reason+"\n"), 0o644)
		return Kernel{Path: kernel, Reason: reason}, nil
	}
	if err != nil {
		return Kernel{}, fmt.Errorf("pvh: %s: decompress the %s payload: %w", kernel, format, err)
	}
	ok, why, err := elfHasPVH(bytes.NewReader(vmlinux))
	if err != nil {
		return Kernel{}, fmt.Errorf("pvh: %s: payload: %w", kernel, err)
	}
	if !ok {
		os.WriteFile(no, []byte(why+"\n"), 0o644)
		return Kernel{Path: kernel, Reason: why}, nil
	}
	tmp, err := os.CreateTemp(cacheDir, ".vmlinux-*")
	if err != nil {
		return Kernel{}, fmt.Errorf("pvh: %w", err)
	}
	_, werr := tmp.Write(vmlinux)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), out)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return Kernel{}, fmt.Errorf("pvh: write %s: %w", out, werr)
	}
	prune(cacheDir, out)
	return Kernel{Path: out, PVH: true}, nil
}

// bzImagePayload reads the compressed kernel out of a bzImage, using the
// setup header's payload_offset and payload_length (boot protocol 2.08,
// kernels since 2.6.30), and names its compression.
func bzImagePayload(f *os.File) ([]byte, string, error) {
	hdr := make([]byte, 0x250)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return nil, "", fmt.Errorf("not an x86 bzImage (setup header unreadable: %v)", err)
	}
	if string(hdr[0x202:0x206]) != "HdrS" {
		return nil, "", errors.New("not an x86 bzImage (no HdrS setup header)")
	}
	if v := binary.LittleEndian.Uint16(hdr[0x206:]); v < 0x208 {
		return nil, "", fmt.Errorf("boot protocol %d.%02d has no payload fields (need 2.08)", v>>8, v&0xff)
	}
	setupSects := int64(hdr[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	off := (setupSects+1)*512 + int64(binary.LittleEndian.Uint32(hdr[0x248:]))
	n := int64(binary.LittleEndian.Uint32(hdr[0x24c:]))
	st, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	if n < 16 || off+n > st.Size() {
		return nil, "", fmt.Errorf("payload at %d+%d lies outside the %d-byte file", off, n, st.Size())
	}
	payload := make([]byte, n)
	if _, err := f.ReadAt(payload, off); err != nil {
		return nil, "", fmt.Errorf("read payload: %w", err)
	}
	return payload, compression(payload), nil
}

// compression names a payload's format by its magic.
func compression(p []byte) string {
	switch {
	case bytes.HasPrefix(p, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(p, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return "xz"
	case bytes.HasPrefix(p, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	case bytes.HasPrefix(p, []byte{0x5d, 0, 0}):
		return "lzma"
	case bytes.HasPrefix(p, []byte("BZh")):
		return "bzip2"
	case bytes.HasPrefix(p, []byte{0x02, 0x21, 0x4c, 0x18}):
		return "lz4"
	case bytes.HasPrefix(p, []byte{0x89, 'L', 'Z', 'O'}):
		return "lzo"
	case bytes.HasPrefix(p, []byte(elf.ELFMAG)):
		return "none"
	}
	return "unknown"
}

var errUnsupported = errors.New("unsupported")

type unsupportedError string

func (e unsupportedError) Error() string { return string(e) }
func (e unsupportedError) Is(target error) bool {
	return target == errUnsupported
}

// maxVmlinux bounds the decompressed size, so a hostile or corrupt
// payload cannot fill memory.
const maxVmlinux = 1 << 30

// tools names the command that decompresses each format the Go library
// does not; these are what the kernel's own scripts/extract-vmlinux uses.
var tools = map[string][]string{
	"xz":   {"xz", "-dc"},
	"lzma": {"xz", "--format=lzma", "-dc"},
	"zstd": {"zstd", "-dc"},
	"lz4":  {"lz4", "-dc"},
	"lzo":  {"lzop", "-dc"},
}

// decompress inflates a payload. All formats but gzip end in four bytes
// giving the uncompressed size (the kernel's size_append), which are cut
// off first and then used to check the result. gzip and bzip2 are
// decompressed in Go; the others by their command-line tool (xz's kernel
// streams use the x86 BCJ filter, which Go xz libraries lack).
func decompress(ctx context.Context, p []byte, format string) ([]byte, error) {
	var want int64 = -1
	if format != "gzip" && format != "none" && len(p) > 4 {
		want = int64(binary.LittleEndian.Uint32(p[len(p)-4:]))
		p = p[:len(p)-4]
	}
	var buf bytes.Buffer
	// Preallocate what the image claims, within reason: a corrupt size
	// must not cost a gigabyte up front.
	if want > 0 && want <= maxVmlinux && want <= 32*int64(len(p)) {
		buf.Grow(int(want))
	}
	switch format {
	case "none":
		return p, nil
	case "gzip", "bzip2":
		var r io.Reader
		if format == "gzip" {
			z, err := gzip.NewReader(bytes.NewReader(p))
			if err != nil {
				return nil, err
			}
			z.Multistream(false)
			r = z
		} else {
			r = bzip2.NewReader(bytes.NewReader(p))
		}
		r = io.LimitReader(&ctxReader{ctx: ctx, r: r}, maxVmlinux+1)
		if _, err := io.Copy(&buf, r); err != nil {
			return nil, err
		}
	default:
		tool, ok := tools[format]
		if !ok {
			return nil, unsupportedError(fmt.Sprintf("the payload is %s-compressed, which kregress does not decompress", format))
		}
		if _, err := exec.LookPath(tool[0]); err != nil {
			return nil, unsupportedError(fmt.Sprintf("the payload is %s-compressed and the %s command is not installed", format, tool[0]))
		}
		cmd := proc.Command(ctx, tool[0], tool[1:]...)
		cmd.Stdin = bytes.NewReader(p)
		cmd.Stdout = &limitWriter{w: &buf, n: maxVmlinux + 1}
		var stderr bytes.Buffer
		cmd.Stderr = &limitWriter{w: &stderr, n: 2048}
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%s: %v: %s", strings.Join(tool, " "), err, strings.TrimSpace(stderr.String()))
		}
	}
	if buf.Len() > maxVmlinux {
		return nil, fmt.Errorf("larger than %d bytes", maxVmlinux)
	}
	if want >= 0 && int64(buf.Len()) != want {
		return nil, fmt.Errorf("got %d bytes, the image says %d", buf.Len(), want)
	}
	return buf.Bytes(), nil
}

// limitWriter keeps at most n bytes and then fails, which stops the
// writing command.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(b []byte) (int, error) {
	if int64(len(b)) > l.n {
		l.w.Write(b[:l.n])
		l.n = 0
		return 0, errors.New("output too large")
	}
	l.n -= int64(len(b))
	return l.w.Write(b)
}

// ctxReader stops a long decompression when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

// elfHasPVH reports whether an ELF image is an x86-64 kernel with the PVH
// entry note; why says what is missing when it is not.
func elfHasPVH(r io.ReaderAt) (ok bool, why string, err error) {
	ef, err := elf.NewFile(r)
	if err != nil {
		return false, "", fmt.Errorf("not a readable ELF file: %w", err)
	}
	defer ef.Close()
	if ef.Machine != elf.EM_X86_64 {
		return false, fmt.Sprintf("an ELF for %v, not x86-64", ef.Machine), nil
	}
	for _, p := range ef.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p.Open(), 1<<20))
		if err != nil {
			return false, "", fmt.Errorf("read note segment: %w", err)
		}
		if hasNote(b, ef.ByteOrder, "Xen", xenNotePhys32Entry) {
			return true, "", nil
		}
	}
	return false, "no PVH entry note (kernel built without CONFIG_PVH)", nil
}

// hasNote walks an ELF note segment looking for one note by owner and type.
func hasNote(b []byte, bo binary.ByteOrder, owner string, typ uint32) bool {
	align4 := func(n uint32) uint64 { return (uint64(n) + 3) &^ 3 }
	for len(b) >= 12 {
		namesz, descsz, t := bo.Uint32(b), bo.Uint32(b[4:]), bo.Uint32(b[8:])
		b = b[12:]
		if align4(namesz)+align4(descsz) > uint64(len(b)) {
			return false
		}
		name := strings.TrimRight(string(b[:namesz]), "\x00")
		if name == owner && t == typ {
			return true
		}
		b = b[align4(namesz)+align4(descsz):]
	}
	return false
}

// prune removes the least recently used extracted kernels beyond
// keepKernels, never the one just written.
func prune(dir, keep string) {
	ents, _ := filepath.Glob(filepath.Join(dir, "vmlinux-*"))
	type kf struct {
		path string
		mod  int64
	}
	var ks []kf
	for _, p := range ents {
		if strings.HasSuffix(p, ".nopvh") || p == keep {
			continue
		}
		if st, err := os.Stat(p); err == nil {
			ks = append(ks, kf{p, st.ModTime().UnixNano()})
		}
	}
	if len(ks) < keepKernels {
		return
	}
	sort.Slice(ks, func(a, b int) bool { return ks[a].mod > ks[b].mod })
	for _, k := range ks[keepKernels-1:] {
		os.Remove(k.path)
	}
}

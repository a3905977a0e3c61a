// Package symbolize turns kernel stack frames ("func+0x1f/0x80 [module]")
// into source file:line with inlined frames, as the kernel's
// scripts/decode_stacktrace.sh does, natively with debug/elf and
// debug/dwarf. Each binary (vmlinux, module .ko) is opened once and its
// lookups are cached.
package symbolize

import (
	"debug/dwarf"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kregress/kregress/results/triage"
)

// Location is one source position for an address; an address inside
// inlined code has several, innermost first.
type Location struct {
	Func   string
	File   string
	Line   int
	Inline bool // Func was inlined into the next location's function
}

// Symbolizer resolves frames against vmlinux and module .ko files.
// It is safe for concurrent use.
type Symbolizer struct {
	vmlinux    string
	moduleDirs []string

	mu      sync.Mutex
	bins    map[string]*Binary
	modules map[string]string // module name ("_" for "-") -> .ko path
}

// New returns a Symbolizer for vmlinux (may be empty) and module .ko files
// found under moduleDirs. Binaries are opened lazily, on first use.
func New(vmlinux string, moduleDirs ...string) (*Symbolizer, error) {
	if vmlinux == "" && len(moduleDirs) == 0 {
		return nil, errors.New("symbolize: no vmlinux and no module directories given")
	}
	s := &Symbolizer{vmlinux: vmlinux, moduleDirs: moduleDirs, bins: map[string]*Binary{}}
	if vmlinux != "" {
		if _, err := s.binary(vmlinux); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close releases the binaries.
func (s *Symbolizer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for _, b := range s.bins {
		if err := b.Close(); err != nil && first == nil {
			first = err
		}
	}
	s.bins = map[string]*Binary{}
	return first
}

func (s *Symbolizer) binary(path string) (*Binary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.bins[path]; ok {
		return b, nil
	}
	b, err := Open(path)
	if err != nil {
		return nil, err
	}
	s.bins[path] = b
	return b, nil
}

func modKey(name string) string { return strings.ReplaceAll(name, "-", "_") }

// modulePath finds the .ko of a module under the module directories.
func (s *Symbolizer) modulePath(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.modules == nil {
		s.modules = map[string]string{}
		for _, dir := range s.moduleDirs {
			filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return nil
				}
				if !d.IsDir() && strings.HasSuffix(p, ".ko") {
					k := modKey(strings.TrimSuffix(d.Name(), ".ko"))
					if _, dup := s.modules[k]; !dup {
						s.modules[k] = p
					}
				}
				return nil
			})
		}
	}
	return s.modules[modKey(name)]
}

// SymbolizeReport fills in file:line and inlined frames of r.Stack, and
// rewrites the report text as scripts/decode_stacktrace.sh does: " file:line"
// after each frame that resolved, preceded by a line per inlined function
// ("func file:line [inline]"). Frames whose binary is unknown are left as
// they are; the error reports the first binary that could not be read.
func (s *Symbolizer) SymbolizeReport(r *triage.Report) error {
	var first error
	for i := range r.Stack {
		if err := s.SymbolizeFrame(&r.Stack[i]); err != nil && first == nil {
			first = err
		}
	}
	var b strings.Builder
	lines := strings.Split(r.Report, "\n")
	for i, ln := range lines {
		if f, ok := triage.ParseFrame(ln); ok {
			if err := s.SymbolizeFrame(&f); err == nil && f.File != "" {
				indent := ln[:len(ln)-len(strings.TrimLeft(ln, " "))]
				for _, in := range f.Inlined {
					fmt.Fprintf(&b, "%s%s %s:%d [inline]\n", indent, in.Func, in.File, in.Line)
				}
				ln = fmt.Sprintf("%s %s:%d", ln, f.File, f.Line)
			}
		}
		b.WriteString(ln)
		if i < len(lines)-1 {
			b.WriteByte('\n')
		}
	}
	r.Report = b.String()
	return first
}

// SymbolizeFrame fills in f.File, f.Line and f.Inlined.
func (s *Symbolizer) SymbolizeFrame(f *triage.Frame) error {
	path := s.vmlinux
	if f.Module != "" {
		path = s.modulePath(f.Module)
	}
	if path == "" {
		return nil
	}
	b, err := s.binary(path)
	if err != nil {
		return err
	}
	locs, err := b.Frame(f.Func, f.Offset, f.Size, f.Exact)
	if err != nil || len(locs) == 0 {
		return nil // not in this binary: leave the frame as printed
	}
	outer := locs[len(locs)-1]
	f.File, f.Line = outer.File, outer.Line
	f.Inlined = nil
	for _, l := range locs[:len(locs)-1] {
		f.Inlined = append(f.Inlined, triage.InlinedFrame{Func: l.Func, File: l.File, Line: l.Line})
	}
	return nil
}

// symbol is a function symbol.
type symbol struct {
	addr, size uint64
	section    int
}

// Binary is one ELF file with DWARF, with its lookups cached.
type Binary struct {
	path  string
	file  *elf.File
	data  *dwarf.Data
	syms  map[string][]symbol
	units []unit // compilation units sorted by low address

	mu    sync.Mutex
	cache map[uint64][]Location
}

type unit struct {
	entry  *dwarf.Entry
	ranges [][2]uint64
}

// Open reads path's symbols and DWARF. For relocatable files (.ko), each
// allocated section is given its own address range so that .text and
// .init.text do not overlap, and the DWARF relocations are applied to it.
func Open(path string) (*Binary, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("symbolize: opening %s: %w", path, err)
	}
	b := &Binary{path: path, file: f, syms: map[string][]symbol{}, cache: map[uint64][]Location{}}
	bases := sectionBases(f)
	syms, err := f.Symbols()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("symbolize: reading symbols of %s: %w", path, err)
	}
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Name == "" {
			continue
		}
		addr := s.Value
		if bases != nil && int(s.Section) < len(bases) {
			addr += bases[s.Section]
		}
		b.syms[s.Name] = append(b.syms[s.Name], symbol{addr: addr, size: s.Size, section: int(s.Section)})
	}
	if bases != nil {
		b.data, err = relocatedDWARF(f, syms, bases)
	} else {
		b.data, err = f.DWARF()
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("symbolize: reading DWARF of %s: %w", path, err)
	}
	if err := b.indexUnits(); err != nil {
		f.Close()
		return nil, fmt.Errorf("symbolize: indexing DWARF of %s: %w", path, err)
	}
	return b, nil
}

// Close closes the file.
func (b *Binary) Close() error { return b.file.Close() }

// sectionBases lays the allocated sections of a relocatable file out one
// after another (16-byte aligned, from 0x10000); nil for other files.
func sectionBases(f *elf.File) []uint64 {
	if f.Type != elf.ET_REL {
		return nil
	}
	bases := make([]uint64, len(f.Sections))
	next := uint64(0x10000)
	for i, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		align := s.Addralign
		if align < 16 {
			align = 16
		}
		next = (next + align - 1) &^ (align - 1)
		bases[i] = next
		next += s.Size
	}
	return bases
}

// relocatedDWARF loads the debug sections of a relocatable x86-64 or
// arm64 file, applying their RELA relocations with the section bases.
func relocatedDWARF(f *elf.File, syms []elf.Symbol, bases []uint64) (*dwarf.Data, error) {
	load := func(name string) ([]byte, error) {
		s := f.Section(name)
		if s == nil {
			return nil, nil
		}
		d, err := s.Data()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		d = append([]byte(nil), d...)
		rel := f.Section(".rela" + name)
		if rel == nil {
			return d, nil
		}
		rd, err := rel.Data()
		if err != nil {
			return nil, fmt.Errorf("reading .rela%s: %w", name, err)
		}
		if err := applyRela(f, d, rd, syms, bases); err != nil {
			return nil, fmt.Errorf("relocating %s: %w", name, err)
		}
		return d, nil
	}
	names := []string{"abbrev", "aranges", "frame", "info", "line", "pubnames", "ranges", "str"}
	secs := make([][]byte, len(names))
	for i, n := range names {
		var err error
		if secs[i], err = load(".debug_" + n); err != nil {
			return nil, err
		}
	}
	d, err := dwarf.New(secs[0], secs[1], secs[2], secs[3], secs[4], secs[5], secs[6], secs[7])
	if err != nil {
		return nil, err
	}
	for _, n := range []string{".debug_addr", ".debug_line_str", ".debug_loclists", ".debug_rnglists", ".debug_str_offsets", ".debug_types"} {
		data, err := load(n)
		if err != nil {
			return nil, err
		}
		if data != nil {
			if err := d.AddSection(n, data); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

func applyRela(f *elf.File, d, rela []byte, syms []elf.Symbol, bases []uint64) error {
	if f.Class != elf.ELFCLASS64 {
		return fmt.Errorf("unsupported ELF class %v", f.Class)
	}
	order := f.ByteOrder
	for i := 0; i+24 <= len(rela); i += 24 {
		off := order.Uint64(rela[i:])
		info := order.Uint64(rela[i+8:])
		addend := int64(order.Uint64(rela[i+16:]))
		symIdx, typ := info>>32, uint32(info)
		if symIdx == 0 || int(symIdx) > len(syms) {
			continue
		}
		s := syms[symIdx-1] // f.Symbols omits the null symbol
		val := s.Value
		if int(s.Section) < len(bases) && s.Section != elf.SHN_UNDEF && s.Section < elf.SHN_LORESERVE {
			val += bases[s.Section]
		}
		v := uint64(int64(val) + addend)
		var size int
		switch {
		case f.Machine == elf.EM_X86_64 && elf.R_X86_64(typ) == elf.R_X86_64_64,
			f.Machine == elf.EM_AARCH64 && elf.R_AARCH64(typ) == elf.R_AARCH64_ABS64:
			size = 8
		case f.Machine == elf.EM_X86_64 && (elf.R_X86_64(typ) == elf.R_X86_64_32 || elf.R_X86_64(typ) == elf.R_X86_64_32S),
			f.Machine == elf.EM_AARCH64 && elf.R_AARCH64(typ) == elf.R_AARCH64_ABS32:
			size = 4
		default:
			continue
		}
		if off+uint64(size) > uint64(len(d)) {
			return fmt.Errorf("relocation at %#x beyond section of %d bytes", off, len(d))
		}
		if size == 8 {
			order.PutUint64(d[off:], v)
		} else {
			order.PutUint32(d[off:], uint32(v))
		}
	}
	return nil
}

func (b *Binary) indexUnits() error {
	r := b.data.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return err
		}
		if e == nil {
			break
		}
		if e.Tag == dwarf.TagCompileUnit || e.Tag == dwarf.TagPartialUnit {
			rs, err := b.data.Ranges(e)
			if err == nil && len(rs) > 0 {
				b.units = append(b.units, unit{entry: e, ranges: rs})
			}
		}
		r.SkipChildren()
	}
	return nil
}

// Frame resolves "fn+off/size": the address is fn's start plus off, minus
// one for return addresses (exact is false) so that it lies in the call.
func (b *Binary) Frame(fn string, off, size uint64, exact bool) ([]Location, error) {
	cands := b.syms[fn]
	if len(cands) == 0 {
		return nil, fmt.Errorf("symbolize: no function %q in %s", fn, b.path)
	}
	s := cands[0]
	for _, c := range cands {
		if size != 0 && c.size == size {
			s = c
			break
		}
	}
	pc := s.addr + off
	if !exact && off > 0 {
		pc--
	}
	return b.PC(pc)
}

// PC resolves an address: innermost inlined function first, the function
// that contains them last.
func (b *Binary) PC(pc uint64) ([]Location, error) {
	b.mu.Lock()
	if l, ok := b.cache[pc]; ok {
		b.mu.Unlock()
		return l, nil
	}
	b.mu.Unlock()
	l, err := b.resolve(pc)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.cache[pc] = l
	b.mu.Unlock()
	return l, nil
}

func (b *Binary) unitFor(pc uint64) *dwarf.Entry {
	for _, u := range b.units {
		for _, r := range u.ranges {
			if pc >= r[0] && pc < r[1] {
				return u.entry
			}
		}
	}
	return nil
}

// scope is a subprogram or inlined subroutine containing the address.
type scope struct {
	name     string
	callFile string
	callLine int
}

func (b *Binary) resolve(pc uint64) ([]Location, error) {
	cu := b.unitFor(pc)
	if cu == nil {
		return nil, fmt.Errorf("symbolize: %#x is in no compilation unit of %s", pc, b.path)
	}
	lr, err := b.data.LineReader(cu)
	if err != nil || lr == nil {
		return nil, fmt.Errorf("symbolize: line table of %s: %v", b.path, err)
	}
	var le dwarf.LineEntry
	if err := lr.SeekPC(pc, &le); err != nil {
		return nil, fmt.Errorf("symbolize: %#x has no line in %s: %w", pc, b.path, err)
	}
	files := lr.Files()
	scopes, err := b.scopes(cu, pc, files)
	if err != nil {
		return nil, err
	}
	file, line := "", le.Line
	if le.File != nil {
		file = le.File.Name
	}
	if len(scopes) == 0 {
		return []Location{{File: file, Line: line}}, nil
	}
	// scopes run outermost (the subprogram) to innermost. The innermost
	// gets the line table's position; each outer one the call site
	// recorded on the scope inside it.
	locs := make([]Location, len(scopes))
	for i := len(scopes) - 1; i >= 0; i-- {
		loc := Location{Func: scopes[i].name, File: file, Line: line, Inline: i > 0}
		locs[len(scopes)-1-i] = loc
		file, line = scopes[i].callFile, scopes[i].callLine
	}
	return locs, nil
}

// scopes walks the unit's DIE tree for the chain of subprogram and inlined
// subroutines containing pc, outermost first.
func (b *Binary) scopes(cu *dwarf.Entry, pc uint64, files []*dwarf.LineFile) ([]scope, error) {
	r := b.data.Reader()
	r.Seek(cu.Offset)
	if _, err := r.Next(); err != nil {
		return nil, err
	}
	var out []scope
	depth := 0 // nesting below the unit of the entries being read
	for {
		e, err := r.Next()
		if err != nil {
			return nil, err
		}
		if e == nil {
			break
		}
		if e.Tag == 0 {
			if depth == 0 {
				break
			}
			depth--
			continue
		}
		contains := false
		if e.Tag == dwarf.TagSubprogram || e.Tag == dwarf.TagInlinedSubroutine || e.Tag == dwarf.TagLexDwarfBlock {
			rs, err := b.data.Ranges(e)
			if err == nil {
				for _, rg := range rs {
					if pc >= rg[0] && pc < rg[1] {
						contains = true
						break
					}
				}
			}
		}
		if !contains {
			if e.Children {
				r.SkipChildren()
			}
			continue
		}
		if e.Tag != dwarf.TagLexDwarfBlock {
			sc := scope{name: b.nameOf(e)}
			if e.Tag == dwarf.TagInlinedSubroutine {
				if fi, ok := e.Val(dwarf.AttrCallFile).(int64); ok && fi >= 0 && int(fi) < len(files) && files[fi] != nil {
					sc.callFile = files[fi].Name
				}
				if ln, ok := e.Val(dwarf.AttrCallLine).(int64); ok {
					sc.callLine = int(ln)
				}
			}
			out = append(out, sc)
		}
		if !e.Children {
			break
		}
		depth++
	}
	return out, nil
}

// nameOf returns a DIE's name, following abstract origins and
// specifications.
func (b *Binary) nameOf(e *dwarf.Entry) string {
	for hops := 0; e != nil && hops < 4; hops++ {
		if n, ok := e.Val(dwarf.AttrName).(string); ok {
			return n
		}
		var ref dwarf.Offset
		if o, ok := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset); ok {
			ref = o
		} else if o, ok := e.Val(dwarf.AttrSpecification).(dwarf.Offset); ok {
			ref = o
		} else {
			return ""
		}
		r := b.data.Reader()
		r.Seek(ref)
		next, err := r.Next()
		if err != nil {
			return ""
		}
		e = next
	}
	return ""
}

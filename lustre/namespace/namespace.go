// Package namespace is the in-memory file tree the simulated Lustre server
// serves: directories, regular files, symlinks and hard links, each with a
// FID that stays the same for the life of the server, and directory entries
// with stable readdir hashes. A tree is built from YAML (Load, Parse) or
// generated (Generate), and can be changed while the server runs (Rename,
// Unlink) as if another client did it.
//
// YAML format (all keys optional; paths are relative to the root, parents
// are created as needed; mode is octal permission bits; times are RFC 3339):
//
//	dirs:
//	  - a                      # a plain path, or a mapping:
//	  - {path: a/b, mode: "0700", uid: 1000, gid: 1000}
//	files:
//	  - {path: a/f, size: 4096, mode: "0644", uid: 0, gid: 0, mtime: 2024-01-02T03:04:05Z}
//	symlinks:
//	  - {path: a/l, target: f}
//	links:                     # hard links
//	  - {path: a/g, target: a/f}
package namespace

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// FID is a Lustre file identifier.
type FID struct {
	Seq uint64
	Oid uint32
	Ver uint32
}

// String formats the FID as Lustre does: [0xseq:0xoid:0xver].
func (f FID) String() string { return fmt.Sprintf("[%#x:%#x:%#x]", f.Seq, f.Oid, f.Ver) }

// Well-known sequences.
const (
	SeqRoot   = 0x200000007
	SeqNormal = 0x200000400
)

// RootFID is the FID of the filesystem root.
var RootFID = FID{Seq: SeqRoot, Oid: 1}

// File types (S_IFMT bits).
const (
	ModeDir     = 0o040000
	ModeRegular = 0o100000
	ModeSymlink = 0o120000
	ModeType    = 0o170000
)

// Node is one inode.
type Node struct {
	FID    FID
	Mode   uint32 // type and permission bits
	UID    uint32
	GID    uint32
	Size   uint64
	Nlink  uint32
	Atime  int64
	Mtime  int64
	Ctime  int64
	Target string // symlink target
	// Parent is the directory holding the node's first name.
	Parent *Node
	// entries of a directory, in ascending hash order.
	entries []*Entry
	byName  map[string]*Entry
	next    uint64 // next readdir hash
}

// Entry is one name in a directory.
type Entry struct {
	Name string
	Hash uint64 // readdir cookie, ascending, stable while the entry exists
	Node *Node
}

// IsDir reports whether the node is a directory.
func (n *Node) IsDir() bool { return n.Mode&ModeType == ModeDir }

// Blocks is the size in 512-byte blocks.
func (n *Node) Blocks() uint64 { return (n.Size + 511) / 512 }

// Tree is a namespace. All methods are safe for concurrent use.
type Tree struct {
	mu     sync.RWMutex
	root   *Node
	byFID  map[FID]*Node
	nextID uint32
	now    int64
}

// New returns a tree holding only the root directory.
func New() *Tree {
	now := time.Now().Unix()
	t := &Tree{byFID: map[FID]*Node{}, now: now}
	t.root = &Node{FID: RootFID, Mode: ModeDir | 0o755, Nlink: 2, Atime: now, Mtime: now, Ctime: now}
	t.initDir(t.root, t.root)
	t.byFID[RootFID] = t.root
	return t
}

// First hashes: "." and ".." take 1 and 2 (readdir starts at hash 0).
const firstHash = 3

func (t *Tree) initDir(d, parent *Node) {
	d.byName = map[string]*Entry{}
	d.Parent = parent
	d.next = firstHash
}

// Root returns the root directory.
func (t *Tree) Root() *Node { return t.root }

// ByFID returns the node with this FID.
func (t *Tree) ByFID(f FID) (*Node, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n, ok := t.byFID[f]
	return n, ok
}

// Lookup returns the node named name in directory dir. It returns
// ENOENT-style false when the name is absent or dir is not a directory.
func (t *Tree) Lookup(dir FID, name string) (*Node, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	d, ok := t.byFID[dir]
	if !ok || !d.IsDir() {
		return nil, false
	}
	switch name {
	case ".":
		return d, true
	case "..":
		return d.Parent, true
	}
	e, ok := d.byName[name]
	if !ok {
		return nil, false
	}
	return e.Node, true
}

// Resolve walks a slash-separated path from the root.
func (t *Tree) Resolve(p string) (*Node, error) {
	n := t.root
	for _, c := range splitPath(p) {
		m, ok := t.Lookup(n.FID, c)
		if !ok {
			return nil, fmt.Errorf("namespace: %q: component %q: %w", p, c, os.ErrNotExist)
		}
		n = m
	}
	return n, nil
}

// Parent returns the directory that holds path p and the last component.
func (t *Tree) Parent(p string) (*Node, string, error) {
	comps := splitPath(p)
	if len(comps) == 0 {
		return nil, "", fmt.Errorf("namespace: %q names the root", p)
	}
	d, err := t.Resolve(strings.Join(comps[:len(comps)-1], "/"))
	if err != nil {
		return nil, "", err
	}
	return d, comps[len(comps)-1], nil
}

// DirEntry is a directory entry as returned by ReadDir.
type DirEntry struct {
	Name string
	Hash uint64
	FID  FID
	Mode uint32
}

// ReadDir returns the entries of dir whose hash is ≥ from, including "."
// (hash 1) and ".." (hash 2), in ascending hash order.
func (t *Tree) ReadDir(dir FID, from uint64) ([]DirEntry, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	d, ok := t.byFID[dir]
	if !ok {
		return nil, fmt.Errorf("namespace: no directory %v: %w", dir, os.ErrNotExist)
	}
	if !d.IsDir() {
		return nil, fmt.Errorf("namespace: %v is not a directory", dir)
	}
	out := make([]DirEntry, 0, len(d.entries)+2)
	if from <= 1 {
		out = append(out, DirEntry{".", 1, d.FID, d.Mode})
	}
	if from <= 2 {
		out = append(out, DirEntry{"..", 2, d.Parent.FID, d.Parent.Mode})
	}
	i := sort.Search(len(d.entries), func(i int) bool { return d.entries[i].Hash >= from })
	for _, e := range d.entries[i:] {
		out = append(out, DirEntry{e.Name, e.Hash, e.Node.FID, e.Node.Mode})
	}
	return out, nil
}

// Snapshot returns a copy of the node's attributes, safe to read while
// the tree changes.
func (t *Tree) Snapshot(n *Node) Node {
	t.mu.RLock()
	defer t.mu.RUnlock()
	c := *n
	c.entries, c.byName = nil, nil
	return c
}

// Count returns the number of inodes.
func (t *Tree) Count() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.byFID)
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

func (t *Tree) newNode(mode uint32) *Node {
	t.nextID++
	n := &Node{FID: FID{Seq: SeqNormal, Oid: t.nextID}, Mode: mode, Nlink: 1,
		Atime: t.now, Mtime: t.now, Ctime: t.now}
	t.byFID[n.FID] = n
	return n
}

func (t *Tree) link(d *Node, name string, n *Node) error {
	if err := validName(name); err != nil {
		return err
	}
	if _, dup := d.byName[name]; dup {
		return fmt.Errorf("namespace: %q already exists in %v: %w", name, d.FID, os.ErrExist)
	}
	e := &Entry{Name: name, Hash: d.next, Node: n}
	d.next++
	d.entries = append(d.entries, e)
	d.byName[name] = e
	if n.IsDir() {
		d.Nlink++
	}
	return nil
}

func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 255 {
		return fmt.Errorf("namespace: invalid name %q", name)
	}
	return nil
}

// mkdirAll returns the directory at p, creating missing ones.
func (t *Tree) mkdirAll(p string) (*Node, error) {
	d := t.root
	for _, c := range splitPath(p) {
		e, ok := d.byName[c]
		if ok {
			if !e.Node.IsDir() {
				return nil, fmt.Errorf("namespace: %q: %q is not a directory", p, c)
			}
			d = e.Node
			continue
		}
		n := t.newNode(ModeDir | 0o755)
		n.Nlink = 2
		t.initDir(n, d)
		if err := t.link(d, c, n); err != nil {
			return nil, err
		}
		d = n
	}
	return d, nil
}

// Attrs are the optional attributes of a YAML entry.
type Attrs struct {
	Path   string    `yaml:"path"`
	Mode   string    `yaml:"mode"`
	UID    uint32    `yaml:"uid"`
	GID    uint32    `yaml:"gid"`
	Size   uint64    `yaml:"size"`
	Atime  time.Time `yaml:"atime"`
	Mtime  time.Time `yaml:"mtime"`
	Ctime  time.Time `yaml:"ctime"`
	Target string    `yaml:"target"`
}

// UnmarshalYAML accepts a plain path string as well as a mapping.
func (a *Attrs) UnmarshalYAML(v *yaml.Node) error {
	if v.Kind == yaml.ScalarNode {
		a.Path = v.Value
		return nil
	}
	type plain Attrs
	return v.Decode((*plain)(a))
}

// Spec is the YAML description of a tree.
type Spec struct {
	Dirs     []Attrs `yaml:"dirs"`
	Files    []Attrs `yaml:"files"`
	Symlinks []Attrs `yaml:"symlinks"`
	Links    []Attrs `yaml:"links"`
}

// Load reads a YAML tree description from a file.
func Load(file string) (*Tree, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("namespace: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("namespace: %s: %w", file, err)
	}
	return t, nil
}

// Parse builds a tree from YAML.
func Parse(data []byte) (*Tree, error) {
	var s Spec
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	return Build(s)
}

// Build makes a tree from a Spec.
func Build(s Spec) (*Tree, error) {
	t := New()
	apply := func(n *Node, a Attrs, defMode uint32) error {
		mode := defMode
		if a.Mode != "" {
			v, err := strconv.ParseUint(a.Mode, 8, 32)
			if err != nil || v > 0o7777 {
				return fmt.Errorf("%q: bad mode %q (want octal permission bits)", a.Path, a.Mode)
			}
			mode = uint32(v)
		}
		n.Mode = n.Mode&ModeType | mode
		n.UID, n.GID, n.Size = a.UID, a.GID, a.Size
		for _, p := range []struct {
			dst *int64
			v   time.Time
		}{{&n.Atime, a.Atime}, {&n.Mtime, a.Mtime}, {&n.Ctime, a.Ctime}} {
			if !p.v.IsZero() {
				*p.dst = p.v.Unix()
			}
		}
		return nil
	}
	for _, a := range s.Dirs {
		if len(splitPath(a.Path)) == 0 {
			if err := apply(t.root, a, 0o755); err != nil {
				return nil, err
			}
			continue
		}
		d, err := t.mkdirAll(a.Path)
		if err != nil {
			return nil, err
		}
		if err := apply(d, a, 0o755); err != nil {
			return nil, err
		}
	}
	mk := func(a Attrs, typ uint32, def uint32) (*Node, error) {
		dir, name := path.Split(path.Clean("/" + a.Path))
		d, err := t.mkdirAll(dir)
		if err != nil {
			return nil, err
		}
		n := t.newNode(typ | def)
		if err := t.link(d, name, n); err != nil {
			return nil, err
		}
		n.Parent = d
		return n, apply(n, a, def)
	}
	for _, a := range s.Files {
		if _, err := mk(a, ModeRegular, 0o644); err != nil {
			return nil, err
		}
	}
	for _, a := range s.Symlinks {
		if a.Target == "" {
			return nil, fmt.Errorf("symlink %q has no target", a.Path)
		}
		n, err := mk(a, ModeSymlink, 0o777)
		if err != nil {
			return nil, err
		}
		n.Target = a.Target
		n.Size = uint64(len(a.Target))
	}
	for _, a := range s.Links {
		src, err := t.Resolve(a.Target)
		if err != nil {
			return nil, fmt.Errorf("hard link %q: %w", a.Path, err)
		}
		if src.IsDir() {
			return nil, fmt.Errorf("hard link %q: target %q is a directory", a.Path, a.Target)
		}
		dir, name := path.Split(path.Clean("/" + a.Path))
		d, err := t.mkdirAll(dir)
		if err != nil {
			return nil, err
		}
		if err := t.link(d, name, src); err != nil {
			return nil, err
		}
		src.Nlink++
	}
	return t, nil
}

// Generate builds a tree from a spec like "dirs=100,files=1000[,depth=2,size=4096]":
// dirs directories spread over depth levels, files regular files spread
// round-robin over the root and all directories, sizes cycling up to size.
func Generate(spec string) (*Tree, error) {
	v := map[string]int{"dirs": 0, "files": 0, "depth": 1, "size": 4096}
	for _, kv := range strings.Split(spec, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, val, ok := strings.Cut(kv, "=")
		if _, known := v[k]; !ok || !known {
			return nil, fmt.Errorf("namespace: generate spec %q: bad item %q (want dirs=N,files=N,depth=N,size=N)", spec, kv)
		}
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 || n > 10_000_000 {
			return nil, fmt.Errorf("namespace: generate spec %q: bad number in %q", spec, kv)
		}
		v[k] = n
	}
	if v["depth"] < 1 {
		v["depth"] = 1
	}
	var s Spec
	var dirs []string
	for i := 0; i < v["dirs"]; i++ {
		p := fmt.Sprintf("d%04d", i)
		if lvl := i % v["depth"]; lvl > 0 && len(dirs) > 0 {
			p = dirs[len(dirs)-1] + "/" + p
		}
		dirs = append(dirs, p)
		s.Dirs = append(s.Dirs, Attrs{Path: p})
	}
	places := append([]string{""}, dirs...)
	for i := 0; i < v["files"]; i++ {
		p := path.Join(places[i%len(places)], fmt.Sprintf("f%06d", i))
		size := uint64(0)
		if v["size"] > 0 {
			size = uint64((i * 1031) % (v["size"] + 1))
		}
		s.Files = append(s.Files, Attrs{Path: p, Size: size, UID: uint32(i % 3), GID: uint32(i % 5)})
	}
	return Build(s)
}

// Unlink removes name from directory dir, as another client would.
func (t *Tree) Unlink(p string) (*Node, error) {
	d, name, err := t.Parent(p)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := d.byName[name]
	if !ok {
		return nil, fmt.Errorf("namespace: unlink %q: %w", p, os.ErrNotExist)
	}
	if e.Node.IsDir() && len(e.Node.entries) > 0 {
		return nil, fmt.Errorf("namespace: unlink %q: directory not empty", p)
	}
	t.unlinkEntry(d, e)
	return d, nil
}

func (t *Tree) unlinkEntry(d *Node, e *Entry) {
	delete(d.byName, e.Name)
	for i, x := range d.entries {
		if x == e {
			d.entries = append(d.entries[:i:i], d.entries[i+1:]...)
			break
		}
	}
	n := e.Node
	if n.IsDir() {
		d.Nlink--
		delete(t.byFID, n.FID)
	} else {
		n.Nlink--
		if n.Nlink == 0 {
			delete(t.byFID, n.FID)
		}
	}
	d.Mtime, d.Ctime = time.Now().Unix(), time.Now().Unix()
}

// Rename moves oldPath to newPath (replacing a non-directory there), as
// another client would. It returns the old and new parent directories.
func (t *Tree) Rename(oldPath, newPath string) (*Node, *Node, error) {
	od, oname, err := t.Parent(oldPath)
	if err != nil {
		return nil, nil, err
	}
	nd, nname, err := t.Parent(newPath)
	if err != nil {
		return nil, nil, err
	}
	if err := validName(nname); err != nil {
		return nil, nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := od.byName[oname]
	if !ok {
		return nil, nil, fmt.Errorf("namespace: rename %q: %w", oldPath, os.ErrNotExist)
	}
	for p := nd; ; p = p.Parent {
		if p == e.Node {
			return nil, nil, fmt.Errorf("namespace: rename %q into its own subtree %q", oldPath, newPath)
		}
		if p == t.root {
			break
		}
	}
	if x, ok := nd.byName[nname]; ok {
		if x.Node.IsDir() {
			return nil, nil, fmt.Errorf("namespace: rename %q: %q is a directory", oldPath, newPath)
		}
		t.unlinkEntry(nd, x)
	}
	n := e.Node
	t.unlinkEntry(od, e)
	t.byFID[n.FID] = n
	if !n.IsDir() {
		n.Nlink++
	}
	if err := t.link(nd, nname, n); err != nil {
		return nil, nil, err
	}
	if n.IsDir() {
		n.Parent = nd
	}
	n.Ctime = time.Now().Unix()
	return od, nd, nil
}

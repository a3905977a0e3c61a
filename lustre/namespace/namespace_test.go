package namespace

import (
	"errors"
	"os"
	"testing"
)

func TestLoad(t *testing.T) {
	tr, err := Load("testdata/tree.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := tr.Resolve("a/f")
	if err != nil {
		t.Fatal(err)
	}
	if f.Mode != ModeRegular|0o640 || f.Size != 4096 || f.UID != 7 || f.GID != 8 || f.Mtime != 1704164645 || f.Nlink != 2 {
		t.Fatalf("a/f = %+v", f)
	}
	g, err := tr.Resolve("a/b/g")
	if err != nil || g != f {
		t.Fatalf("hard link a/b/g = %v, %v", g, err)
	}
	l, _ := tr.Resolve("a/l")
	if l.Mode&ModeType != ModeSymlink || l.Target != "f" || l.Size != 1 {
		t.Fatalf("symlink %+v", l)
	}
	b, _ := tr.Resolve("a/b")
	if b.Mode != ModeDir|0o700 || b.UID != 1000 {
		t.Fatalf("a/b = %+v", b)
	}
	a, _ := tr.Resolve("a")
	ents, err := tr.ReadDir(a.FID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, e := range ents {
		names = append(names, e.Name)
		if i > 0 && e.Hash <= ents[i-1].Hash {
			t.Fatalf("hashes not ascending: %+v", ents)
		}
	}
	if got := len(names); got != 5 || names[0] != "." || names[1] != ".." || names[2] != "b" {
		t.Fatalf("readdir a = %v", names)
	}
	if ents[1].FID != RootFID {
		t.Fatalf(".. of a is %v", ents[1].FID)
	}
	if _, err := tr.Resolve("a/missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing name: %v", err)
	}
	if a.Nlink != 3 || tr.Root().Nlink != 3 {
		t.Fatalf("nlink a=%d root=%d", a.Nlink, tr.Root().Nlink)
	}
}

func TestBadYAML(t *testing.T) {
	for name, y := range map[string]string{
		"unknown key":    "dirz: [a]\n",
		"bad mode":       "files: [{path: f, mode: rw}]\n",
		"dup":            "files: [f, f]\n",
		"link to dir":    "dirs: [d]\nlinks: [{path: x, target: d}]\n",
		"link missing":   "links: [{path: x, target: nope}]\n",
		"symlink target": "symlinks: [{path: s}]\n",
		"file as dir":    "files: [f, f/g]\n",
		"not yaml":       "{{{",
	} {
		if _, err := Parse([]byte(y)); err == nil {
			t.Errorf("%s: Parse succeeded", name)
		}
	}
	if tr, err := Parse(nil); err != nil || tr.Count() != 1 {
		t.Fatalf("empty YAML: %v", err)
	}
}

func TestGenerate(t *testing.T) {
	tr, err := Generate("dirs=100,files=1000")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Count() != 1101 {
		t.Fatalf("count %d", tr.Count())
	}
	tr2, _ := Generate("dirs=100,files=1000")
	n1, _ := tr.Resolve("d0042/f000043")
	n2, _ := tr2.Resolve("d0042/f000043")
	if n1 == nil || n2 == nil || n1.FID != n2.FID {
		t.Fatalf("generated FIDs not deterministic: %v %v", n1, n2)
	}
	for _, bad := range []string{"dirs", "dirs=x", "cats=3", "files=-1"} {
		if _, err := Generate(bad); err == nil {
			t.Errorf("Generate(%q) succeeded", bad)
		}
	}
}

func TestRenameUnlink(t *testing.T) {
	tr, _ := Load("testdata/tree.yaml")
	f, _ := tr.Resolve("a/f")
	fid := f.FID
	if _, _, err := tr.Rename("a/f", "a/b/h"); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Resolve("a/f"); err == nil {
		t.Fatal("a/f still there")
	}
	h, err := tr.Resolve("a/b/h")
	if err != nil || h.FID != fid {
		t.Fatalf("a/b/h = %v, %v", h, err)
	}
	if _, ok := tr.ByFID(fid); !ok {
		t.Fatal("renamed file lost its FID")
	}
	if _, _, err := tr.Rename("a", "a/b/x"); err == nil {
		t.Fatal("renamed a dir into itself")
	}
	if _, err := tr.Unlink("a/b/h"); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Unlink("a/b/g"); err != nil {
		t.Fatal(err)
	}
	if _, ok := tr.ByFID(fid); ok {
		t.Fatal("FID of a fully unlinked file still resolves")
	}
	if _, err := tr.Unlink("a/b/g"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("second unlink: %v", err)
	}
	if _, err := tr.Unlink("a"); err == nil {
		t.Fatal("unlinked a non-empty directory")
	}
}

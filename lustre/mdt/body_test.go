package mdt

import (
	"fmt"
	"testing"

	"github.com/kregress/kregress/lustre/namespace"
)

func TestDirPages(t *testing.T) {
	var ents []namespace.DirEntry
	for i := 0; i < 300; i++ {
		ents = append(ents, namespace.DirEntry{Name: fmt.Sprintf("entry-%d", i), Hash: uint64(i + 1),
			FID: namespace.FID{Seq: namespace.SeqNormal, Oid: uint32(i)}, Mode: namespace.ModeRegular | 0o644})
	}
	// One page holds only part of the directory.
	b := DirPages(ents, 0, 4096, ludaFID|ludaType)
	got, end, err := ParseDirPages(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 4096 || len(got) == 0 || len(got) == len(ents) || end != got[len(got)-1].Hash+1 {
		t.Fatalf("one page: %d bytes, %d entries, end %d", len(b), len(got), end)
	}
	if got[5].Name != "entry-5" || got[5].Mode != namespace.ModeRegular || got[5].FID.Oid != 5 {
		t.Fatalf("entry 5 = %+v", got[5])
	}
	// Continue from end with 16 pages: the rest, and the end marker.
	b2 := DirPages(ents[len(got):], end, 16*4096, ludaFID|ludaType)
	got2, end2, err := ParseDirPages(b2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got)+len(got2) != len(ents) || end2 != dirEndOff || len(b2)%4096 != 0 {
		t.Fatalf("rest: %d+%d entries, end %#x", len(got), len(got2), end2)
	}
	// Empty directory: one page flagged empty.
	b3 := DirPages(nil, 0, 4096, ludaFID)
	got3, end3, err := ParseDirPages(b3)
	if err != nil || len(got3) != 0 || end3 != dirEndOff || le.Uint32(b3[16:]) != ldfEmpty {
		t.Fatalf("empty: %v %v %#x", got3, err, end3)
	}
	if DirEntSize(1) != 40 || DirEntSize(8) != 48 || DirEntSize(6) != 48 {
		t.Fatalf("DirEntSize 1,8,6 = %d,%d,%d", DirEntSize(1), DirEntSize(8), DirEntSize(6))
	}
}

func FuzzParseDirPages(f *testing.F) {
	f.Add(DirPages([]namespace.DirEntry{{Name: "a", Hash: 3}}, 0, 4096, 3))
	f.Fuzz(func(t *testing.T, b []byte) { ParseDirPages(b) })
}

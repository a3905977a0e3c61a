package mdt

import (
	"testing"

	"github.com/kregress/kregress/internal/golden"
	"github.com/kregress/kregress/lustre/namespace"
)

// TestDirPageGolden pins the exact bytes of the first readdir page of the
// tree the real client listed (../namespace/testdata/tree.yaml, directory
// a). Regenerate with go test -run Golden -update and review.
func TestDirPageGolden(t *testing.T) {
	tr, err := namespace.Load("../namespace/testdata/tree.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := tr.Resolve("a")
	ents, err := tr.ReadDir(a.FID, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := DirPages(ents, 0, 4096, ludaFID|ludaType)
	golden.Bytes(t, "testdata/dirpage-a.bin", got)
}

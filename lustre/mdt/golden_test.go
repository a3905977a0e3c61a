package mdt

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/kregress/kregress/lustre/namespace"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

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
	const file = "testdata/dirpage-a.bin"
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("page differs from %s", file)
	}
}

package mgs

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/kregress/kregress/lustre/lnet"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestClientLogGolden pins the exact bytes of the configuration log the
// real client mounted with (fsname testfs, 10.0.2.2@tcp, one OST).
// Regenerate with go test -run Golden -update and review the difference.
func TestClientLogGolden(t *testing.T) {
	nid, _ := lnet.ParseNID("10.0.2.2@tcp")
	got := ClientLog("testfs", nid, 1).data
	const file = "testdata/testfs-client.llog"
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
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("log differs from %s at byte %d (%d vs %d bytes)", file, i, len(got), len(want))
			}
		}
		t.Fatalf("log is %d bytes, %s has %d", len(got), file, len(want))
	}
}

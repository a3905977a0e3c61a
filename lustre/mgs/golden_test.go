package mgs

import (
	"testing"

	"github.com/kregress/kregress/internal/golden"
	"github.com/kregress/kregress/lustre/lnet"
)

// TestClientLogGolden pins the exact bytes of the configuration log the
// real client mounted with (fsname testfs, 10.0.2.2@tcp, one OST).
// Regenerate with go test -run Golden -update and review the difference.
func TestClientLogGolden(t *testing.T) {
	nid, _ := lnet.ParseNID("10.0.2.2@tcp")
	got := ClientLog("testfs", nid, 1).data
	golden.Bytes(t, "testdata/testfs-client.llog", got)
}

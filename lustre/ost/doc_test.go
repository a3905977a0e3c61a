package ost

import (
	"testing"

	"github.com/kregress/kregress/lustre/internal/opdoc"
	"github.com/kregress/kregress/lustre/ptlrpc"
)

// TestDocListsDispatch: the package doc lists every opcode of the
// dispatch map and nothing else.
func TestDocListsDispatch(t *testing.T) {
	opdoc.Check(t, "ost.go", New("testfs", 0, ptlrpc.NewExports(1)).Opcodes())
}

package mdt

import (
	"testing"

	"github.com/kregress/kregress/lustre/internal/opdoc"
	"github.com/kregress/kregress/lustre/ldlm"
	"github.com/kregress/kregress/lustre/namespace"
	"github.com/kregress/kregress/lustre/ptlrpc"
)

// TestDocListsDispatch: the package doc lists every opcode of the
// dispatch map and nothing else.
func TestDocListsDispatch(t *testing.T) {
	opdoc.Check(t, "mdt.go", New("testfs", namespace.New(), ptlrpc.NewExports(1), ldlm.NewTable(1)).Opcodes())
}

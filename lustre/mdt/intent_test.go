package mdt

import (
	"testing"

	"github.com/kregress/kregress/lustre/ldlm"
	"github.com/kregress/kregress/lustre/namespace"
	"github.com/kregress/kregress/lustre/ptlrpc"
)

func testService(t *testing.T) (*Service, *namespace.Tree) {
	t.Helper()
	tr, err := namespace.Load("../namespace/testdata/tree.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return New("testfs", tr, ptlrpc.NewExports(1), ldlm.NewTable(1)), tr
}

// enqueueReq builds an intent LDLM_ENQUEUE as mdc sends it: the lock
// request on the parent, the intent, then body (or rec) and the name at
// nameBuf.
func enqueueReq(parent namespace.FID, mode uint32, bits, it uint64, rec []byte, nameBuf int, name string) *ptlrpc.Request {
	dreq := ldlm.Request{Count: 1, Desc: ldlm.LockDesc{ResType: ldlm.TypeIbits, Resource: ResourceOf(parent), ReqMode: mode},
		Handles: []uint64{0x1234, 0}}
	dreq.Desc.SetBits(bits)
	itb := make([]byte, 8)
	le.PutUint64(itb, it)
	bufs := make([][]byte, nameBuf+1)
	bufs[1], bufs[2], bufs[3] = dreq.Marshal(), itb, rec
	bufs[nameBuf] = append([]byte(name), 0)
	r := &ptlrpc.Request{Msg: ptlrpc.Msg{Bufs: bufs}}
	r.Body.Opc = ptlrpc.LDLMEnqueue
	return r
}

// TestIntentGetattrGrantsLikeMDT: the client asks CR with UPDATE (getattr)
// or LOOKUP (lookup) alone; the reply grants PR with the bits a real MDT
// grants, on the child, flagged LOCK_CHANGED so the client adopts them.
func TestIntentGetattrGrantsLikeMDT(t *testing.T) {
	s, tr := testService(t)
	a, _ := tr.Resolve("a")
	f, _ := tr.Resolve("a/f")
	for _, c := range []struct {
		it, askBits, wantBits uint64
	}{
		{ptlrpc.ITGetattr, ldlm.BitUpdate, ldlm.BitLookup | ldlm.BitUpdate | ldlm.BitPerm},
		{ptlrpc.ITLookup, ldlm.BitLookup, ldlm.BitLookup | ldlm.BitPerm},
	} {
		body := (&Body{FID1: a.FID, Valid: MDFlGetattr}).Marshal()
		rep := s.Handle(enqueueReq(a.FID, ldlm.ModeCR, c.askBits, c.it, body, 5, "f"))
		if rep.Status != 0 {
			t.Fatalf("intent %#x: status %d, want a granted lock", c.it, rep.Status)
		}
		lr, err := ldlm.UnmarshalReply(rep.Bufs[0])
		if err != nil {
			t.Fatal(err)
		}
		if lr.Flags&ldlm.FlagLockChanged == 0 || lr.Desc.Bits() != c.wantBits ||
			lr.Desc.ReqMode != ldlm.ModePR || lr.Desc.GrantedMode != ldlm.ModePR || lr.Desc.Resource != ResourceOf(f.FID) {
			t.Errorf("intent %#x: flags %#x bits %#x mode %d/%d on %v; want LOCK_CHANGED, bits %#x, PR/PR on %v",
				c.it, lr.Flags, lr.Desc.Bits(), lr.Desc.ReqMode, lr.Desc.GrantedMode, FIDOfResource(lr.Desc.Resource),
				c.wantBits, f.FID)
		}
		if lr.PolicyRes1 != ldlm.DispITExecd|ldlm.DispLookupExecd|ldlm.DispLookupPos {
			t.Errorf("intent %#x: disposition %#x", c.it, lr.PolicyRes1)
		}
	}
}

// TestOpenCreateIsReadOnly: creating a missing name gives EROFS, O_EXCL
// on an existing one EEXIST, and O_CREAT of an existing one opens it.
func TestOpenCreateIsReadOnly(t *testing.T) {
	s, tr := testService(t)
	a, _ := tr.Resolve("a")
	rec := func(flags uint32) []byte {
		b := make([]byte, recReintSize)
		le.PutUint32(b[0:], 6) // REINT_OPEN
		PutFID(b[40:], a.FID)
		le.PutUint32(b[120:], flags)
		return b
	}
	const oCreat = 0o100
	for _, c := range []struct {
		name    string
		flags   uint32
		wantErr int32
	}{
		{"new-file", oCreat, ptlrpc.EROFS},
		{"f", oCreat | openExcl, ptlrpc.EEXIST},
		{"f", oCreat, 0},
	} {
		rep := s.Handle(enqueueReq(a.FID, ldlm.ModeCW, ldlm.BitOpen, ptlrpc.ITOpen|ptlrpc.ITCreat, rec(c.flags), 6, c.name))
		lr, err := ldlm.UnmarshalReply(rep.Bufs[0])
		if err != nil {
			t.Fatal(err)
		}
		got := -int32(int64(lr.PolicyRes2))
		if rep.Status != ldlm.LockAborted || got != c.wantErr {
			t.Errorf("create %q flags %#o: status %d errno %d, want %d errno %d", c.name, c.flags, rep.Status, got, ldlm.LockAborted, c.wantErr)
		}
		if c.wantErr == 0 && lr.PolicyRes1&ldlm.DispOpenOpen == 0 {
			t.Errorf("create of existing %q did not open it: disposition %#x", c.name, lr.PolicyRes1)
		}
	}
}

package server

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kregress/kregress/lustre/faults"
	"github.com/kregress/kregress/lustre/internal/opdoc"
	"github.com/kregress/kregress/lustre/ldlm"
	"github.com/kregress/kregress/lustre/mdt"
	"github.com/kregress/kregress/lustre/namespace"
	"github.com/kregress/kregress/lustre/ptlrpc"
)

// requestIn builds the buffers after PTLRPC_BODY of a request in format
// f: a lock request, the intent, the root's mdt_body, an open record on
// the root, the name "a", and the other fields at their empty size.
func requestIn(f *ptlrpc.Format, intent uint64) [][]byte {
	var bufs [][]byte
	for _, fl := range f.Req[1:] {
		var b []byte
		switch fl {
		case ptlrpc.FieldDLMReq:
			req := ldlm.Request{Count: 1, Desc: ldlm.LockDesc{ResType: ldlm.TypeIbits, Resource: mdt.ResourceOf(namespace.RootFID),
				ReqMode: ldlm.ModePR}, Handles: []uint64{0x77, 0}}
			b = req.Marshal()
		case ptlrpc.FieldLDLMIntent:
			b = make([]byte, 8)
			le.PutUint64(b, intent)
		case ptlrpc.FieldMDTBody:
			b = (&mdt.Body{FID1: namespace.RootFID, Valid: mdt.MDFlGetattr}).Marshal()
		case ptlrpc.FieldRecReint:
			b = make([]byte, 136)
			le.PutUint32(b, ptlrpc.ReintOpen)
			mdt.PutFID(b[40:], namespace.RootFID)
		case ptlrpc.FieldName:
			b = []byte("a\x00")
		default:
			b = make([]byte, fl.EmptySize())
		}
		bufs = append(bufs, b)
	}
	return bufs
}

// TestRepliesHaveTheirFormat sends every intent and every other request
// the server implements, first as it is, then with an injected EIO, and
// checks that each reply has exactly the buffers of the request's format
// (an IT_OPEN reply 11, as RQF_LDLM_INTENT_OPEN and a real MDT have), and
// that an injected error on an intent is an aborted lock carrying -EIO.
func TestRepliesHaveTheirFormat(t *testing.T) {
	s, _ := start(t, Config{TreeFile: "testdata/tree.yaml", OSTs: 1, ConnectDelay: -1})
	c := mount(t, s, 5*time.Second)
	handle := map[string]uint64{}
	for _, x := range s.exports.All() {
		handle[x.Target] = x.Cookie
	}
	mdtH, mgsH, ostH := handle[s.mdt.TargetUUID()], handle["MGS"], handle[s.osts[0].TargetUUID()]
	if mdtH == 0 || mgsH == 0 || ostH == 0 {
		t.Fatalf("exports after mount: %v", handle)
	}
	type call struct {
		portal, opc, version uint32
		handle               uint64
		intent               uint64
	}
	var calls []call
	its := ptlrpc.IntentOpcodes()
	slices.Sort(its)
	for _, it := range its {
		calls = append(calls, call{ptlrpc.MDSRequestPortal, ptlrpc.LDLMEnqueue, ldlm.DLMVersion, mdtH, it})
	}
	for _, opc := range []uint32{ptlrpc.MDSGetattr, ptlrpc.MDSGetattrName, ptlrpc.MDSStatfs, ptlrpc.MDSGetRoot,
		ptlrpc.MDSClose, ptlrpc.MDSGetxattr, ptlrpc.MDSSync, ptlrpc.MDSReint, ptlrpc.SEQQuery, ptlrpc.FLDQuery, ptlrpc.OBDPing} {
		calls = append(calls, call{ptlrpc.MDSRequestPortal, opc, 0x00020000, mdtH, 0})
	}
	calls = append(calls, call{ptlrpc.MDSRequestPortal, ptlrpc.LDLMEnqueue, ldlm.DLMVersion, mdtH, 0})
	for _, opc := range []uint32{ptlrpc.LLOGOriginHandleCreate, ptlrpc.LLOGOriginHandleReadHeader,
		ptlrpc.LLOGOriginHandleNextBlock, ptlrpc.LLOGOriginHandlePrevBlock, ptlrpc.MGSConfigRead} {
		calls = append(calls, call{ptlrpc.MGSRequestPortal, opc, 0x00050000, mgsH, 0})
	}
	for _, opc := range []uint32{ptlrpc.OSTStatfs, ptlrpc.OSTGetattr} {
		calls = append(calls, call{ptlrpc.OSTRequestPortal, opc, 0x00030000, ostH, 0})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, injected := range []bool{false, true} {
		for _, k := range calls {
			var f *ptlrpc.Format
			if k.opc == ptlrpc.LDLMEnqueue && k.intent == 0 {
				f = ptlrpc.FmtLDLMEnqueue
			} else {
				it := make([]byte, 8)
				le.PutUint64(it, k.intent)
				f = ptlrpc.FormatOf(k.opc, &ptlrpc.Msg{Bufs: [][]byte{nil, nil, it}})
			}
			if k.opc == ptlrpc.MDSReint {
				f = ptlrpc.FmtMDSReint
			}
			bufs := requestIn(f, k.intent)
			if k.opc == ptlrpc.MDSReint {
				f = ptlrpc.FmtMDSReintOpen // the record says REINT_OPEN
			}
			what := fmt.Sprintf("%s (%s, intent %#x, injected %v)", ptlrpc.OpName(k.opc), f.Name, k.intent, injected)
			s.Faults().Clear()
			if injected {
				if err := s.Faults().Add(faults.Rule{Op: ptlrpc.OpName(k.opc), Error: "EIO"}); err != nil {
					t.Fatal(err)
				}
			}
			r, err := c.Call(ctx, k.portal, k.opc, k.version, k.handle, false, bufs...)
			if r == nil {
				t.Errorf("%s: %v", what, err)
				continue
			}
			if r.Body.Type != ptlrpc.MsgReply || len(r.Msg.Bufs) != len(f.Rep) {
				t.Errorf("%s: reply type %d with %d buffers, want %d (a PTL_RPC_MSG_REPLY of the format)", what, r.Body.Type, len(r.Msg.Bufs), len(f.Rep))
				continue
			}
			for i, fl := range f.Rep {
				if n := fl.EmptySize(); n > 0 && len(r.Msg.Bufs[i]) < n {
					t.Errorf("%s: %s is %d bytes, want at least %d", what, fl, len(r.Msg.Bufs[i]), n)
				}
			}
			if !injected {
				continue
			}
			if f.Has(ptlrpc.FieldLDLMIntent) {
				lr, err := ldlm.UnmarshalReply(r.Msg.Buf(1))
				if err != nil || r.Body.Status != ldlm.LockAborted || int64(lr.PolicyRes2) != -ptlrpc.EIO || lr.PolicyRes1 != ldlm.DispITExecd {
					t.Errorf("%s: status %d disposition %#x res2 %d (%v), want an aborted lock with IT_EXECD and -EIO",
						what, r.Body.Status, lr.PolicyRes1, int64(lr.PolicyRes2), err)
				}
			} else if r.Body.Status != -ptlrpc.EIO {
				t.Errorf("%s: status %d, want -EIO", what, r.Body.Status)
			}
		}
	}
}

// TestDocListsGeneric holds the package doc's table of the opcodes
// answered for every target to the generic dispatch map.
func TestDocListsGeneric(t *testing.T) {
	s, _ := start(t, Config{ControlListen: "off"})
	opdoc.Check(t, "server.go", ptlrpc.SortedOpcodes(s.generic))
}

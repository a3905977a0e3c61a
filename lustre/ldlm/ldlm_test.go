package ldlm

import (
	"testing"

	"github.com/kregress/kregress/lustre/ptlrpc"
)

func TestCodecAndTable(t *testing.T) {
	d := LockDesc{ResType: TypeIbits, Resource: Resource{0x200000400, 3}, ReqMode: ModePR}
	d.SetBits(BitLookup | BitUpdate)
	req := Request{Count: 1, Desc: d, Handles: []uint64{0xabc}}
	b := req.Marshal()
	if len(b) != RequestSize {
		t.Fatalf("request is %d bytes, want %d", len(b), RequestSize)
	}
	got, err := UnmarshalRequest(b)
	if err != nil || got.Desc != d || got.Handles[0] != 0xabc || got.Desc.Bits() != 3 {
		t.Fatalf("request round trip: %+v %v", got, err)
	}
	if _, err := UnmarshalRequest(b[:80]); err == nil {
		t.Fatal("short ldlm_request accepted")
	}
	tab := NewTable(100)
	x := &ptlrpc.Export{Cookie: 1, ClientHandle: 0x77}
	l := tab.Grant(d, 0xabc, x)
	if l.Desc.GrantedMode != ModePR || tab.Len() != 1 {
		t.Fatalf("grant %+v", l)
	}
	rep := Reply{Desc: l.Desc, Handle: l.Cookie, PolicyRes1: DispITExecd}
	r2, err := UnmarshalReply(rep.Marshal())
	if err != nil || r2 != rep {
		t.Fatalf("reply round trip: %+v %v", r2, err)
	}
	m, err := ptlrpc.Unpack(BlockingAST(l))
	if err != nil {
		t.Fatal(err)
	}
	body, err := ptlrpc.UnmarshalBody(m.Bufs[0])
	if err != nil || body.Opc != ptlrpc.LDLMBLCallback || body.Handle != 0x77 || body.Type != ptlrpc.MsgRequest {
		t.Fatalf("AST body %+v %v", body, err)
	}
	ast, err := UnmarshalRequest(m.Buf(1))
	if err != nil || ast.Handles[0] != 0xabc || ast.Desc.Resource != d.Resource {
		t.Fatalf("AST lock %+v %v", ast, err)
	}
	if n := len(tab.OnResource(func(r Resource) bool { return r == d.Resource })); n != 1 {
		t.Fatalf("%d locks on the resource", n)
	}
	if tab.DropExport(x) != 1 || tab.Len() != 0 || tab.Cancel(l.Cookie) {
		t.Fatal("drop/cancel")
	}
}

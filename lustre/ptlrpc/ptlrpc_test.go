package ptlrpc

import (
	"bytes"
	"errors"
	"testing"

	"github.com/kregress/kregress/lustre/internal/realclient"
	"github.com/kregress/kregress/lustre/lnet"
)

func realMGSConnect(t testing.TB) []byte {
	c, err := realclient.Load()
	if errors.Is(err, realclient.ErrNoShared) {
		t.Skip("skipping: ../shared/lustre/PROTOCOL.md (real client bytes) is absent")
	}
	if err != nil {
		t.Fatal(err)
	}
	return c.MGSConnect[lnet.KsockHdrSize+lnet.HeaderSize:]
}

// TestRealMGSConnect decodes the MGS_CONNECT a real client sent and checks
// that packing it again gives the same bytes.
func TestRealMGSConnect(t *testing.T) {
	payload := realMGSConnect(t)
	m, err := Unpack(payload)
	if err != nil {
		t.Fatal(err)
	}
	var lens []int
	for _, b := range m.Bufs {
		lens = append(lens, len(b))
	}
	if want := []int{184, 39, 39, 8, 192, 0}; !equalInts(lens, want) {
		t.Fatalf("buffer lengths %v, want %v", lens, want)
	}
	b, err := UnmarshalBody(m.Bufs[0])
	if err != nil {
		t.Fatal(err)
	}
	if b.Type != MsgRequest || b.Opc != MGSConnect || b.Version != 0x10003 || b.OpFlags != MsgConnectInitial || b.ConnCnt != 3 || b.Timeout != 5 {
		t.Fatalf("body %+v", b)
	}
	if m.String(1) != "MGS" || len(m.String(2)) != 36 {
		t.Fatalf("uuids %q %q", m.String(1), m.String(2))
	}
	ocd, err := UnmarshalConnectData(m.Bufs[4])
	if err != nil {
		t.Fatal(err)
	}
	if ocd.Flags != 0xa000411001002060 || ocd.Version != 0x02113900 {
		t.Fatalf("connect data %+v", ocd)
	}
	if !bytes.Equal(ocd.Marshal(), m.Bufs[4]) {
		t.Fatal("connect data does not round-trip")
	}
	var body [BodySize]byte
	b.Marshal(body[:])
	if !bytes.Equal(body[:], m.Bufs[0]) {
		t.Fatalf("body does not round-trip\n got % x\nwant % x", body, m.Bufs[0])
	}
	m2 := &Msg{SecFlvr: m.SecFlvr, RepSize: m.RepSize, Flags: m.Flags, Opc: m.Opc, Bufs: m.Bufs}
	if out := m2.Pack(); !bytes.Equal(out, payload) {
		t.Fatalf("message does not round-trip\n got % x\nwant % x", out, payload)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestUnpackRejects(t *testing.T) {
	good := (&Msg{Bufs: [][]byte{make([]byte, BodySize), []byte("abc")}}).Pack()
	if _, err := Unpack(good); err != nil {
		t.Fatal(err)
	}
	mut := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	for name, b := range map[string][]byte{
		"short":     good[:20],
		"swapped":   mut(func(b []byte) { le.PutUint32(b[8:], MsgMagicSwapped) }),
		"magic":     mut(func(b []byte) { b[8] = 0 }),
		"zero bufs": mut(func(b []byte) { le.PutUint32(b, 0) }),
		"many bufs": mut(func(b []byte) { le.PutUint32(b, 1000) }),
		"overrun":   mut(func(b []byte) { le.PutUint32(b[36:], 1<<20) }),
		"truncated": good[:len(good)-8],
	} {
		if _, err := Unpack(b); !errors.Is(err, ErrBadMsg) {
			t.Errorf("%s: err = %v, want ErrBadMsg", name, err)
		}
	}
}

func TestReplyPortals(t *testing.T) {
	for req, rep := range map[uint32]uint32{26: 25, 12: 10, 23: 10, 28: 4, 17: 18, 29: 10, 30: 10, 31: 4} {
		if got, ok := ReplyPortal(req); !ok || got != rep {
			t.Errorf("ReplyPortal(%d) = %d, %v; want %d", req, got, ok, rep)
		}
	}
	if _, ok := ReplyPortal(14); ok {
		t.Error("bulk portal 14 has a reply portal")
	}
	if EarlyReplySize != 224 {
		t.Fatalf("EarlyReplySize = %d, want 224", EarlyReplySize)
	}
}

// FuzzUnpack checks that no input makes the decoder panic, and that what
// decodes packs back to something that decodes the same.
func FuzzUnpack(f *testing.F) {
	f.Add((&Msg{Bufs: [][]byte{make([]byte, BodySize), []byte("MGS\x00")}}).Pack())
	if c, err := realclient.Load(); err == nil {
		f.Add(c.MGSConnect[lnet.KsockHdrSize+lnet.HeaderSize:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unpack(b)
		if err != nil {
			return
		}
		UnmarshalBody(m.Bufs[0])
		UnmarshalConnectData(m.Buf(4))
		m2, err := Unpack(m.Pack())
		if err != nil {
			t.Fatalf("repacked message does not decode: %v", err)
		}
		if len(m2.Bufs) != len(m.Bufs) {
			t.Fatalf("repack changed buffer count %d -> %d", len(m.Bufs), len(m2.Bufs))
		}
		for i := range m.Bufs {
			if !bytes.Equal(m.Bufs[i], m2.Bufs[i]) {
				t.Fatalf("repack changed buffer %d", i)
			}
		}
	})
}

package server

import (
	"context"
	"encoding/binary"
	"io"
	"math/rand"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kregress/kregress/lustre/lnet"
	"github.com/kregress/kregress/lustre/mdt"
	"github.com/kregress/kregress/lustre/ptlrpc"
)

var le = binary.LittleEndian

// rawConn is a handshaken LNet connection that sends whatever it is told.
func rawConn(t testing.TB, s *Server) (net.Conn, *lnet.Conn) {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := lnet.ParseNID("127.0.0.1@tcp")
	cli, _ := lnet.ParseNID("192.168.122.99@tcp")
	c, err := lnet.Handshake(context.Background(), nc, lnet.DialConfig{Local: cli, Remote: srv, ConnType: lnet.ConnControl, Incarnation: 1})
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, nc) // drain whatever the server answers
	return nc, c
}

// randomFrame returns one frame: mostly well-framed LNet messages with
// random headers and payloads (some of them mutated real requests), and
// now and then bytes that break the framing.
func randomFrame(rng *rand.Rand, templates [][]byte) (frame []byte, breaksFraming bool) {
	if rng.Intn(20) == 0 {
		n := rng.Intn(200)
		b := make([]byte, n+4)
		rng.Read(b)
		le.PutUint32(b, uint32(0xc2+rng.Intn(1000))) // not NOOP, not LNET
		return b, true
	}
	var payload []byte
	if rng.Intn(2) == 0 {
		payload = append([]byte(nil), templates[rng.Intn(len(templates))]...)
		for i := rng.Intn(8); i >= 0; i-- {
			if len(payload) > 0 {
				payload[rng.Intn(len(payload))] = byte(rng.Intn(256))
			}
		}
		if rng.Intn(4) == 0 {
			payload = payload[:rng.Intn(len(payload)+1)]
		}
	} else {
		payload = make([]byte, rng.Intn(600))
		rng.Read(payload)
	}
	portals := []uint32{0, 12, 13, 14, 16, 17, 23, 26, 28, 29, 30, 31, 99}
	h := lnet.Header{Type: lnet.MsgPUT, SrcPID: lnet.PIDLustre, DestPID: lnet.PIDLustre, WMD: lnet.HandleNone,
		MatchBits: rng.Uint64(), Portal: portals[rng.Intn(len(portals))], PayloadLength: uint32(len(payload))}
	if rng.Intn(10) == 0 {
		h.Type = uint32(rng.Intn(4))
		if h.Type == lnet.MsgGET || h.Type == lnet.MsgACK {
			payload = nil
			h.PayloadLength = 0
		}
	}
	b := make([]byte, lnet.KsockHdrSize+lnet.HeaderSize+len(payload))
	le.PutUint32(b, lnet.KsockLNET)
	h.Marshal(b[lnet.KsockHdrSize:])
	copy(b[lnet.KsockHdrSize+lnet.HeaderSize:], payload)
	return b, false
}

func templates() [][]byte {
	var out [][]byte
	mk := func(opc uint32, bufs ...[]byte) {
		var body [ptlrpc.BodySize]byte
		(&ptlrpc.Body{Type: ptlrpc.MsgRequest, Version: 3, Opc: opc}).Marshal(body[:])
		out = append(out, (&ptlrpc.Msg{Bufs: append([][]byte{body[:]}, bufs...)}).Pack())
	}
	uuid := func(s string) []byte { b := make([]byte, 40); copy(b, s); return b }
	ocd := (&ptlrpc.ConnectData{Flags: 0xffffffffffffffff}).Marshal()
	mk(ptlrpc.MGSConnect, uuid("MGS"), uuid("x"), make([]byte, 8), ocd)
	mk(ptlrpc.MDSConnect, uuid("testfs-MDT0000_UUID"), uuid("x"), make([]byte, 8), ocd)
	mk(ptlrpc.MDSGetattr, (&mdt.Body{}).Marshal(), nil)
	mk(ptlrpc.LDLMEnqueue, make([]byte, 104), make([]byte, 8), (&mdt.Body{}).Marshal(), nil, []byte("f\x00"))
	mk(ptlrpc.MDSReadpage, (&mdt.Body{Nlink: 1 << 30}).Marshal(), nil)
	mk(ptlrpc.LLOGOriginHandleNextBlock, make([]byte, 48))
	mk(ptlrpc.LDLMCancel, make([]byte, 104))
	mk(ptlrpc.OBDPing)
	return out
}

// TestRandomFrames sends 10^5 random frames over many connections while
// a well-behaved client keeps working: bad frames close only their own
// connection, with a logged reason, and nothing panics.
func TestRandomFrames(t *testing.T) {
	s, logs := start(t, Config{Generate: "dirs=10,files=100", OSTs: 1})
	c := mount(t, s, 10*time.Second)
	ctx := context.Background()
	rng := rand.New(rand.NewSource(1))
	tmpl := templates()
	const total = 100_000
	nc, _ := rawConn(t, s)
	broken := 0
	for i := 0; i < total; i++ {
		f, breaks := randomFrame(rng, tmpl)
		if _, err := nc.Write(f); err != nil {
			// The server closed this connection after an earlier bad frame.
			nc.Close()
			nc, _ = rawConn(t, s)
			continue
		}
		if breaks {
			broken++
			nc.Close()
			nc, _ = rawConn(t, s)
		}
		if i%10_000 == 0 {
			if _, err := c.Stat(ctx, "d0003"); err != nil {
				t.Fatalf("after %d random frames the good client fails: %v", i, err)
			}
		}
	}
	nc.Close()
	if _, err := c.ReadDir(ctx, "/"); err != nil {
		t.Fatalf("good client after the random frames: %v", err)
	}
	// Wait for the server to notice the last bad frames.
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().BadFrames == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := s.Stats()
	t.Logf("%d frames, %d framing breaks sent; server: %d bad frames, %d bad RPCs, %d connections", total, broken, st.BadFrames, st.BadRPCs, st.Connections)
	if st.BadFrames == 0 || st.BadRPCs == 0 {
		t.Fatalf("server counted %d bad frames, %d bad RPCs", st.BadFrames, st.BadRPCs)
	}
	if !strings.Contains(logs.String(), "closing connection from") || !strings.Contains(logs.String(), "bad ksock frame") {
		t.Fatalf("no logged reason for closing:\n%.2000s", logs.String())
	}
}

// FuzzRequest feeds arbitrary request messages to the dispatcher with a
// valid export handle, to every service.
func FuzzRequest(f *testing.F) {
	for _, tm := range templates() {
		f.Add(uint8(0), uint8(1), tm)
	}
	s, _ := start(f, Config{Generate: "dirs=3,files=10", OSTs: 1, Log: io.Discard, EvictAfter: -1})
	cookies := []uint64{
		s.exports.Add(&ptlrpc.Export{Target: "MGS"}).Cookie,
		s.exports.Add(&ptlrpc.Export{Target: s.mdt.TargetUUID()}).Cookie,
		s.exports.Add(&ptlrpc.Export{Target: s.osts[0].TargetUUID()}).Cookie,
	}
	srvEnd, cliEnd := net.Pipe()
	go func() {
		srv, _ := lnet.ParseNID("127.0.0.1@tcp")
		lnet.Handshake(context.Background(), cliEnd, lnet.DialConfig{Local: 1, Remote: srv, ConnType: lnet.ConnControl})
		io.Copy(io.Discard, cliEnd)
	}()
	conn, err := lnet.Accept(srvEnd, lnet.AcceptConfig{})
	if err != nil {
		f.Fatal(err)
	}
	portals := []uint32{12, 17, 23, 26, 28, 29, 30}
	f.Fuzz(func(t *testing.T, target, portal uint8, payload []byte) {
		p := append([]byte(nil), payload...)
		if m, err := ptlrpc.Unpack(p); err == nil && len(m.Bufs[0]) >= 8 {
			le.PutUint64(m.Bufs[0], cookies[int(target)%len(cookies)])
		}
		s.handleMessage(conn, &lnet.Message{Header: lnet.Header{Type: lnet.MsgPUT, Portal: portals[int(portal)%len(portals)],
			MatchBits: 1, PayloadLength: uint32(len(p))}, Payload: p})
	})
}

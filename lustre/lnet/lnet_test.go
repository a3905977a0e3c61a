package lnet

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/kregress/kregress/lustre/internal/realclient"
)

func loadReal(t *testing.T) *realclient.Capture {
	t.Helper()
	c, err := realclient.Load()
	if errors.Is(err, realclient.ErrNoShared) {
		t.Skip("skipping: ../shared/lustre/PROTOCOL.md (real client bytes) is absent")
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseNID(t *testing.T) {
	for _, tc := range []struct {
		s string
		n NID
	}{
		{"10.0.2.2@tcp", 0x000200000a000202},
		{"10.0.2.15@tcp", 0x000200000a00020f},
		{"192.168.1.1@tcp3", 0x00020003c0a80101},
		{"0@lo", NIDLo},
	} {
		n, err := ParseNID(tc.s)
		if err != nil || n != tc.n {
			t.Errorf("ParseNID(%q) = %#x, %v; want %#x", tc.s, uint64(n), err, uint64(tc.n))
		}
		if n.String() != tc.s {
			t.Errorf("%#x.String() = %q, want %q", uint64(n), n.String(), tc.s)
		}
	}
	for _, bad := range []string{"", "10.0.2.2", "x@tcp", "1.2.3.4@o2ib", "::1@tcp", "1.2.3.4@tcpx"} {
		if _, err := ParseNID(bad); err == nil {
			t.Errorf("ParseNID(%q) succeeded", bad)
		}
	}
}

// TestAcceptRealClientHello feeds the 72 bytes a real lustre-release client
// sent and checks the HELLO we answer, field by field.
func TestAcceptRealClientHello(t *testing.T) {
	real := loadReal(t)
	srv, cli := net.Pipe()
	defer cli.Close()
	done := make(chan error, 1)
	var conn *Conn
	go func() {
		var err error
		conn, err = Accept(srv, AcceptConfig{Incarnation: 0x1122334455667788})
		done <- err
	}()
	if _, err := cli.Write(real.Hello); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, HelloSize)
	if _, err := io.ReadFull(cli, reply); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString("63697245" + "03000000" + "0202000a00000200" + "0f02000a00000200" +
		"39300000" + "39300000" + "8877665544332211" + "34c4978c7802eb18" + "01000000" + "00000000")
	if !bytes.Equal(reply, want) {
		t.Fatalf("HELLO reply\n got % x\nwant % x", reply, want)
	}
	if conn.Local.String() != "10.0.2.2@tcp" || conn.Remote.String() != "10.0.2.15@tcp" || conn.PeerType != ConnControl {
		t.Fatalf("conn local %v remote %v type %d", conn.Local, conn.Remote, conn.PeerType)
	}
}

func TestAcceptRefusesOtherNID(t *testing.T) {
	real := loadReal(t)
	srv, cli := net.Pipe()
	defer cli.Close()
	go cli.Write(real.Hello)
	me, _ := ParseNID("192.168.0.1@tcp")
	_, err := Accept(srv, AcceptConfig{NID: me})
	if err == nil {
		t.Fatal("Accept took a connection for another NID")
	}
	t.Log(err)
}

// TestRealMGSConnectFrame decodes the real client's first MGS_CONNECT frame.
func TestRealMGSConnectFrame(t *testing.T) {
	real := loadReal(t)
	f := real.MGSConnect
	if le.Uint32(f) != KsockLNET {
		t.Fatalf("ksock type %#x", le.Uint32(f))
	}
	var h Header
	if err := h.Unmarshal(f[KsockHdrSize:]); err != nil {
		t.Fatal(err)
	}
	if h.Type != MsgPUT || h.Portal != 26 || h.PayloadLength != 520 || h.WMD != HandleNone ||
		h.SrcNID.String() != "10.0.2.15@tcp" || h.DestNID.String() != "10.0.2.2@tcp" || h.MatchBits != 0x6b05a89900200 {
		t.Fatalf("header %+v", h)
	}
	var b [HeaderSize]byte
	h.Marshal(b[:])
	if !bytes.Equal(b[:], f[KsockHdrSize:KsockHdrSize+HeaderSize]) {
		t.Fatalf("re-marshalled header differs\n got % x\nwant % x", b, f[KsockHdrSize:KsockHdrSize+HeaderSize])
	}
}

// TestServePingAndPut runs a dialled connection against Serve: the ping is
// answered by lnet itself, a PUT with an ACK request is ACKed and handed on.
func TestServePingAndPut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvNID, _ := ParseNID("10.0.2.2@tcp")
	cliNID, _ := ParseNID("10.0.2.15@tcp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan *Message, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c, err := Accept(nc, AcceptConfig{Incarnation: 7})
		if err != nil {
			t.Error(err)
			nc.Close()
			return
		}
		c.Serve(ctx, func(c *Conn, m *Message) { got <- m })
	}()
	c, err := Dial(ctx, ln.Addr().String(), DialConfig{Local: cliNID, Remote: srvNID, ConnType: ConnControl, Incarnation: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.PeerIncarnation != 7 {
		t.Fatalf("server incarnation %d", c.PeerIncarnation)
	}
	ping := Header{DestNID: srvNID, SrcNID: cliNID, DestPID: PIDLustre, SrcPID: PIDLustre, Type: MsgGET,
		WMD: Handle{5, 6}, MatchBits: PingMatchBits, Portal: ReservedPortal, SinkLength: 272}
	if err := c.Send(&ping, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.SendNOOP(KeepalivePing); err != nil {
		t.Fatal(err)
	}
	m, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != MsgREPLY || m.WMD != (Handle{5, 6}) || len(m.Payload) != 48 || le.Uint32(m.Payload) != PingMagic ||
		NID(le.Uint64(m.Payload[16:])) != NIDLo || NID(le.Uint64(m.Payload[32:])) != srvNID {
		t.Fatalf("ping reply %+v % x", m.Header, m.Payload)
	}
	put := Header{DestNID: srvNID, SrcNID: cliNID, DestPID: PIDLustre, SrcPID: PIDLustre, Type: MsgPUT,
		WMD: Handle{8, 9}, MatchBits: 42, Portal: 26}
	if err := c.Send(&put, 0, []byte("hello, server")); err != nil {
		t.Fatal(err)
	}
	ack, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if ack.Type != MsgACK || ack.WMD != (Handle{8, 9}) || ack.MatchBits != 42 || ack.MLength != 13 {
		t.Fatalf("ack %+v", ack.Header)
	}
	select {
	case m := <-got:
		if string(m.Payload) != "hello, server" || m.Portal != 26 {
			t.Fatalf("handler got %+v %q", m.Header, m.Payload)
		}
	case <-ctx.Done():
		t.Fatal("handler never called")
	}
}

func TestBadFrames(t *testing.T) {
	for name, frame := range map[string]string{
		"unknown ksock type": "c2000000" + "00000000" + "0000000000000000" + "0000000000000000",
		"unknown lnet type":  "c1000000" + "00000000" + "0000000000000000" + "0000000000000000" + hex.EncodeToString(append(make([]byte, 24), append([]byte{9, 0, 0, 0}, make([]byte, 44)...)...)),
		"GET with payload":   "c1000000" + "00000000" + "0000000000000000" + "0000000000000000" + hex.EncodeToString(append(make([]byte, 24), append([]byte{2, 0, 0, 0, 1, 0, 0, 0}, make([]byte, 40)...)...)),
		"huge payload":       "c1000000" + "00000000" + "0000000000000000" + "0000000000000000" + hex.EncodeToString(append(make([]byte, 24), append([]byte{1, 0, 0, 0, 0, 0, 0x20, 0}, make([]byte, 40)...)...)),
	} {
		b, _ := hex.DecodeString(frame)
		srv, cli := net.Pipe()
		c := newConn(srv)
		go func() { cli.Write(b); cli.Close() }()
		_, err := c.ReadMessage()
		if !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: err = %v, want ErrBadFrame", name, err)
		}
		srv.Close()
	}
}

// FuzzReadMessage feeds arbitrary bytes to the frame reader: it must
// return messages or an error, never panic, and never hand back a payload
// longer than the header says.
func FuzzReadMessage(f *testing.F) {
	if c, err := realclient.Load(); err == nil {
		f.Add(c.MGSConnect)
	}
	noop := make([]byte, KsockHdrSize)
	le.PutUint32(noop, KsockNOOP)
	f.Add(noop)
	f.Fuzz(func(t *testing.T, b []byte) {
		srv, cli := net.Pipe()
		defer srv.Close()
		go func() { cli.Write(b); cli.Close() }()
		c := newConn(srv)
		for i := 0; i < 100; i++ {
			m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if !m.Noop && len(m.Payload) != int(m.PayloadLength) {
				t.Fatalf("payload %d bytes, header says %d", len(m.Payload), m.PayloadLength)
			}
		}
	})
}

// FuzzUnmarshalHello checks the handshake decoders on arbitrary input.
func FuzzUnmarshalHello(f *testing.F) {
	if c, err := realclient.Load(); err == nil {
		f.Add(c.Hello)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		UnmarshalConnReq(b)
		if len(b) > ConnReqSize {
			UnmarshalHello(b[ConnReqSize:])
		}
	})
}

// TestAcceptHelloV2 answers a V2 HELLO (the real client's bytes with the
// version changed) with a V2 HELLO.
func TestAcceptHelloV2(t *testing.T) {
	real := loadReal(t)
	hello := bytes.Clone(real.Hello)
	le.PutUint32(hello[ConnReqSize+4:], ProtoV2)
	srv, cli := net.Pipe()
	defer cli.Close()
	go func() { Accept(srv, AcceptConfig{}) }()
	cli.Write(hello)
	reply := make([]byte, HelloSize)
	if _, err := io.ReadFull(cli, reply); err != nil {
		t.Fatal(err)
	}
	if v := le.Uint32(reply[4:]); v != ProtoV2 {
		t.Fatalf("reply version %d, want 2", v)
	}
	// Version 1 (the obsolete magic) and 4 are refused.
	for _, v := range []uint32{1, 4} {
		le.PutUint32(hello[ConnReqSize+4:], v)
		srv, cli := net.Pipe()
		go cli.Write(hello)
		if _, err := Accept(srv, AcceptConfig{}); err == nil {
			t.Errorf("version %d accepted", v)
		}
		cli.Close()
	}
}

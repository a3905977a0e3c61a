package server

import (
	"context"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/kregress/kregress/lustre/lnet"
	"github.com/kregress/kregress/lustre/mdt"
	"github.com/kregress/kregress/lustre/namespace"
	"github.com/kregress/kregress/lustre/ptlrpc"
)

// BenchmarkGetattrRoundTrip measures MDS_GETATTR round trips per second
// over loopback TCP with the Go client, many requests in flight on one
// connection (reported as getattr/s).
func BenchmarkGetattrRoundTrip(b *testing.B) {
	s, _ := start(b, Config{Generate: "dirs=10,files=100", Log: io.Discard})
	c := mount(b, s, 10*time.Second)
	ctx := context.Background()
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Getattr(ctx, c.Root); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "getattr/s")
}

// BenchmarkServerGetattr measures the server side of one MDS_GETATTR:
// decoding, dispatch, the handler, packing and writing the reply (to a
// connection whose other end discards it). allocs/op is the server's
// allocations per RPC.
func BenchmarkServerGetattr(b *testing.B) {
	s, _ := start(b, Config{Generate: "dirs=10,files=100", Log: io.Discard})
	x := s.exports.Add(&ptlrpc.Export{Target: s.mdt.TargetUUID()})
	srvEnd, cliEnd := net.Pipe()
	go func() {
		srv, _ := lnet.ParseNID("127.0.0.1@tcp")
		lnet.Handshake(context.Background(), cliEnd, lnet.DialConfig{Local: 1, Remote: srv, ConnType: lnet.ConnControl})
		io.Copy(io.Discard, cliEnd)
	}()
	conn, err := lnet.Accept(srvEnd, lnet.AcceptConfig{})
	if err != nil {
		b.Fatal(err)
	}
	var body [ptlrpc.BodySize]byte
	(&ptlrpc.Body{Handle: x.Cookie, Type: ptlrpc.MsgRequest, Version: 0x20003, Opc: ptlrpc.MDSGetattr}).Marshal(body[:])
	req := (&ptlrpc.Msg{Flags: ptlrpc.MsgHdrATSupport, Bufs: [][]byte{body[:], (&mdt.Body{FID1: namespace.RootFID, Valid: mdt.MDFlGetattr}).Marshal(), nil}}).Pack()
	m := &lnet.Message{Header: lnet.Header{Type: lnet.MsgPUT, Portal: ptlrpc.MDSReadpagePortal, MatchBits: 7, PayloadLength: uint32(len(req))}}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Payload = req
		s.handleMessage(conn, m)
	}
}

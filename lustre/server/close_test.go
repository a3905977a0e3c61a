package server

import (
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kregress/kregress/lustre/faults"
	"github.com/kregress/kregress/lustre/probe"
)

// TestCancelCleansUp cancels the server's context with a mounted client, a
// half-open handshake and the control API in use: the listeners close,
// every connection is dropped and the server's goroutines end.
func TestCancelCleansUp(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, Config{Listen: "127.0.0.1:0", Generate: "dirs=2,files=5", Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	c, err := probe.Dial(ctx, probe.Config{Server: s.Addr().String(), FSName: "testfs", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Mount(ctx); err != nil {
		t.Fatal(err)
	}
	half, err := net.Dial("tcp", s.Addr().String()) // never sends its HELLO
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	cancel()
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s of cancel")
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Fatal("LNet listener still accepts")
	}
	if _, err := net.DialTimeout("tcp", s.ControlAddr().String(), time.Second); err == nil {
		t.Fatal("control listener still accepts")
	}
	half.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := half.Read(make([]byte, 1)); err == nil {
		t.Fatal("half-open connection still open")
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// gateWriter blocks every Write until open is closed, and says when the
// first Write arrived.
type gateWriter struct {
	arrived chan struct{}
	once    sync.Once
	open    chan struct{}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.arrived) })
	<-g.open
	return len(p), nil
}

// TestCloseWaitsForDelayedReplies: a reply held back by a delay fault is
// served on a goroutine of its own; Close must wait for it. The RPC log
// writer holds the delayed reply in the middle of serving it: Close may
// not return until it is released, and no goroutine of the server is
// left once Close has returned.
func TestCloseWaitsForDelayedReplies(t *testing.T) {
	gate := &gateWriter{arrived: make(chan struct{}), open: make(chan struct{})}
	s, err := Start(context.Background(), Config{Listen: "127.0.0.1:0", Generate: "dirs=1,files=1", Log: io.Discard,
		LogRPCs: gate, ConnectDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := probe.Dial(context.Background(), probe.Config{Server: s.Addr().String(), FSName: "testfs", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := s.Faults().Add(faults.Rule{Op: "MGS_CONNECT", Delay: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	go c.Mount(context.Background()) // its MGS_CONNECT is delayed, then held by the log writer
	select {
	case <-gate.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the delayed MGS_CONNECT was never served")
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a delayed reply was still being served")
	case <-time.After(300 * time.Millisecond):
	}
	close(gate.open)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after the delayed reply was released")
	}
	buf := make([]byte, 1<<20)
	if st := string(buf[:runtime.Stack(buf, true)]); strings.Contains(st, "lustre/server.(*Server)") {
		t.Fatalf("server goroutines left after Close:\n%s", st)
	}
}

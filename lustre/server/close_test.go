package server

import (
	"context"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

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

package server

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/kregress/kregress/lustre/ldlm"
	"github.com/kregress/kregress/lustre/lnet"
	"github.com/kregress/kregress/lustre/probe"
	"github.com/kregress/kregress/lustre/ptlrpc"
)

// closedWithin reports whether the server closes nc within d.
func closedWithin(nc net.Conn, d time.Duration) bool {
	nc.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 256)
	for {
		if _, err := nc.Read(buf); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

// handshaken opens a connection and completes the LNet handshake; the
// caller owns the socket (nothing drains it).
func handshaken(t *testing.T, s *Server) net.Conn {
	t.Helper()
	nc, _ := handshakenAs(t, s, "192.168.122.98@tcp", 1)
	return nc
}

// handshakenAs is handshaken as the peer with this NID and incarnation.
func handshakenAs(t *testing.T, s *Server, nid string, incarnation uint64) (net.Conn, *lnet.Conn) {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	srv, _ := lnet.ParseNID("127.0.0.1@tcp")
	cli, _ := lnet.ParseNID(nid)
	c, err := lnet.Handshake(context.Background(), nc, lnet.DialConfig{Local: cli, Remote: srv, ConnType: lnet.ConnControl, Incarnation: incarnation})
	if err != nil {
		t.Fatal(err)
	}
	return nc, c
}

// TestQuietConnectionOfATalkingPeer: a socklnd peer has several
// connections and may say nothing for long on some of them; while it
// talks on one, its quiet ones stay open past the idle timeout, and when
// it has been silent everywhere for the idle timeout they are closed.
func TestQuietConnectionOfATalkingPeer(t *testing.T) {
	s, logs := start(t, Config{Generate: "dirs=1,files=1", IdleTimeout: 500 * time.Millisecond, ConnectDelay: -1})
	_, talker := handshakenAs(t, s, "192.168.122.97@tcp", 7)
	quiet, _ := handshakenAs(t, s, "192.168.122.97@tcp", 7)
	stranger, _ := handshakenAs(t, s, "192.168.122.96@tcp", 7)
	for start := time.Now(); time.Since(start) < 1500*time.Millisecond; time.Sleep(100 * time.Millisecond) {
		if err := talker.SendNOOP(lnet.KeepalivePing); err != nil {
			t.Fatalf("the talking connection: %v", err)
		}
	}
	if !closedWithin(stranger, 10*time.Millisecond) {
		t.Error("a silent connection of another peer outlived the idle timeout (500ms) by 1s")
	}
	if closedWithin(quiet, 10*time.Millisecond) {
		t.Fatalf("the quiet connection of a peer talking on another one was closed\n%s", logs)
	}
	if !closedWithin(quiet, 3*time.Second) {
		t.Error("the quiet connection is still open 3s after its peer fell silent (idle timeout 500ms)")
	}
}

// TestStalledConnectionsClosed: a connection that stops half way through
// a ksock header is closed after the frame timeout, one that says nothing
// after the idle timeout, while a client that keeps talking stays; past
// the connection cap a new connection is closed at once.
func TestStalledConnectionsClosed(t *testing.T) {
	s, logs := start(t, Config{Generate: "dirs=1,files=1", FrameTimeout: 300 * time.Millisecond,
		IdleTimeout: 800 * time.Millisecond, MaxConns: 4, ConnectDelay: -1})
	c := mount(t, s, 5*time.Second)
	half := handshaken(t, s)
	if _, err := half.Write(make([]byte, lnet.KsockHdrSize/2)); err != nil {
		t.Fatal(err)
	}
	silent := handshaken(t, s)
	start := time.Now()
	if !closedWithin(half, 3*time.Second) {
		t.Fatal("a connection stalled mid-header is still open after 3s (frame timeout 300ms)")
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("the stalled connection was closed after %v, before its 300ms frame timeout", d)
	}
	// The good client keeps talking for longer than the idle timeout.
	for time.Since(start) < 1500*time.Millisecond {
		if err := c.Ping(context.Background()); err != nil {
			t.Fatalf("a client pinging every 100ms lost its connection: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !closedWithin(silent, 3*time.Second) {
		t.Fatal("a connection silent since its handshake is still open (idle timeout 800ms)")
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("the good client: %v", err)
	}
	st := s.Stats()
	if st.BadFrames != 1 || st.IdleClosed != 1 || st.Open != 1 {
		t.Errorf("stats: %d bad frames, %d idle closed, %d open; want 1, 1, 1 (the good client)\n%s", st.BadFrames, st.IdleClosed, st.Open, logs)
	}

	// The cap: the good client and three handshakes fill it, the fifth
	// connection is closed at once.
	for i := 0; i < 3; i++ {
		handshaken(t, s)
	}
	extra, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if !closedWithin(extra, 2*time.Second) {
		t.Fatal("a fifth connection with a cap of 4 was not closed")
	}
	if st := s.Stats(); st.Refused != 1 || st.Open != 4 {
		t.Errorf("stats after the cap: %d refused, %d open; want 1 and 4", st.Refused, st.Open)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("the good client after the cap: %v", err)
	}
}

// TestUnmountCancelsInBatches: at unmount the probe cancels its locks
// CancelBatch handles per LDLM_CANCEL, as a real client does, and the
// server holds none afterwards.
func TestUnmountCancelsInBatches(t *testing.T) {
	s, _ := start(t, Config{TreeFile: "testdata/tree.yaml", ConnectDelay: -1})
	c := mount(t, s, 5*time.Second)
	ctx := context.Background()
	a, err := c.Stat(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2*probe.CancelBatch; i++ {
		if _, err := c.Lookup(ctx, a.FID1, "f"); err != nil {
			t.Fatal(err)
		}
	}
	held := s.Stats().Locks
	if held < 2*probe.CancelBatch {
		t.Fatalf("%d locks held after %d lookups", held, 2*probe.CancelBatch)
	}
	if err := c.Unmount(ctx); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	want := uint64((held + probe.CancelBatch - 1) / probe.CancelBatch)
	if st.RPCs["LDLM_CANCEL"] != want || st.Locks != 0 {
		t.Errorf("unmount with %d locks: %d LDLM_CANCELs, %d locks left; want %d cancels of at most %d handles and none left",
			held, st.RPCs["LDLM_CANCEL"], st.Locks, want, probe.CancelBatch)
	}
}

// TestEvictionWaitsForEveryConnection: an export whose last connection
// closed stays while its peer has another connection open, and goes
// (with its locks) once every connection of the peer has been gone for
// EvictAfter.
func TestEvictionWaitsForEveryConnection(t *testing.T) {
	s, logs := start(t, Config{Generate: "dirs=1,files=1", EvictAfter: 300 * time.Millisecond, ConnectDelay: -1})
	a, _ := handshakenAs(t, s, "192.168.122.95@tcp", 9)
	b, _ := handshakenAs(t, s, "192.168.122.95@tcp", 9)
	var sa *lnet.Conn
	for deadline := time.Now().Add(5 * time.Second); sa == nil; time.Sleep(10 * time.Millisecond) {
		s.connMu.Lock()
		for _, c := range s.conns {
			if c != nil && c.RemoteAddr().String() == a.LocalAddr().String() {
				sa = c
			}
		}
		s.connMu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("the server never registered the connection")
		}
	}
	x := s.exports.Add(&ptlrpc.Export{Target: s.mdt.TargetUUID(), ClientUUID: "peer-95", ClientNID: sa.Remote})
	x.SetConn(sa)
	s.locks.Grant(ldlm.LockDesc{ResType: ldlm.TypeIbits, ReqMode: ldlm.ModePR}, 1, x)
	a.Close()
	time.Sleep(1500 * time.Millisecond) // five times EvictAfter
	if !sa.Closed() {
		t.Fatal("the server did not notice the closed connection")
	}
	if s.exports.Get(x.Cookie) == nil || s.locks.Len() != 1 {
		t.Fatalf("the export of a peer that still has a connection open was evicted\n%s", logs)
	}
	b.Close()
	for deadline := time.Now().Add(5 * time.Second); s.exports.Get(x.Cookie) != nil || s.locks.Len() != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the export and its lock are still there 5s after the peer's last connection closed (EvictAfter 300ms)\n%s", logs)
		}
	}
}

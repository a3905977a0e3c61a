// Package server wires the simulated Lustre server together: an LNet/TCP
// listener, one MGS, one MDT (MDT0000) serving a namespace, and optional
// OSTs, with per-RPC logging, fault injection and a loopback HTTP control
// API for the test suites.
//
// Start it with Start(ctx, Config); it is listening when Start returns.
// A real client under QEMU user networking dials 10.0.2.2:PORT (set the
// guest's lnet module parameter accept_port=PORT) and mounts
// 10.0.2.2@tcp:/FSNAME; the server presents whatever NID the client dialled
// unless Config.NID says otherwise.
//
// # Opcodes implemented
//
// Requests are routed by opcode for connects (target UUID in the request)
// and by the export's target otherwise; unknown export handles get
// -ENOTCONN, unknown opcodes PTL_RPC_MSG_ERR -EOPNOTSUPP. Each target's
// opcodes are listed in its package (mgs, mdt, ost); these are answered
// here for every target:
//
//	OBD_PING (400)          0
//	MGS_DISCONNECT (251)    drops the export and its locks
//	MDS_DISCONNECT (39)     drops the export and its locks
//	OST_DISCONNECT (9)      drops the export and its locks
//	LDLM_CANCEL (103)       cancels the listed locks (portal 17, reply to 18)
//
// Every request is read, and every reply (an injected error's included)
// built, through its format (ptlrpc.FormatOf). The server sends
// LDLM_BL_CALLBACK (104) to portal 15 for revoke, rename and unlink.
//
// # Dead clients and stalled connections
//
// A client's exports remember the connection it last used. When that
// connection has been closed for Config.EvictAfter (150s, a real server's
// ping-evictor timeout), the exports and every lock they hold are
// dropped, and once many locks have gone the memory is handed back to the
// system. A connection whose peer says nothing (on any of its
// connections) for Config.IdleTimeout, or that stops in the middle of a
// message for Config.FrameTimeout, is closed; at most Config.MaxConns
// are open at once.
//
// LNet itself (package lnet) answers pings (GET, portal 0), ACKs PUTs that
// ask for one, ZC-ACKs and ignores NOOP keepalives.
//
// # Control API
//
// HTTP on ControlAddr (loopback only); every call answers JSON:
//
//	GET  /stats                      RPC counts per opcode, connections (open, refused, closed idle), bad frames, locks, exports, evictions
//	GET  /exports                    connected clients per target
//	POST /revoke?path=P              blocking ASTs for every lock on P and its parent directory
//	POST /rename?from=P&to=Q         rename behind the client's back, then revoke the locks involved
//	POST /unlink?path=P              unlink behind the client's back, then revoke
//	POST /evict[?nid=N]              evict one client (or all) from every target
//	GET  /faults                     active fault rules
//	POST /faults                     add rules (YAML or JSON list, see package faults)
//	DELETE /faults                   remove every rule
//
// # RPC log
//
// With Config.LogRPCs set, one line per RPC:
//
//	rpc MDS_GETATTR xid=0x6b05a89900300 from=10.0.2.15@tcp portal=23 status=0 us=18 [fault: op=MDS_GETATTR error=ESTALE]
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kregress/kregress/lustre/faults"
	"github.com/kregress/kregress/lustre/ldlm"
	"github.com/kregress/kregress/lustre/lnet"
	"github.com/kregress/kregress/lustre/mdt"
	"github.com/kregress/kregress/lustre/mgs"
	"github.com/kregress/kregress/lustre/namespace"
	"github.com/kregress/kregress/lustre/ost"
	"github.com/kregress/kregress/lustre/ptlrpc"
)

// Config configures a server.
type Config struct {
	// Listen is the TCP address for LNet; default "127.0.0.1:988".
	// Use "127.0.0.1:0" for a free port.
	Listen string
	// FSName is the filesystem name (at most 8 characters); default "testfs".
	FSName string
	// NID, if set, is the only NID the server answers to (e.g.
	// "10.0.2.2@tcp"); by default it presents the NID each client dialled.
	NID string
	// Tree is the namespace to serve; if nil, TreeFile or Generate builds
	// one, else the tree holds only the root.
	Tree     *namespace.Tree
	TreeFile string
	Generate string
	// OSTs is the number of OSTs listed in the client configuration log.
	OSTs int
	// Faults are the initial fault rules; FaultsFile adds more from YAML.
	Faults     []faults.Rule
	FaultsFile string
	// LogRPCs, if set, gets one line per RPC.
	LogRPCs io.Writer
	// Log gets connection-level events (handshake failures, bad frames);
	// default os.Stderr.
	Log io.Writer
	// ControlListen is the control API address; default "127.0.0.1:0".
	// "off" disables it.
	ControlListen string
	// ConnectDelay holds back every *_CONNECT reply this long; default
	// 20ms, negative for none. A lustre-release client (2.17.57) races
	// with a server that answers MDS_CONNECT within microseconds: the mdc
	// import turns FULL and notifies lmv before lmv_connect_mdc has
	// recorded the export, and the client logs "lmv_notify() activation
	// of <fsname>-MDT0000_UUID failed: -22". Real servers are never that
	// fast.
	ConnectDelay time.Duration
	// EvictAfter is how long the exports (and so the locks) of a client
	// whose connection is gone are kept for it to reconnect before they
	// are dropped, as a real server's ping evictor does with a client it
	// no longer hears from; default 150s (PING_EVICT_TIMEOUT with the
	// default obd_timeout), negative for never.
	EvictAfter time.Duration
	// IdleTimeout closes a connection on which nothing came for this
	// long, unless its peer (same NID, pid and incarnation) sent
	// something on another connection meanwhile, as a real client does
	// on its control connection while its bulk ones rest; default 10
	// minutes (a real client pings every 25s), negative for none.
	IdleTimeout time.Duration
	// FrameTimeout closes a connection when a message, once begun, is not
	// complete within this time, or a write to it blocks as long;
	// default 50s (socklnd's sock_timeout), negative for none.
	FrameTimeout time.Duration
	// MaxConns caps open connections (handshakes included); more are
	// closed at once. Default 1024.
	MaxConns int
}

// Defaults of the Config fields that have one.
const (
	DefaultEvictAfter   = 150 * time.Second
	DefaultIdleTimeout  = 10 * time.Minute
	DefaultFrameTimeout = 50 * time.Second
	DefaultMaxConns     = 1024
)

// Server is a running simulated Lustre server.
type Server struct {
	cfg         Config
	nid         lnet.NID
	incarnation uint64
	ln          net.Listener
	ctl         net.Listener
	httpSrv     *http.Server
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup

	tree    *namespace.Tree
	exports *ptlrpc.Exports
	locks   *ldlm.Table
	mgs     *mgs.Service
	mdt     *mdt.Service
	osts    []*ost.Service
	targets map[string]func(*ptlrpc.Request) *ptlrpc.Reply
	generic map[uint32]func(*ptlrpc.Request) *ptlrpc.Reply
	faults  faults.Set

	logMu  sync.Mutex
	connMu sync.Mutex
	conns  map[net.Conn]*lnet.Conn // nil until the handshake is done

	astXID     atomic.Uint64
	rpcs       [1200]atomic.Uint64 // per opcode
	rpcOther   atomic.Uint64
	badFrames  atomic.Uint64
	badRPCs    atomic.Uint64
	accepted   atomic.Uint64
	refused    atomic.Uint64
	idleClosed atomic.Uint64
	evicted    atomic.Uint64
	closeOnce  sync.Once
}

// Start builds the namespace, listens and serves until ctx ends or Close.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:988"
	}
	if cfg.FSName == "" {
		cfg.FSName = "testfs"
	}
	if len(cfg.FSName) > 8 || !validFSName(cfg.FSName) {
		return nil, fmt.Errorf("server: fsname %q: want 1-8 letters, digits or _", cfg.FSName)
	}
	if cfg.OSTs < 0 || cfg.OSTs > 64 {
		return nil, fmt.Errorf("server: %d OSTs: want 0..64", cfg.OSTs)
	}
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	if cfg.ConnectDelay == 0 {
		cfg.ConnectDelay = 20 * time.Millisecond
	}
	if cfg.EvictAfter == 0 {
		cfg.EvictAfter = DefaultEvictAfter
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.FrameTimeout == 0 {
		cfg.FrameTimeout = DefaultFrameTimeout
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConns < 0 {
		return nil, fmt.Errorf("server: %d connections at most: want a positive cap", cfg.MaxConns)
	}
	s := &Server{cfg: cfg, conns: map[net.Conn]*lnet.Conn{}, incarnation: uint64(time.Now().UnixNano())}
	if cfg.NID != "" {
		n, err := lnet.ParseNID(cfg.NID)
		if err != nil {
			return nil, fmt.Errorf("server: --nid: %w", err)
		}
		s.nid = n
	}
	var err error
	switch {
	case cfg.Tree != nil:
		s.tree = cfg.Tree
	case cfg.TreeFile != "" && cfg.Generate != "":
		return nil, errors.New("server: give a tree file or a generate spec, not both")
	case cfg.TreeFile != "":
		if s.tree, err = namespace.Load(cfg.TreeFile); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	case cfg.Generate != "":
		if s.tree, err = namespace.Generate(cfg.Generate); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	default:
		s.tree = namespace.New()
	}
	if err := s.faults.Add(cfg.Faults...); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if cfg.FaultsFile != "" {
		rules, err := faults.Load(cfg.FaultsFile)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.faults.Add(rules...)
	}
	s.exports = ptlrpc.NewExports(uint64(time.Now().UnixNano()) &^ 0xffff)
	s.locks = ldlm.NewTable(uint64(time.Now().UnixNano())<<8 | 1)
	s.astXID.Store(uint64(time.Now().UnixNano()) &^ 0xfff)
	s.mgs = mgs.New(cfg.FSName, cfg.OSTs, s.exports, s.locks)
	s.mdt = mdt.New(cfg.FSName, s.tree, s.exports, s.locks)
	s.targets = map[string]func(*ptlrpc.Request) *ptlrpc.Reply{
		mgs.TargetUUID:     s.mgs.Handle,
		s.mdt.TargetUUID(): s.mdt.Handle,
	}
	s.generic = map[uint32]func(*ptlrpc.Request) *ptlrpc.Reply{
		ptlrpc.OBDPing:       func(r *ptlrpc.Request) *ptlrpc.Reply { return r.Reply(0) },
		ptlrpc.MGSDisconnect: s.disconnect,
		ptlrpc.MDSDisconnect: s.disconnect,
		ptlrpc.OSTDisconnect: s.disconnect,
		ptlrpc.LDLMCancel:    s.ldlmCancel,
	}
	for i := 0; i < cfg.OSTs; i++ {
		o := ost.New(cfg.FSName, i, s.exports)
		s.osts = append(s.osts, o)
		s.targets[o.TargetUUID()] = o.Handle
	}

	s.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("server: listening on %s: %w", cfg.Listen, err)
	}
	if cfg.ControlListen != "off" {
		addr := cfg.ControlListen
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		s.ctl, err = net.Listen("tcp", addr)
		if err != nil {
			s.ln.Close()
			return nil, fmt.Errorf("server: control API listening on %s: %w", addr, err)
		}
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go s.acceptLoop()
	s.wg.Add(1)
	go s.housekeep()
	if s.ctl != nil {
		s.httpSrv = &http.Server{Handler: s.controlHandler(), ReadHeaderTimeout: 10 * time.Second}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.httpSrv.Serve(s.ctl)
		}()
	}
	context.AfterFunc(s.ctx, func() { s.Close() })
	return s, nil
}

func validFSName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Addr is the LNet listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// ControlAddr is the control API address, or nil when disabled.
func (s *Server) ControlAddr() net.Addr {
	if s.ctl == nil {
		return nil
	}
	return s.ctl.Addr()
}

// Tree is the namespace being served.
func (s *Server) Tree() *namespace.Tree { return s.tree }

// Faults is the live fault rule set.
func (s *Server) Faults() *faults.Set { return &s.faults }

// Close stops listening, closes every connection and waits for the
// server's goroutines.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.ln.Close()
		if s.httpSrv != nil {
			s.httpSrv.Close()
		}
		s.connMu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.connMu.Unlock()
	})
	s.wg.Wait()
	return nil
}

func (s *Server) logf(format string, args ...any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(s.cfg.Log, "lustre-server: "+format+"\n", args...)
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.logf("accept: %v", err)
			}
			return
		}
		s.accepted.Add(1)
		s.wg.Add(1)
		go s.serveConn(nc)
	}
}

func (s *Server) serveConn(nc net.Conn) {
	defer s.wg.Done()
	s.connMu.Lock()
	if s.ctx.Err() != nil {
		s.connMu.Unlock()
		nc.Close()
		return
	}
	if len(s.conns) >= s.cfg.MaxConns {
		s.connMu.Unlock()
		if n := s.refused.Add(1); n&(n-1) == 0 { // the 1st, 2nd, 4th... refusal
			s.logf("refusing connection from %v: %d connections open, the most allowed (%d refused so far)",
				nc.RemoteAddr(), s.cfg.MaxConns, n)
		}
		nc.Close()
		return
	}
	s.conns[nc] = nil
	s.connMu.Unlock()
	defer func() {
		nc.Close()
		s.connMu.Lock()
		delete(s.conns, nc)
		s.connMu.Unlock()
	}()
	c, err := lnet.Accept(nc, lnet.AcceptConfig{NID: s.nid, Incarnation: s.incarnation})
	if err != nil {
		if s.ctx.Err() == nil {
			s.logf("handshake: %v", err)
		}
		return
	}
	defer c.Close() // marks it closed for the exports that name it
	s.connMu.Lock()
	s.conns[nc] = c
	s.connMu.Unlock()
	c.SetTimeouts(positive(s.cfg.IdleTimeout), positive(s.cfg.FrameTimeout), func() bool { return s.peerTalks(c) })
	err = c.Serve(s.ctx, s.handleMessage)
	if s.ctx.Err() != nil {
		return
	}
	if errors.Is(err, lnet.ErrIdle) {
		s.idleClosed.Add(1)
		s.logf("closing connection from %v (%v): %v", c.Remote, c.RemoteAddr(), err)
	} else if errors.Is(err, lnet.ErrBadFrame) {
		s.badFrames.Add(1)
		s.logf("closing connection from %v (%v): %v", c.Remote, c.RemoteAddr(), err)
	} else if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		s.logf("connection from %v (%v) ended: %v", c.Remote, c.RemoteAddr(), err)
	}
}

// peerTalks reports whether the peer of c has sent a message on another
// of its connections within the idle timeout: then c, quiet as it is,
// stays open.
func (s *Server) peerTalks(c *lnet.Conn) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	for _, o := range s.conns {
		if o != nil && o != c && o.Remote == c.Remote && o.RemotePID == c.RemotePID &&
			o.PeerIncarnation == c.PeerIncarnation && time.Since(o.LastRead()) < s.cfg.IdleTimeout {
			return true
		}
	}
	return false
}

// peerConnected reports whether the peer of c has a connection open.
func (s *Server) peerConnected(c *lnet.Conn) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	for _, o := range s.conns {
		if o != nil && !o.Closed() && o.Remote == c.Remote && o.RemotePID == c.RemotePID && o.PeerIncarnation == c.PeerIncarnation {
			return true
		}
	}
	return false
}

// handleMessage gets every LNet message lnet does not answer itself.
func (s *Server) handleMessage(c *lnet.Conn, m *lnet.Message) {
	if m.Type != lnet.MsgPUT {
		// ACK/REPLY to our PUTs; GETs (bulk writes) are not supported.
		if m.Type == lnet.MsgGET {
			s.logf("ignoring GET on portal %d match bits %#x from %v", m.Portal, m.MatchBits, c.Remote)
		}
		return
	}
	if _, ok := ptlrpc.ReplyPortal(m.Portal); !ok {
		// Replies to our ASTs (portal 16) and discovery pushes (portal 0).
		if m.Portal != ptlrpc.LDLMCBReplyPortal && m.Portal != lnet.ReservedPortal {
			s.logf("ignoring PUT on portal %d match bits %#x from %v", m.Portal, m.MatchBits, c.Remote)
		}
		return
	}
	r, err := ptlrpc.ParseRequest(c, m)
	if err != nil {
		s.badRPCs.Add(1)
		s.logf("dropping request: %v", err)
		return
	}
	act := s.faults.Match(r.Body.Opc, requestNames(r)...)
	if isConnect(r.Body.Opc) && s.cfg.ConnectDelay > 0 {
		if act == nil {
			act = &faults.Action{}
		}
		if act.Delay < s.cfg.ConnectDelay {
			act.Delay = s.cfg.ConnectDelay
		}
	}
	if act != nil && act.Delay > 0 {
		// Tracked like every server goroutine, so that Close waits for
		// it; the caller (a connection's goroutine) holds a count, so
		// this Add never races with Close's Wait reaching zero.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t := time.NewTimer(act.Delay)
			defer t.Stop()
			select {
			case <-t.C:
				s.serve(r, act)
			case <-s.ctx.Done():
			}
		}()
		return
	}
	s.serve(r, act)
}

// requestNames are the names a request carries (its NAME field: a lookup
// component, a llog name, an xattr name), for name-based faults.
func requestNames(r *ptlrpc.Request) []string {
	if r.Format.Has(ptlrpc.FieldName) {
		if n := r.GetString(ptlrpc.FieldName); n != "" {
			return []string{n}
		}
	}
	return nil
}

func isConnect(opc uint32) bool {
	return opc == ptlrpc.MGSConnect || opc == ptlrpc.MDSConnect || opc == ptlrpc.OSTConnect
}

func isDisconnect(opc uint32) bool {
	return opc == ptlrpc.MGSDisconnect || opc == ptlrpc.MDSDisconnect || opc == ptlrpc.OSTDisconnect
}

func (s *Server) serve(r *ptlrpc.Request, act *faults.Action) {
	start := time.Now()
	rep := s.dispatch(r, act)
	if r.Body.Opc < uint32(len(s.rpcs)) {
		s.rpcs[r.Body.Opc].Add(1)
	} else {
		s.rpcOther.Add(1)
	}
	dropped := act != nil && act.Drop
	// The log line is written before the reply goes out, so that a client
	// that has its reply finds the line in the log.
	if w := s.cfg.LogRPCs; w != nil {
		line := fmt.Sprintf("rpc %s xid=%#x from=%v portal=%d status=%d us=%d", ptlrpc.OpName(r.Body.Opc), r.XID,
			r.Conn.Remote, r.Portal, rep.Status, time.Since(start).Microseconds())
		if act != nil && act.Rule != "" {
			line += " [fault: " + act.Rule + "]"
		}
		if dropped {
			line += " (reply dropped)"
		}
		s.logMu.Lock()
		fmt.Fprintln(w, line)
		s.logMu.Unlock()
	}
	if !dropped {
		if err := r.SendReply(rep); err != nil && s.ctx.Err() == nil {
			s.logf("reply to %s xid %#x: %v", ptlrpc.OpName(r.Body.Opc), r.XID, err)
		}
	}
}

func (s *Server) dispatch(r *ptlrpc.Request, act *faults.Action) *ptlrpc.Reply {
	opc := r.Body.Opc
	if isConnect(opc) {
		if act != nil && act.Errno != 0 {
			return r.Reply(-act.Errno)
		}
		h, ok := s.targets[r.GetString(ptlrpc.FieldTgtUUID)]
		if !ok {
			return r.Reply(-ptlrpc.ENODEV)
		}
		return h(r)
	}
	x := s.exports.Get(r.Body.Handle)
	if x == nil {
		return ptlrpc.ErrorReply(ptlrpc.ENOTCONN)
	}
	r.Export = x
	x.SetConn(r.Conn)
	if act != nil && act.Evict {
		// Evicted by this target only, as a real server's target does.
		s.locks.DropExport(x)
		s.exports.Remove(x.Cookie)
		return ptlrpc.ErrorReply(ptlrpc.ENOTCONN)
	}
	if act != nil && act.Errno != 0 {
		return s.faultReply(r, act.Errno)
	}
	if h, ok := s.generic[opc]; ok {
		return h(r)
	}
	h, ok := s.targets[x.Target]
	if !ok {
		return ptlrpc.ErrorReply(ptlrpc.ENODEV)
	}
	return h(r)
}

func (s *Server) disconnect(r *ptlrpc.Request) *ptlrpc.Reply {
	s.locks.DropExport(r.Export)
	s.exports.Remove(r.Export.Cookie)
	return r.Reply(0)
}

func (s *Server) ldlmCancel(r *ptlrpc.Request) *ptlrpc.Reply {
	req, err := ldlm.UnmarshalRequest(r.Get(ptlrpc.FieldDLMReq))
	if err != nil {
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	n := int(req.Count)
	if n > len(req.Handles) {
		n = len(req.Handles)
	}
	for _, h := range req.Handles[:n] {
		s.locks.Cancel(h)
	}
	return r.Reply(0)
}

// faultReply answers with an injected error the way the real handler
// answers a failure, in the request's format: an intent as an aborted
// lock with the error in lock_policy_res2, everything else with the
// status, every reply buffer of the format present.
func (s *Server) faultReply(r *ptlrpc.Request, errno int32) *ptlrpc.Reply {
	if r.Body.Opc == ptlrpc.LDLMEnqueue && r.Format.Has(ptlrpc.FieldLDLMIntent) {
		dreq, err := ldlm.UnmarshalRequest(r.Get(ptlrpc.FieldDLMReq))
		if err != nil {
			return ptlrpc.ErrorReply(ptlrpc.EPROTO)
		}
		return mdt.IntentFailure(r, dreq.Desc, errno)
	}
	return r.Reply(-errno)
}

func (s *Server) evictNID(nid lnet.NID) int {
	n := 0
	for _, x := range s.exports.All() {
		if nid == 0 || x.ClientNID == nid {
			s.locks.DropExport(x)
			s.exports.Remove(x.Cookie)
			n++
		}
	}
	return n
}

// Evict drops every export of the client with this NID (all clients if
// nid is zero) and its locks; it returns how many exports went.
func (s *Server) Evict(nid lnet.NID) int { return s.evictNID(nid) }

// Revoke sends a blocking AST for every lock on the object at path and on
// its parent directory; it returns the number of ASTs sent.
func (s *Server) Revoke(path string) (int, error) {
	n, err := s.tree.Resolve(path)
	if err != nil {
		return 0, fmt.Errorf("server: revoke: %w", err)
	}
	fids := []namespace.FID{n.FID}
	if p := n.Parent; p != nil {
		fids = append(fids, p.FID)
	}
	return s.revokeFIDs(fids...), nil
}

func (s *Server) revokeFIDs(fids ...namespace.FID) int {
	want := map[ldlm.Resource]bool{}
	for _, f := range fids {
		want[mdt.ResourceOf(f)] = true
	}
	sent := 0
	for _, l := range s.locks.OnResource(func(r ldlm.Resource) bool { return want[r] }) {
		if l.Export == nil {
			continue
		}
		c := l.Export.Conn()
		if c == nil {
			continue
		}
		xid := s.astXID.Add(1)
		if w := s.cfg.LogRPCs; w != nil {
			s.logMu.Lock()
			fmt.Fprintf(w, "ast LDLM_BL_CALLBACK xid=%#x to=%v lock=%#x res=%v\n", xid, c.Remote, l.ClientCookie, mdt.FIDOfResource(l.Desc.Resource))
			s.logMu.Unlock()
		}
		if err := c.Put(ptlrpc.LDLMCBRequestPortal, xid, 0, ldlm.BlockingAST(l)); err != nil {
			s.logf("blocking AST for lock %#x to %v: %v", l.Cookie, c.Remote, err)
			continue
		}
		sent++
	}
	return sent
}

// Rename renames oldPath to newPath as another client would, then revokes
// the locks on both parents and the object. It returns the ASTs sent.
func (s *Server) Rename(oldPath, newPath string) (int, error) {
	n, err := s.tree.Resolve(oldPath)
	if err != nil {
		return 0, fmt.Errorf("server: rename: %w", err)
	}
	od, nd, err := s.tree.Rename(oldPath, newPath)
	if err != nil {
		return 0, fmt.Errorf("server: %w", err)
	}
	return s.revokeFIDs(n.FID, od.FID, nd.FID), nil
}

// Unlink removes path as another client would, then revokes the locks on
// the parent and the object. It returns the ASTs sent.
func (s *Server) Unlink(path string) (int, error) {
	n, err := s.tree.Resolve(path)
	if err != nil {
		return 0, fmt.Errorf("server: unlink: %w", err)
	}
	d, err := s.tree.Unlink(path)
	if err != nil {
		return 0, fmt.Errorf("server: %w", err)
	}
	return s.revokeFIDs(n.FID, d.FID), nil
}

// Stats are the server's counters.
type Stats struct {
	RPCs        map[string]uint64 `json:"rpcs"`
	Connections uint64            `json:"connections"`
	Open        int               `json:"open_connections"`
	BadFrames   uint64            `json:"bad_frames"`
	BadRPCs     uint64            `json:"bad_rpcs"`
	Refused     uint64            `json:"refused_connections"`
	IdleClosed  uint64            `json:"idle_closed"`
	Evicted     uint64            `json:"evicted_exports"`
	Locks       int               `json:"locks"`
	Exports     int               `json:"exports"`
	Inodes      int               `json:"inodes"`
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{RPCs: map[string]uint64{}, Connections: s.accepted.Load(), BadFrames: s.badFrames.Load(),
		BadRPCs: s.badRPCs.Load(), Refused: s.refused.Load(), IdleClosed: s.idleClosed.Load(), Evicted: s.evicted.Load(), Locks: s.locks.Len(), Exports: len(s.exports.All()), Inodes: s.tree.Count()}
	for i := range s.rpcs {
		if v := s.rpcs[i].Load(); v > 0 {
			st.RPCs[ptlrpc.OpName(uint32(i))] = v
		}
	}
	if v := s.rpcOther.Load(); v > 0 {
		st.RPCs["other"] = v
	}
	s.connMu.Lock()
	st.Open = len(s.conns)
	s.connMu.Unlock()
	return st
}

func positive(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
}

// housekeep runs every few seconds (a quarter of EvictAfter when that is
// shorter): it evicts the clients whose connection has been gone for
// EvictAfter (evictOrphans), and when the lock table has shrunk by
// freeAfter locks since the last time (cancels at a client's unmount, or
// an eviction), it hands the memory back to the system at once instead of
// leaving it to the runtime's background scavenger, which takes minutes.
func (s *Server) housekeep() {
	defer s.wg.Done()
	tick := 5 * time.Second
	if q := s.cfg.EvictAfter / 4; q > 0 && q < tick {
		tick = q
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	orphans := map[*ptlrpc.Export]time.Time{}
	high := 0
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			if s.cfg.EvictAfter > 0 {
				s.evictOrphans(orphans, now)
			}
			n := s.locks.Len()
			high = max(high, n)
			if high-n >= freeAfter {
				debug.FreeOSMemory()
				high = n
			}
		}
	}
}

// freeAfter is how many locks must have gone before housekeep returns
// memory to the system.
const freeAfter = 10000

// evictOrphans drops the exports, and with them the locks, of clients
// whose connections have all been gone for EvictAfter: an export
// remembers the connection its client last used; while that one or
// another connection of the same peer (NID, pid and incarnation) is open,
// the client is there, and a reconnecting client's next request (a real
// client pings every 25s) names a live connection again. A real
// MDT's ping evictor also evicts a silent client whose socket is still
// open; this one does not, since the probe never pings.
func (s *Server) evictOrphans(orphans map[*ptlrpc.Export]time.Time, now time.Time) {
	live := map[*ptlrpc.Export]bool{}
	for _, x := range s.exports.All() {
		live[x] = true
		if c := x.Conn(); c != nil && (!c.Closed() || s.peerConnected(c)) {
			delete(orphans, x)
			continue
		}
		since, ok := orphans[x]
		if !ok {
			orphans[x] = now
			continue
		}
		if now.Sub(since) < s.cfg.EvictAfter {
			continue
		}
		delete(orphans, x)
		if !s.exports.Remove(x.Cookie) {
			continue
		}
		n := s.locks.DropExport(x)
		s.evicted.Add(1)
		s.logf("evicting client %s (%v) from %s: no connection for %v; %d locks dropped", x.ClientUUID, x.ClientNID,
			x.Target, now.Sub(since).Round(time.Millisecond), n)
	}
	for x := range orphans {
		if !live[x] {
			delete(orphans, x)
		}
	}
}

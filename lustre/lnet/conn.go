package lnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// HandshakeTimeout bounds the acceptor request and HELLO exchange.
const HandshakeTimeout = 10 * time.Second

// Message is one received ksock message. A NOOP has Noop set and no header.
type Message struct {
	Noop      bool
	ZCCookies [2]uint64
	Header
	Payload []byte
}

// Conn is one socklnd connection after the handshake. Reads must come from
// one goroutine; sends may come from any.
type Conn struct {
	nc   net.Conn
	r    *bufio.Reader
	rbuf [KsockHdrSize + HeaderSize]byte
	// Writes are coalesced: senders append to pend under wmu; whoever
	// finds no write in progress writes everything pending, so concurrent
	// senders share write calls. While corked (the reader still holds
	// buffered requests whose replies will follow), nothing is written
	// until uncork.
	wmu     sync.Mutex
	pend    []byte
	spare   []byte
	writing bool
	corked  bool
	werr    error
	// With a writer goroutine (StartWriter), senders only queue and kick.
	async     bool
	kicked    bool
	kick      chan struct{}
	done      chan struct{}
	Local     NID    // our NID on this connection
	Remote    NID    // the peer's NID
	RemotePID uint32 // the peer's LNet pid
	// PeerType is the connection type the peer declared in its HELLO.
	PeerType uint32
	// PeerIncarnation is the peer's src_incarnation.
	PeerIncarnation uint64
	closed          atomic.Bool
	pingSeq         atomic.Uint32
	// idle and frame bound Serve's reads, keep may excuse an idle
	// connection (SetTimeouts).
	idle, frame time.Duration
	keep        func() bool
	// lastRead is when the latest message began (Unix nanoseconds).
	lastRead atomic.Int64
}

// ErrIdle is wrapped by the error of a connection closed because its peer
// sent nothing for the idle timeout.
var ErrIdle = errors.New("idle connection")

// SetTimeouts bounds what Serve waits for: idle, the silence between
// messages; frame, the time from a message's first byte to its last
// (socklnd's sock_timeout plays that part in a real server), and for
// every write. Zero means no bound. When the idle time is up, keep (if
// not nil) may excuse the connection for another idle period: a peer
// that talks on its other connections (a socklnd peer has one each for
// control, bulk in and bulk out) keeps its quiet ones. Call it before
// Serve.
func (c *Conn) SetTimeouts(idle, frame time.Duration, keep func() bool) {
	c.idle, c.frame, c.keep = idle, frame, keep
}

// LastRead is when the latest message from the peer began (or the
// handshake ended, before any).
func (c *Conn) LastRead() time.Time { return time.Unix(0, c.lastRead.Load()) }

// Closed reports whether Close was called.
func (c *Conn) Closed() bool { return c.closed.Load() }

func newConn(nc net.Conn) *Conn {
	c := &Conn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
	c.lastRead.Store(time.Now().UnixNano())
	return c
}

// RemoteAddr is the TCP address of the peer.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Close closes the socket.
func (c *Conn) Close() error {
	if !c.closed.Swap(true) && c.done != nil {
		close(c.done)
	}
	return c.nc.Close()
}

// StartWriter moves writes to a goroutine of their own: Send queues the
// message and returns, and the writer sends everything queued in one write.
// Many goroutines sending at once (a load generator) then share write
// calls. The writer stops when the connection is closed.
func (c *Conn) StartWriter() {
	c.wmu.Lock()
	if c.async {
		c.wmu.Unlock()
		return
	}
	c.async = true
	c.kick = make(chan struct{}, 1)
	c.done = make(chan struct{})
	c.wmu.Unlock()
	go func() {
		for {
			select {
			case <-c.kick:
			case <-c.done:
				return
			}
			c.wmu.Lock()
			c.kicked = false
			c.async = false // let flushLocked write
			c.flushLocked(MsgPUT)
			c.wmu.Lock()
			c.async = true
			if len(c.pend) > 0 && !c.kicked {
				c.kicked = true
				c.kick <- struct{}{}
			}
			c.wmu.Unlock()
		}
	}()
}

// AcceptConfig says who the passive side of a handshake is.
type AcceptConfig struct {
	// NID is the NID we present. Zero means: the target NID of the
	// acceptor request (the NID the client dialled).
	NID NID
	// Incarnation is our boot cookie; it must stay the same for the life
	// of the server.
	Incarnation uint64
}

// Accept runs the passive side of the handshake on a freshly accepted
// socket: read the acceptor request and the client's HELLO, answer with our
// HELLO. On error the socket is left open for the caller to close.
func Accept(nc net.Conn, cfg AcceptConfig) (*Conn, error) {
	c := newConn(nc)
	nc.SetDeadline(time.Now().Add(HandshakeTimeout))
	defer nc.SetDeadline(time.Time{})
	var b [ConnReqSize]byte
	if _, err := io.ReadFull(c.r, b[:]); err != nil {
		return nil, fmt.Errorf("lnet: reading acceptor request from %v: %w", nc.RemoteAddr(), err)
	}
	cr, err := UnmarshalConnReq(b[:])
	if err != nil {
		return nil, fmt.Errorf("%w (from %v)", err, nc.RemoteAddr())
	}
	c.Local = cfg.NID
	if c.Local == 0 {
		c.Local = cr.NID
	} else if cr.NID != cfg.NID {
		return nil, fmt.Errorf("lnet: refusing connection from %v for %v: our NID is %v", nc.RemoteAddr(), cr.NID, cfg.NID)
	}
	var hb [HelloSize]byte
	if _, err := io.ReadFull(c.r, hb[:]); err != nil {
		return nil, fmt.Errorf("lnet: reading HELLO from %v: %w", nc.RemoteAddr(), err)
	}
	h, err := UnmarshalHello(hb[:])
	if err != nil {
		return nil, fmt.Errorf("%w (from %v)", err, nc.RemoteAddr())
	}
	if len(h.IPs) > 0 {
		ipb := make([]byte, 4*len(h.IPs))
		if _, err := io.ReadFull(c.r, ipb); err != nil {
			return nil, fmt.Errorf("lnet: reading HELLO IPs from %v: %w", nc.RemoteAddr(), err)
		}
	}
	if h.DstNID != c.Local && h.DstNID != 0 {
		return nil, fmt.Errorf("lnet: HELLO from %v is for %v, we are %v", h.SrcNID, h.DstNID, c.Local)
	}
	switch h.ConnType {
	case ConnAny, ConnControl, ConnBulkIn, ConnBulkOut:
	default:
		return nil, fmt.Errorf("lnet: HELLO from %v has connection type %d", h.SrcNID, h.ConnType)
	}
	c.Remote, c.RemotePID, c.PeerType, c.PeerIncarnation = h.SrcNID, h.SrcPID, h.ConnType, h.SrcIncarnation
	reply := Hello{
		Version:        h.Version,
		SrcNID:         c.Local,
		DstNID:         h.SrcNID,
		SrcPID:         PIDLustre,
		DstPID:         h.SrcPID,
		SrcIncarnation: cfg.Incarnation,
		DstIncarnation: h.SrcIncarnation,
		ConnType:       InverseConnType(h.ConnType),
	}
	if _, err := nc.Write(reply.Marshal()); err != nil {
		return nil, fmt.Errorf("lnet: sending HELLO to %v: %w", nc.RemoteAddr(), err)
	}
	return c, nil
}

// DialConfig says who the active side of a handshake is.
type DialConfig struct {
	Local       NID    // our NID
	Remote      NID    // the server NID to put in the acceptor request
	ConnType    uint32 // ConnControl, ConnBulkIn or ConnBulkOut
	Incarnation uint64
}

// Dial connects to addr and runs the active side of the handshake
// (acceptor request, HELLO V3, the server's HELLO).
func Dial(ctx context.Context, addr string, cfg DialConfig) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("lnet: dialling %s: %w", addr, err)
	}
	c, err := Handshake(ctx, nc, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// Handshake runs the active side of the handshake on a connected socket.
func Handshake(ctx context.Context, nc net.Conn, cfg DialConfig) (*Conn, error) {
	c := newConn(nc)
	dl := time.Now().Add(HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	nc.SetDeadline(dl)
	defer nc.SetDeadline(time.Time{})
	cr := ConnReq{Version: AcceptorVersion, NID: cfg.Remote}
	h := Hello{Version: ProtoV3, SrcNID: cfg.Local, DstNID: cfg.Remote, SrcPID: PIDLustre,
		SrcIncarnation: cfg.Incarnation, ConnType: cfg.ConnType}
	if _, err := nc.Write(append(cr.Marshal(), h.Marshal()...)); err != nil {
		return nil, fmt.Errorf("lnet: sending HELLO to %v: %w", nc.RemoteAddr(), err)
	}
	var hb [HelloSize]byte
	if _, err := io.ReadFull(c.r, hb[:]); err != nil {
		return nil, fmt.Errorf("lnet: reading HELLO from %v: %w", nc.RemoteAddr(), err)
	}
	rh, err := UnmarshalHello(hb[:])
	if err != nil {
		return nil, err
	}
	if len(rh.IPs) > 0 {
		if _, err := io.ReadFull(c.r, make([]byte, 4*len(rh.IPs))); err != nil {
			return nil, fmt.Errorf("lnet: reading HELLO IPs from %v: %w", nc.RemoteAddr(), err)
		}
	}
	if rh.SrcNID != cfg.Remote || rh.SrcPID != PIDLustre {
		return nil, fmt.Errorf("lnet: %v claimed to be %v pid %d", cfg.Remote, rh.SrcNID, rh.SrcPID)
	}
	if rh.ConnType != InverseConnType(cfg.ConnType) {
		return nil, fmt.Errorf("lnet: %v answered connection type %d to our %d", cfg.Remote, rh.ConnType, cfg.ConnType)
	}
	c.Local, c.Remote, c.RemotePID, c.PeerType, c.PeerIncarnation = cfg.Local, rh.SrcNID, rh.SrcPID, rh.ConnType, rh.SrcIncarnation
	return c, nil
}

// ErrBadFrame is wrapped by every framing error: the connection must be
// closed, since the byte stream can no longer be trusted.
var ErrBadFrame = errors.New("bad ksock frame")

// ReadMessage reads one ksock message. The payload is freshly allocated
// and belongs to the caller.
func (c *Conn) ReadMessage() (*Message, error) {
	m := new(Message)
	if err := c.readMessage(m); err != nil {
		return nil, err
	}
	return m, nil
}

func (c *Conn) readMessage(m *Message) error {
	b := c.rbuf[:]
	if c.idle > 0 || c.frame > 0 {
		if err := c.awaitFrame(); err != nil {
			return err
		}
	}
	if _, err := io.ReadFull(c.r, b[:KsockHdrSize]); err != nil {
		if c.frame > 0 && isTimeout(err) {
			return fmt.Errorf("%w: ksock header from %v stalled after %d of %d bytes for %v", ErrBadFrame, c.Remote,
				c.r.Buffered(), KsockHdrSize, c.frame)
		}
		return err
	}
	typ := le.Uint32(b)
	m.ZCCookies = [2]uint64{le.Uint64(b[8:]), le.Uint64(b[16:])}
	switch typ {
	case KsockNOOP:
		m.Noop = true
		return nil
	case KsockLNET:
	default:
		return fmt.Errorf("%w: ksock message type %#x from %v", ErrBadFrame, typ, c.Remote)
	}
	if _, err := io.ReadFull(c.r, b[KsockHdrSize:]); err != nil {
		return fmt.Errorf("%w: truncated LNet header from %v: %w", ErrBadFrame, c.Remote, err)
	}
	if err := m.Header.Unmarshal(b[KsockHdrSize:]); err != nil {
		return fmt.Errorf("%w: from %v: %w", ErrBadFrame, c.Remote, err)
	}
	if m.PayloadLength > 0 {
		m.Payload = make([]byte, m.PayloadLength)
		if _, err := io.ReadFull(c.r, m.Payload); err != nil {
			return fmt.Errorf("%w: truncated %d-byte payload from %v: %w", ErrBadFrame, m.PayloadLength, c.Remote, err)
		}
	}
	return nil
}

// awaitFrame waits for the first byte of the next message for at most the
// idle timeout, then gives the whole message the frame timeout.
func (c *Conn) awaitFrame() error {
	for c.r.Buffered() == 0 {
		if c.idle > 0 {
			c.nc.SetReadDeadline(time.Now().Add(c.idle))
		} else {
			c.nc.SetReadDeadline(time.Time{})
		}
		_, err := c.r.Peek(1)
		if err == nil {
			break
		}
		if !isTimeout(err) {
			return err
		}
		if c.keep == nil || !c.keep() {
			return fmt.Errorf("%w: nothing from %v for %v", ErrIdle, c.Remote, c.idle)
		}
	}
	now := time.Now()
	c.lastRead.Store(now.UnixNano())
	if c.frame > 0 {
		c.nc.SetReadDeadline(now.Add(c.frame))
	} else {
		c.nc.SetReadDeadline(time.Time{})
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Send queues one LNet message (the ksock header, h with PayloadLength
// set from the parts, and the parts) and writes it unless another sender's
// write, or a cork, will carry it. An error is the connection's first write
// error.
func (c *Conn) Send(h *Header, zcAck uint64, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > MTU {
		return fmt.Errorf("lnet: %d-byte payload to %v exceeds the LNet MTU", n, c.Remote)
	}
	h.PayloadLength = uint32(n)
	c.wmu.Lock()
	if c.werr != nil {
		err := c.werr
		c.wmu.Unlock()
		return err
	}
	off := len(c.pend)
	c.pend = append(c.pend, make([]byte, KsockHdrSize+HeaderSize)...)
	b := c.pend[off:]
	le.PutUint32(b[0:], KsockLNET)
	le.PutUint32(b[4:], 0)
	le.PutUint64(b[8:], 0)
	le.PutUint64(b[16:], zcAck)
	h.Marshal(b[KsockHdrSize:])
	for _, p := range parts {
		c.pend = append(c.pend, p...)
	}
	return c.flushLocked(h.Type)
}

// flushLocked writes pending bytes unless a write is in progress or the
// connection is corked; it releases wmu.
func (c *Conn) flushLocked(typ uint32) error {
	if c.async {
		if !c.kicked && !c.writing {
			c.kicked = true
			c.kick <- struct{}{}
		}
		c.wmu.Unlock()
		return nil
	}
	if c.writing || c.corked {
		c.wmu.Unlock()
		return nil
	}
	c.writing = true
	var err error
	for len(c.pend) > 0 && c.werr == nil {
		buf := c.pend
		c.pend = c.spare[:0]
		c.wmu.Unlock()
		if c.frame > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(c.frame))
		}
		_, err = c.nc.Write(buf)
		c.wmu.Lock()
		if cap(buf) <= 1<<20 {
			c.spare = buf[:0]
		}
		if err != nil {
			c.werr = fmt.Errorf("lnet: sending %s to %v: %w", TypeName(typ), c.Remote, err)
		}
	}
	c.writing = false
	err = c.werr
	c.wmu.Unlock()
	return err
}

// cork holds back writes; uncork writes what was held back.
func (c *Conn) cork() {
	c.wmu.Lock()
	c.corked = true
	c.wmu.Unlock()
}

func (c *Conn) uncork() error {
	c.wmu.Lock()
	if !c.corked {
		c.wmu.Unlock()
		return nil
	}
	c.corked = false
	return c.flushLocked(MsgPUT)
}

// SendNOOP writes a NOOP carrying a zero-copy acknowledgement (or the
// keepalive value KeepalivePing).
func (c *Conn) SendNOOP(zcAck uint64) error {
	c.wmu.Lock()
	if c.werr != nil {
		err := c.werr
		c.wmu.Unlock()
		return err
	}
	off := len(c.pend)
	c.pend = append(c.pend, make([]byte, KsockHdrSize)...)
	le.PutUint32(c.pend[off:], KsockNOOP)
	le.PutUint64(c.pend[off+16:], zcAck)
	return c.flushLocked(KsockNOOP)
}

// Put sends a PUT without an ACK request to portal with the given match
// bits and offset.
func (c *Conn) Put(portal uint32, matchBits uint64, offset uint32, parts ...[]byte) error {
	h := Header{DestNID: c.Remote, SrcNID: c.Local, DestPID: c.RemotePID, SrcPID: PIDLustre,
		Type: MsgPUT, WMD: HandleNone, MatchBits: matchBits, Portal: portal, Offset: offset}
	return c.Send(&h, 0, parts...)
}

// Handler receives the messages Serve does not answer itself: PUTs other
// than pings, GETs other than pings, and ACK/REPLY messages.
type Handler func(c *Conn, m *Message)

// Serve reads messages until the connection fails or ctx ends. It answers
// LNet's own traffic itself: NOOPs are dropped, zero-copy requests get a
// ZC-ACK, PUTs asking for an ACK get one, and ping GETs on the reserved
// portal get a REPLY with our ping info. Everything else goes to h, in
// order, on this goroutine. Serve returns the reason the connection ended.
func (c *Conn) Serve(ctx context.Context, h Handler) error {
	stop := context.AfterFunc(ctx, func() { c.nc.Close() })
	defer stop()
	for {
		// Replies to requests already buffered go out together once the
		// buffer is drained, in one write.
		if c.r.Buffered() == 0 {
			if err := c.uncork(); err != nil {
				return err
			}
		}
		m := new(Message)
		if err := c.readMessage(m); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if c.r.Buffered() > 0 {
			c.cork()
		}
		if m.ZCCookies[0] != 0 {
			if err := c.SendNOOP(m.ZCCookies[0]); err != nil {
				return err
			}
		}
		if m.Noop {
			continue
		}
		if m.Type == MsgGET && m.Portal == ReservedPortal && m.MatchBits == PingMatchBits {
			info := PingInfo(c.Local, c.pingSeq.Add(1))
			if uint32(len(info)) > m.SinkLength {
				info = info[:m.SinkLength]
			}
			rh := Header{DestNID: m.SrcNID, SrcNID: c.Local, DestPID: m.SrcPID, SrcPID: PIDLustre,
				Type: MsgREPLY, WMD: m.WMD}
			if err := c.Send(&rh, 0, info); err != nil {
				return err
			}
			continue
		}
		if m.Type == MsgPUT && m.WMD != HandleNone {
			ah := Header{DestNID: m.SrcNID, SrcNID: c.Local, DestPID: m.SrcPID, SrcPID: PIDLustre,
				Type: MsgACK, WMD: m.WMD, MatchBits: m.MatchBits, MLength: m.PayloadLength}
			if err := c.Send(&ah, 0); err != nil {
				return err
			}
		}
		h(c, m)
	}
}

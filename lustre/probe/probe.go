// Package probe is a Lustre protocol client in Go: it runs a client's
// mount sequence (MGS connect, config lock, configuration llog, MDT and OST
// connects, statfs, root FID, root getattr), then stat, lookup, readdir
// and statfs, and unmounts. It shares the codecs of the server packages
// but none of their logic, and checks what it gets back (reply portal,
// match bits, reply offset, buffer counts and sizes). Several goroutines
// may issue calls at once, which makes it a load generator too.
package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kregress/kregress/lustre/ldlm"
	"github.com/kregress/kregress/lustre/lnet"
	"github.com/kregress/kregress/lustre/mdt"
	"github.com/kregress/kregress/lustre/mgs"
	"github.com/kregress/kregress/lustre/namespace"
	"github.com/kregress/kregress/lustre/ptlrpc"
)

// Config says where the server is.
type Config struct {
	// Server is host:port of the LNet listener.
	Server string
	// FSName is the filesystem name.
	FSName string
	// ServerNID is the NID to dial; default: the server's IPv4 address @tcp.
	ServerNID string
	// ClientNID is our NID; default 192.168.122.15@tcp.
	ClientNID string
	// Timeout bounds each RPC; default 10s.
	Timeout time.Duration
}

// StatusError is a reply with a negative status.
type StatusError struct {
	Op     string
	Status int32
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s: status %d", e.Op, e.Status) }

// IsErrno reports whether err is a StatusError with status -errno.
func IsErrno(err error, errno int32) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == -errno
}

// Reply is a decoded reply.
type Reply struct {
	Body ptlrpc.Body
	Msg  ptlrpc.Msg
	Bulk []byte
}

type pendingCall struct {
	done  chan struct{}
	reply *Reply
	err   error
	bulk  chan []byte
	// off is where the reply must land (EarlyReplySize with AT).
	off uint32
}

// Client is a connected protocol client.
type Client struct {
	cfg      Config
	conn     *lnet.Conn
	xid      atomic.Uint64
	mu       sync.Mutex
	pending  map[uint64]*pendingCall
	readErr  error
	readDone chan struct{}

	// After Mount:
	mgsHandle, mdtHandle uint64
	ostHandles           []uint64
	mdtUUID              string
	ostUUIDs             []string
	at                   map[uint64]bool   // export handle → AT granted
	lockCookies          map[uint64]uint64 // our lock cookie → server's
	Root                 namespace.FID
	Records              []mgs.Record
	// ASTs counts blocking ASTs received; each is answered and its lock
	// cancelled.
	ASTs atomic.Uint64
	// astErrs are cancels after ASTs that failed, reported by Unmount.
	astErrs []error
}

var le = binary.LittleEndian

// Dial connects and runs the LNet handshake.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.FSName == "" {
		return nil, errors.New("probe: no fsname")
	}
	host, _, err := net.SplitHostPort(cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("probe: server address %q: %w", cfg.Server, err)
	}
	srvNIDStr := cfg.ServerNID
	if srvNIDStr == "" {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("probe: server host %q is not an IPv4 address; give ServerNID", host)
		}
		srvNIDStr = ip.String() + "@tcp"
	}
	srvNID, err := lnet.ParseNID(srvNIDStr)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	if cfg.ClientNID == "" {
		cfg.ClientNID = "192.168.122.15@tcp"
	}
	cliNID, err := lnet.ParseNID(cfg.ClientNID)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	conn, err := lnet.Dial(ctx, cfg.Server, lnet.DialConfig{Local: cliNID, Remote: srvNID, ConnType: lnet.ConnControl,
		Incarnation: uint64(time.Now().UnixNano())})
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	c := &Client{cfg: cfg, conn: conn, pending: map[uint64]*pendingCall{}, readDone: make(chan struct{}), at: map[uint64]bool{},
		lockCookies: map[uint64]uint64{}}
	c.xid.Store(uint64(time.Now().UnixNano()) &^ 0xff)
	conn.StartWriter()
	go c.readLoop()
	return c, nil
}

// Close drops the connection.
func (c *Client) Close() error {
	err := c.conn.Close()
	<-c.readDone
	return err
}

func (c *Client) readLoop() {
	defer close(c.readDone)
	for {
		m, err := c.conn.ReadMessage()
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			for x, p := range c.pending {
				p.err = fmt.Errorf("probe: connection lost: %w", err)
				close(p.done)
				delete(c.pending, x)
			}
			c.mu.Unlock()
			return
		}
		if m.Noop {
			continue
		}
		if m.Type != lnet.MsgPUT {
			continue
		}
		switch m.Portal {
		case ptlrpc.MDSBulkPortal, ptlrpc.MGSBulkPortal, ptlrpc.OSTBulkPortal:
			c.mu.Lock()
			p := c.pending[m.MatchBits]
			c.mu.Unlock()
			if p != nil && p.bulk != nil {
				select {
				case p.bulk <- m.Payload:
				default:
				}
			}
		case ptlrpc.LDLMCBRequestPortal:
			go c.handleAST(m)
		default:
			c.deliver(m)
		}
	}
}

func (c *Client) deliver(m *lnet.Message) {
	c.mu.Lock()
	p := c.pending[m.MatchBits]
	delete(c.pending, m.MatchBits)
	c.mu.Unlock()
	if p == nil {
		return
	}
	r := &Reply{}
	if err := r.Msg.Unpack(m.Payload); err != nil {
		p.err = fmt.Errorf("probe: reply xid %#x: %w", m.MatchBits, err)
	} else if b, err := ptlrpc.UnmarshalBody(r.Msg.Bufs[0]); err != nil {
		p.err = fmt.Errorf("probe: reply xid %#x: %w", m.MatchBits, err)
	} else {
		r.Body = b
		p.reply = r
		p.err = p.checkOffset(m)
	}
	close(p.done)
}

// checkOffset checks the reply placement against what the request allowed.
func (p *pendingCall) checkOffset(m *lnet.Message) error {
	if m.Offset != p.off {
		return fmt.Errorf("probe: reply xid %#x at offset %d, want %d", m.MatchBits, m.Offset, p.off)
	}
	return nil
}

func (c *Client) handleAST(m *lnet.Message) {
	var msg ptlrpc.Msg
	if err := msg.Unpack(m.Payload); err != nil {
		return
	}
	c.ASTs.Add(1)
	// Reply to the AST, then cancel the lock as a client does.
	var body [ptlrpc.BodySize]byte
	(&ptlrpc.Body{Type: ptlrpc.MsgReply, Version: ptlrpc.MsgVersion, Opc: ptlrpc.LDLMBLCallback}).Marshal(body[:])
	rep := ptlrpc.Msg{Bufs: [][]byte{body[:]}}
	c.conn.Put(ptlrpc.LDLMCBReplyPortal, m.MatchBits, 0, rep.Pack())
	req, err := ldlm.UnmarshalRequest(msg.Buf(1))
	if err != nil || len(req.Handles) == 0 {
		return
	}
	c.mu.Lock()
	srv := c.lockCookies[req.Handles[0]]
	delete(c.lockCookies, req.Handles[0])
	c.mu.Unlock()
	if srv != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
		defer cancel()
		if err := c.cancelLocks(ctx, c.mdtHandle, srv); err != nil {
			c.mu.Lock()
			c.astErrs = append(c.astErrs, fmt.Errorf("after a blocking AST: %w", err))
			c.mu.Unlock()
		}
	}
}

// Call sends one request and waits for its reply (and bulk, if wantBulk).
func (c *Client) Call(ctx context.Context, portal, opc, version uint32, handle uint64, wantBulk bool, bufs ...[]byte) (*Reply, error) {
	xid := c.xid.Add(1)
	var body [ptlrpc.BodySize]byte
	pb := ptlrpc.Body{Handle: handle, Type: ptlrpc.MsgRequest, Version: version | ptlrpc.MsgVersion, Opc: opc,
		ConnCnt: 1, Timeout: uint32(c.cfg.Timeout / time.Second)}
	if opc == ptlrpc.MGSConnect || opc == ptlrpc.MDSConnect || opc == ptlrpc.OSTConnect {
		pb.OpFlags = ptlrpc.MsgConnectInitial
	}
	pb.Marshal(body[:])
	msg := ptlrpc.Msg{Bufs: append([][]byte{body[:]}, bufs...), RepSize: 1 << 16}
	c.mu.Lock()
	at := c.at[handle]
	c.mu.Unlock()
	if at {
		msg.Flags = ptlrpc.MsgHdrATSupport
	}
	p := &pendingCall{done: make(chan struct{})}
	if at {
		p.off = ptlrpc.EarlyReplySize
	}
	if wantBulk {
		p.bulk = make(chan []byte, 1)
	}
	c.mu.Lock()
	if c.readErr != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("probe: connection lost: %w", c.readErr)
	}
	c.pending[xid] = p
	c.mu.Unlock()
	if err := c.conn.Put(portal, xid, 0, msg.Pack()); err != nil {
		c.forget(xid)
		return nil, fmt.Errorf("probe: %s: %w", ptlrpc.OpName(opc), err)
	}
	t := time.NewTimer(c.cfg.Timeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-ctx.Done():
		c.forget(xid)
		return nil, fmt.Errorf("probe: %s: %w", ptlrpc.OpName(opc), ctx.Err())
	case <-t.C:
		c.forget(xid)
		return nil, fmt.Errorf("probe: %s xid %#x: no reply in %v", ptlrpc.OpName(opc), xid, c.cfg.Timeout)
	}
	if p.err != nil {
		return nil, p.err
	}
	r := p.reply
	if r.Body.Type != ptlrpc.MsgReply && r.Body.Type != ptlrpc.MsgErr {
		return nil, fmt.Errorf("probe: %s: reply type %d", ptlrpc.OpName(opc), r.Body.Type)
	}
	if r.Body.Opc != opc {
		return nil, fmt.Errorf("probe: %s: reply names opcode %d", ptlrpc.OpName(opc), r.Body.Opc)
	}
	if wantBulk && r.Body.Status == 0 {
		select {
		case r.Bulk = <-p.bulk:
		default:
			return nil, fmt.Errorf("probe: %s: reply came without the bulk before it", ptlrpc.OpName(opc))
		}
	}
	if r.Body.Status < 0 {
		return r, &StatusError{Op: ptlrpc.OpName(opc), Status: r.Body.Status}
	}
	return r, nil
}

func (c *Client) forget(xid uint64) {
	c.mu.Lock()
	delete(c.pending, xid)
	c.mu.Unlock()
}

func uuid(s string) []byte { b := make([]byte, 40); copy(b, s); return b }

func cstr(s string) []byte { return append([]byte(s), 0) }

// connect runs a *_CONNECT to target and returns the export handle.
func (c *Client) connect(ctx context.Context, portal, opc uint32, target string, flags uint64) (uint64, ptlrpc.ConnectData, error) {
	ocd := ptlrpc.ConnectData{Flags: flags, Version: ptlrpc.Version(2, 15, 0, 0), IbitsKnown: 0x7f}
	conn := make([]byte, 8)
	le.PutUint64(conn, c.xid.Load()^0x5a5a)
	r, err := c.Call(ctx, portal, opc, 0x00010000, 0, false, uuid(target), uuid("kregress-probe-"+c.cfg.FSName), conn, ocd.Marshal(), nil)
	if err != nil {
		return 0, ptlrpc.ConnectData{}, err
	}
	if len(r.Msg.Bufs) < 2 {
		return 0, ptlrpc.ConnectData{}, fmt.Errorf("probe: %s to %s: %d reply buffers", ptlrpc.OpName(opc), target, len(r.Msg.Bufs))
	}
	got, err := ptlrpc.UnmarshalConnectData(r.Msg.Bufs[1])
	if err != nil {
		return 0, got, fmt.Errorf("probe: %s to %s: %w", ptlrpc.OpName(opc), target, err)
	}
	if got.Flags&^flags != 0 {
		return 0, got, fmt.Errorf("probe: %s to %s: server granted flags %#x we did not ask for", ptlrpc.OpName(opc), target, got.Flags&^flags)
	}
	if r.Body.Handle == 0 {
		return 0, got, fmt.Errorf("probe: %s to %s: zero export handle", ptlrpc.OpName(opc), target)
	}
	c.mu.Lock()
	c.at[r.Body.Handle] = got.Flags&ptlrpc.ConnectAT != 0
	c.mu.Unlock()
	return r.Body.Handle, got, nil
}

// Mount runs the client's mount sequence.
func (c *Client) Mount(ctx context.Context) error {
	h, _, err := c.connect(ctx, ptlrpc.MGSRequestPortal, ptlrpc.MGSConnect, "MGS",
		ptlrpc.ConnectVersion|ptlrpc.ConnectAT|ptlrpc.ConnectFull20|ptlrpc.ConnectImpRecov|ptlrpc.ConnectLVBType|ptlrpc.ConnectBulkMBits)
	if err != nil {
		return err
	}
	c.mgsHandle = h
	// Config lock on {fsname, 0}: plain CR.
	var res ldlm.Resource
	name := make([]byte, 8)
	copy(name, c.cfg.FSName)
	res[0] = le.Uint64(name)
	if _, err := c.enqueuePlain(ctx, ptlrpc.MGSRequestPortal, c.mgsHandle, ldlm.TypePlain, ldlm.ModeCR, res, 0); err != nil {
		return err
	}
	if err := c.readConfigLog(ctx); err != nil {
		return err
	}
	h, ocd, err := c.connect(ctx, ptlrpc.MDSRequestPortal, ptlrpc.MDSConnect, c.mdtUUID,
		ptlrpc.ConnectIbits|ptlrpc.ConnectAttrFID|ptlrpc.ConnectNodevoh|ptlrpc.ConnectVersion|ptlrpc.ConnectFID|
			ptlrpc.ConnectFull20|ptlrpc.ConnectAT|ptlrpc.ConnectACL|ptlrpc.ConnectLVBType)
	if err != nil {
		return err
	}
	if need := uint64(ptlrpc.ConnectFID | ptlrpc.ConnectAttrFID | ptlrpc.ConnectFull20); ocd.Flags&need != need {
		return fmt.Errorf("probe: MDS_CONNECT granted %#x, lacking FID|ATTRFID|FULL20", ocd.Flags)
	}
	c.mdtHandle = h
	if _, err := c.Statfs(ctx); err != nil {
		return err
	}
	r, err := c.Call(ctx, ptlrpc.MDSRequestPortal, ptlrpc.MDSGetRoot, 0x00020000, c.mdtHandle, false, make([]byte, mdt.BodySize), nil)
	if err != nil {
		return err
	}
	rb, err := mdt.UnmarshalBody(r.Msg.Buf(1))
	if err != nil {
		return fmt.Errorf("probe: MDS_GET_ROOT: %w", err)
	}
	c.Root = rb.FID1
	for _, u := range c.ostUUIDs {
		h, _, err := c.connect(ctx, ptlrpc.OSTRequestPortal, ptlrpc.OSTConnect, u, ptlrpc.ConnectVersion|ptlrpc.ConnectFID|ptlrpc.ConnectFull20|ptlrpc.ConnectAT|ptlrpc.ConnectGrant)
		if err != nil {
			return err
		}
		c.ostHandles = append(c.ostHandles, h)
	}
	if _, err := c.Getattr(ctx, c.Root); err != nil {
		return err
	}
	return nil
}

func (c *Client) readConfigLog(ctx context.Context) error {
	logname := c.cfg.FSName + "-client"
	body := make([]byte, mgs.LlogdBodySize)
	r, err := c.Call(ctx, ptlrpc.MGSRequestPortal, ptlrpc.LLOGOriginHandleCreate, 0x00050000, c.mgsHandle, false, body, cstr(logname))
	if err != nil {
		return err
	}
	lgd := append([]byte(nil), r.Msg.Buf(1)...)
	if len(lgd) != mgs.LlogdBodySize {
		return fmt.Errorf("probe: LLOG_ORIGIN_HANDLE_CREATE: llogd_body of %d bytes", len(lgd))
	}
	r, err = c.Call(ctx, ptlrpc.MGSRequestPortal, ptlrpc.LLOGOriginHandleReadHeader, 0x00050000, c.mgsHandle, false, lgd)
	if err != nil {
		return err
	}
	hdr := r.Msg.Buf(1)
	if len(hdr) != mgs.ChunkSize || le.Uint32(hdr[8:]) != 0x10645539 || le.Uint32(hdr[0:]) != le.Uint32(hdr[mgs.ChunkSize-8:]) {
		return fmt.Errorf("probe: bad llog header (%d bytes)", len(hdr))
	}
	last := le.Uint32(hdr[mgs.ChunkSize-4:])
	var data []byte
	off := uint64(mgs.ChunkSize)
	for i := 0; i < 1000; i++ {
		le.PutUint32(lgd[36:], mgs.ChunkSize)
		le.PutUint64(lgd[40:], off)
		r, err = c.Call(ctx, ptlrpc.MGSRequestPortal, ptlrpc.LLOGOriginHandleNextBlock, 0x00050000, c.mgsHandle, false, lgd)
		if IsErrno(err, ptlrpc.EBADR) {
			break
		}
		if err != nil {
			return err
		}
		rb := r.Msg.Buf(1)
		chunk := r.Msg.Buf(2)
		if len(rb) != mgs.LlogdBodySize || len(chunk) != mgs.ChunkSize {
			return fmt.Errorf("probe: NEXT_BLOCK reply buffers %d/%d bytes", len(rb), len(chunk))
		}
		next := le.Uint64(rb[40:])
		n := int(next - off)
		if next <= off || n > mgs.ChunkSize {
			return fmt.Errorf("probe: NEXT_BLOCK moved from offset %d to %d", off, next)
		}
		data = append(data, chunk[:n]...)
		if le.Uint32(rb[32:]) >= last {
			break
		}
		off = next
	}
	recs, err := mgs.ParseRecords(data)
	if err != nil {
		return fmt.Errorf("probe: config log: %w", err)
	}
	if len(recs) == 0 || recs[len(recs)-1].Index != last {
		return fmt.Errorf("probe: config log: %d records, header says last index %d", len(recs), last)
	}
	c.Records = recs
	for _, rec := range recs {
		if rec.Command == 0xcf003 && strings.HasSuffix(rec.Str(0), "-mdc") {
			c.mdtUUID = rec.Str(1)
		}
		if rec.Command == 0xcf003 && strings.HasSuffix(rec.Str(0), "-osc") {
			c.ostUUIDs = append(c.ostUUIDs, rec.Str(1))
		}
	}
	if c.mdtUUID == "" {
		return errors.New("probe: config log sets up no mdc")
	}
	return nil
}

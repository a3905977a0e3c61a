package ptlrpc

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kregress/kregress/lustre/lnet"
)

// EarlyReplySize is where a final reply lands in the client's reply buffer
// when the request allowed early replies: a one-buffer header plus a
// ptlrpc_body (lustre_msg_early_size).
const EarlyReplySize = 8*((msgHdrSize+4+7)/8) + BodySize

// Request is one received RPC.
type Request struct {
	Conn   *lnet.Conn
	Portal uint32
	XID    uint64
	Msg    Msg
	Body   Body
	// Export is the client's export, set by the dispatcher when the
	// request carries a known handle.
	Export *Export
	// Format is the request's format (FormatOf), nil for an opcode
	// without one; found on first use when not set.
	Format *Format
}

func (r *Request) format() *Format {
	if r.Format == nil {
		r.Format = FormatOf(r.Body.Opc, &r.Msg)
	}
	return r.Format
}

// Get returns field f of the request: nil when its format has no such
// field or the client sent fewer buffers.
func (r *Request) Get(f Field) []byte {
	fm := r.format()
	if fm == nil {
		return nil
	}
	if i := fm.ReqIndex(f); i >= 0 {
		return r.Msg.Buf(i)
	}
	return nil
}

// GetString returns field f as a C string (up to its first NUL).
func (r *Request) GetString(f Field) string {
	b := r.Get(f)
	for j, c := range b {
		if c == 0 {
			return string(b[:j])
		}
	}
	return string(b)
}

// Reply is a normal reply with this status and every reply buffer of the
// request's format: the given values, the other fields empty. A request
// without a format gets the status alone.
func (r *Request) Reply(status int32, vals ...Value) *Reply {
	fm := r.format()
	if fm == nil {
		if len(vals) > 0 {
			panic("ptlrpc: reply values for " + OpName(r.Body.Opc) + ", which has no format")
		}
		return &Reply{Status: status}
	}
	return &Reply{Status: status, Bufs: fm.ReplyBufs(vals...)}
}

// ParseRequest decodes a request PUT: the lustre_msg and its ptlrpc_body.
func ParseRequest(c *lnet.Conn, m *lnet.Message) (*Request, error) {
	r := &Request{Conn: c, Portal: m.Portal, XID: m.MatchBits}
	if err := r.Msg.Unpack(m.Payload); err != nil {
		return nil, fmt.Errorf("request xid %#x on portal %d from %v: %w", m.MatchBits, m.Portal, m.SrcNID, err)
	}
	b, err := UnmarshalBody(r.Msg.Bufs[0])
	if err != nil {
		return nil, fmt.Errorf("request xid %#x on portal %d from %v: %w", m.MatchBits, m.Portal, m.SrcNID, err)
	}
	if b.Type != MsgRequest {
		return nil, fmt.Errorf("request xid %#x from %v: %w: pb_type %d, want %d", m.MatchBits, m.SrcNID, ErrBadMsg, b.Type, MsgRequest)
	}
	r.Body = b
	r.Format = FormatOf(b.Opc, &r.Msg)
	return r, nil
}

// Reply is what a handler answers.
type Reply struct {
	// Status is 0, a negative errno, or a positive LDLM code.
	Status int32
	// Bufs are the reply buffers after the ptlrpc_body.
	Bufs [][]byte
	// Handle is pb_handle (the export cookie on connect replies).
	Handle uint64
	// OpFlags is pb_op_flags.
	OpFlags uint32
	// Err sends PTL_RPC_MSG_ERR instead of PTL_RPC_MSG_REPLY.
	Err bool
}

// ErrorReply is a PTL_RPC_MSG_ERR reply with a negative errno.
func ErrorReply(errno int32) *Reply { return &Reply{Status: -errno, Err: true} }

// StatusReply is a normal reply carrying only a status and the given
// (possibly empty) buffers.
func StatusReply(status int32, bufs ...[]byte) *Reply { return &Reply{Status: status, Bufs: bufs} }

var packPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// SendReply sends rep to the client's reply portal with the request's XID
// as match bits, at offset EarlyReplySize when the request allowed early
// replies.
func (r *Request) SendReply(rep *Reply) error {
	rp, ok := ReplyPortal(r.Portal)
	if !ok {
		return fmt.Errorf("ptlrpc: no reply portal for request portal %d", r.Portal)
	}
	var body [BodySize]byte
	pb := Body{
		Handle:      rep.Handle,
		Type:        MsgReply,
		Version:     MsgVersion,
		Opc:         r.Body.Opc,
		Status:      rep.Status,
		OpFlags:     rep.OpFlags,
		ConnCnt:     r.Body.ConnCnt,
		Timeout:     1,
		ServiceTime: 1,
	}
	if rep.Err {
		pb.Type = MsgErr
	}
	pb.Marshal(body[:])
	bufs := make([][]byte, 0, 8)
	bufs = append(bufs, body[:])
	if !rep.Err {
		bufs = append(bufs, rep.Bufs...)
	}
	msg := Msg{Bufs: bufs}
	off := uint32(0)
	if r.Msg.Flags&MsgHdrATSupport != 0 {
		off = EarlyReplySize
		msg.Flags = MsgHdrATSupport
	}
	bp := packPool.Get().(*[]byte)
	out := msg.AppendPack((*bp)[:0])
	err := r.Conn.Put(rp, r.XID, off, out)
	*bp = out
	packPool.Put(bp)
	return err
}

// SendBulk PUTs data to the client's bulk sink on portal, matched by the
// request XID. Send it before the reply.
func (r *Request) SendBulk(portal uint32, data []byte) error {
	return r.Conn.Put(portal, r.XID, 0, data)
}

// Export is a connected client of one target.
type Export struct {
	Cookie     uint64
	Target     string // target UUID the client connected to
	ClientUUID string
	ClientNID  lnet.NID
	// ClientHandle is the client's CONN handle (its import cookie) and
	// Connect what was granted; both change on reconnect: read them with
	// Handle, or under the export's lock.
	ClientHandle uint64
	Connect      ConnectData
	mu           sync.Mutex
	conn         *lnet.Conn
}

// Conn returns the connection the client last used for this export.
func (e *Export) Conn() *lnet.Conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.conn
}

// SetConn records the connection the client last used.
func (e *Export) SetConn(c *lnet.Conn) {
	e.mu.Lock()
	e.conn = c
	e.mu.Unlock()
}

// Exports is the table of exports of all targets, keyed by cookie.
type Exports struct {
	mu   sync.RWMutex
	m    map[uint64]*Export
	next atomic.Uint64
}

// NewExports returns an empty table whose cookies start from seed.
func NewExports(seed uint64) *Exports {
	e := &Exports{m: map[uint64]*Export{}}
	e.next.Store(seed)
	return e
}

// Get returns the export with this cookie.
func (e *Exports) Get(cookie uint64) *Export {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.m[cookie]
}

// Find returns the export of a client UUID on a target.
func (e *Exports) Find(target, clientUUID string) *Export {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, x := range e.m {
		if x.Target == target && x.ClientUUID == clientUUID {
			return x
		}
	}
	return nil
}

// All returns every export.
func (e *Exports) All() []*Export {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]*Export, 0, len(e.m))
	for _, x := range e.m {
		out = append(out, x)
	}
	return out
}

// connect finds the export of a reconnecting client or replaces any old
// one with a new export, atomically.
func (e *Exports) connect(target, clientUUID string, nid lnet.NID, reconnect bool) (*Export, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for c, x := range e.m {
		if x.Target == target && x.ClientUUID == clientUUID {
			if reconnect {
				return x, true
			}
			delete(e.m, c)
		}
	}
	x := &Export{Target: target, ClientUUID: clientUUID, ClientNID: nid}
	x.Cookie = e.next.Add(0x101)
	e.m[x.Cookie] = x
	return x, false
}

// Handle returns the client's connection handle (pb_handle of requests the
// server sends it).
func (x *Export) Handle() uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.ClientHandle
}

// Add creates an export.
func (e *Exports) Add(x *Export) *Export {
	x.Cookie = e.next.Add(0x101)
	e.mu.Lock()
	e.m[x.Cookie] = x
	e.mu.Unlock()
	return x
}

// Remove drops an export; a removed export's client gets -ENOTCONN.
func (e *Exports) Remove(cookie uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.m[cookie]
	delete(e.m, cookie)
	return ok
}

// Connect handles a *_CONNECT request for target: it checks the target
// UUID, creates (or on reconnect reuses) the export, and grants
// client flags ∩ supported. adjust may fill more reply fields. The
// target UUID check compares against want; an unknown target is -ENODEV.
// opFlags go into every reply's pb_op_flags: MsgConnectReplayable for a
// target whose client should keep its connection state across a lost
// reply (MDT, OST), so that a timeout leads to a reconnect, which finds
// the export (MsgConnectReconnect, same handle), and a resend, not to an
// eviction.
func Connect(r *Request, ex *Exports, want string, supported, supported2 uint64, opFlags uint32, adjust func(req, rep *ConnectData)) *Reply {
	conn, data := r.Get(FieldConn), r.Get(FieldConnectData)
	if len(conn) < 8 || data == nil {
		return ErrorReply(EPROTO)
	}
	tgt := r.GetString(FieldTgtUUID)
	if tgt != want {
		return r.Reply(-ENODEV)
	}
	cluuid := r.GetString(FieldClUUID)
	handle := le.Uint64(conn)
	ocd, err := UnmarshalConnectData(data)
	if err != nil {
		return ErrorReply(EPROTO)
	}
	rep := ConnectData{
		Flags:   ocd.Flags & supported,
		Version: ServerVersion,
	}
	if ocd.Flags&ConnectFlags2 != 0 {
		rep.Flags2 = ocd.Flags2 & supported2
	}
	if adjust != nil {
		adjust(&ocd, &rep)
	}
	// A client's first connect to a target has pb_conn_cnt 1; a later one
	// (after a timeout or a lost connection) counts up and, like the
	// target's own handler, finds the export it had if it still exists.
	x, reconnected := ex.connect(tgt, cluuid, r.Conn.Remote, r.Body.ConnCnt > 1)
	if reconnected {
		opFlags |= MsgConnectReconnect
	}
	x.mu.Lock()
	x.ClientHandle = handle
	x.Connect = rep
	x.conn = r.Conn
	x.mu.Unlock()
	rp := r.Reply(0, Set(FieldConnectData, rep.Marshal()))
	rp.Handle, rp.OpFlags = x.Cookie, opFlags
	return rp
}

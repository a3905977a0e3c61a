// Package ldlm is the server side of Lustre's distributed lock manager as
// far as a simulated server needs it: the ldlm_request/ldlm_reply wire
// structures, disposition constants, a table of granted locks
// (server cookie, the client's cookie, resource, mode, inode bits, export)
// and the LDLM_BL_CALLBACK request that revokes a lock from a client.
package ldlm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kregress/kregress/lustre/ptlrpc"
)

var le = binary.LittleEndian

// Lock types, modes, bits, dispositions, flags and return codes
// (lustre_idl.h, lustre_dlm_flags.h). Intent opcodes are in package
// ptlrpc, where they choose the request format.
const (
	TypePlain  = 10
	TypeExtent = 11
	TypeFlock  = 12
	TypeIbits  = 13

	ModeEX = 1
	ModePW = 2
	ModePR = 4
	ModeCW = 8
	ModeCR = 16
	ModeNL = 32

	BitLookup = 0x1
	BitUpdate = 0x2
	BitOpen   = 0x4
	BitLayout = 0x8
	BitPerm   = 0x10

	DispITExecd     = 0x1
	DispLookupExecd = 0x2
	DispLookupNeg   = 0x4
	DispLookupPos   = 0x8
	DispOpenCreate  = 0x10
	DispOpenOpen    = 0x20

	FlagLockChanged = 0x1
	FlagASTSent     = 0x20

	// LockAborted is ELDLM_LOCK_ABORTED, the pb_status of an intent reply
	// that grants no lock.
	LockAborted = 301

	// DLMVersion is LUSTRE_DLM_VERSION.
	DLMVersion = 0x00040000

	RequestSize  = 104 // ldlm_request with two handles
	ReplySize    = 112
	LockDescSize = 80
)

// ErrBadLock is wrapped by every decoding error.
var ErrBadLock = errors.New("bad ldlm structure")

// Resource is an ldlm_res_id.
type Resource [4]uint64

// LockDesc is struct ldlm_lock_desc.
type LockDesc struct {
	ResType     uint32
	Resource    Resource
	ReqMode     uint32
	GrantedMode uint32
	Policy      [32]byte // l_policy_data; for IBITS the first u64 is the bits
}

// Bits returns the inode bits of an IBITS policy.
func (d *LockDesc) Bits() uint64 { return le.Uint64(d.Policy[:]) }

// SetBits sets the inode bits of an IBITS policy.
func (d *LockDesc) SetBits(b uint64) { le.PutUint64(d.Policy[:], b) }

func (d *LockDesc) marshal(b []byte) {
	le.PutUint32(b[0:], d.ResType)
	le.PutUint32(b[4:], 0)
	for i, v := range d.Resource {
		le.PutUint64(b[8+8*i:], v)
	}
	le.PutUint32(b[40:], d.ReqMode)
	le.PutUint32(b[44:], d.GrantedMode)
	copy(b[48:80], d.Policy[:])
}

func unmarshalLockDesc(b []byte) LockDesc {
	var d LockDesc
	d.ResType = le.Uint32(b[0:])
	for i := range d.Resource {
		d.Resource[i] = le.Uint64(b[8+8*i:])
	}
	d.ReqMode = le.Uint32(b[40:])
	d.GrantedMode = le.Uint32(b[44:])
	copy(d.Policy[:], b[48:80])
	return d
}

// Request is struct ldlm_request.
type Request struct {
	Flags   uint32
	Count   uint32
	Desc    LockDesc
	Handles []uint64
}

// UnmarshalRequest decodes an ldlm_request.
func UnmarshalRequest(b []byte) (Request, error) {
	var r Request
	if len(b) < 88 {
		return r, fmt.Errorf("%w: ldlm_request is %d bytes, want at least 88", ErrBadLock, len(b))
	}
	r.Flags = le.Uint32(b[0:])
	r.Count = le.Uint32(b[4:])
	r.Desc = unmarshalLockDesc(b[8:88])
	for off := 88; off+8 <= len(b); off += 8 {
		r.Handles = append(r.Handles, le.Uint64(b[off:]))
	}
	return r, nil
}

// Marshal encodes the request with at least two handles.
func (r *Request) Marshal() []byte {
	n := len(r.Handles)
	if n < 2 {
		n = 2
	}
	b := make([]byte, 88+8*n)
	le.PutUint32(b[0:], r.Flags)
	le.PutUint32(b[4:], r.Count)
	r.Desc.marshal(b[8:88])
	for i, h := range r.Handles {
		le.PutUint64(b[88+8*i:], h)
	}
	return b
}

// Reply is struct ldlm_reply.
type Reply struct {
	Flags      uint32
	Desc       LockDesc
	Handle     uint64
	PolicyRes1 uint64
	PolicyRes2 uint64
}

// Marshal encodes the reply (112 bytes).
func (r *Reply) Marshal() []byte {
	b := make([]byte, ReplySize)
	le.PutUint32(b[0:], r.Flags)
	r.Desc.marshal(b[8:88])
	le.PutUint64(b[88:], r.Handle)
	le.PutUint64(b[96:], r.PolicyRes1)
	le.PutUint64(b[104:], r.PolicyRes2)
	return b
}

// UnmarshalReply decodes an ldlm_reply.
func UnmarshalReply(b []byte) (Reply, error) {
	var r Reply
	if len(b) < ReplySize {
		return r, fmt.Errorf("%w: ldlm_reply is %d bytes, want %d", ErrBadLock, len(b), ReplySize)
	}
	r.Flags = le.Uint32(b[0:])
	r.Desc = unmarshalLockDesc(b[8:88])
	r.Handle = le.Uint64(b[88:])
	r.PolicyRes1 = le.Uint64(b[96:])
	r.PolicyRes2 = le.Uint64(b[104:])
	return r, nil
}

// Lock is a granted lock.
type Lock struct {
	Cookie       uint64 // our handle
	ClientCookie uint64 // the client's handle (lock_handle[0] of the enqueue)
	Desc         LockDesc
	Export       *ptlrpc.Export
}

// Table holds the granted locks.
type Table struct {
	mu    sync.Mutex
	locks map[uint64]*Lock
	// peak is the most locks held since the map was last rebuilt: a Go
	// map keeps its buckets when entries go, so after most of them have
	// gone (a client cancelled or was evicted) it is copied into a
	// fresh one, and the memory can return.
	peak int
	next atomic.Uint64
}

// shrinkLocked rebuilds the map once it holds under a quarter of its peak.
func (t *Table) shrinkLocked() {
	if t.peak < 4096 || len(t.locks) >= t.peak/4 {
		return
	}
	m := make(map[uint64]*Lock, len(t.locks))
	for k, v := range t.locks {
		m[k] = v
	}
	t.locks, t.peak = m, len(m)
}

// NewTable returns an empty table whose cookies start from seed.
func NewTable(seed uint64) *Table {
	t := &Table{locks: map[uint64]*Lock{}}
	t.next.Store(seed)
	return t
}

// Grant records a lock and returns it with a fresh cookie.
func (t *Table) Grant(desc LockDesc, clientCookie uint64, x *ptlrpc.Export) *Lock {
	l := &Lock{Cookie: t.next.Add(0x10001), ClientCookie: clientCookie, Desc: desc, Export: x}
	l.Desc.GrantedMode = desc.ReqMode
	t.mu.Lock()
	t.locks[l.Cookie] = l
	if len(t.locks) > t.peak {
		t.peak = len(t.locks)
	}
	t.mu.Unlock()
	return l
}

// Cancel drops a lock; it reports whether the lock was held.
func (t *Table) Cancel(cookie uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.locks[cookie]
	delete(t.locks, cookie)
	t.shrinkLocked()
	return ok
}

// OnResource returns the locks on a resource (all when match is nil).
func (t *Table) OnResource(match func(Resource) bool) []*Lock {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*Lock
	for _, l := range t.locks {
		if match == nil || match(l.Desc.Resource) {
			out = append(out, l)
		}
	}
	return out
}

// DropExport cancels every lock of an export.
func (t *Table) DropExport(x *ptlrpc.Export) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for c, l := range t.locks {
		if l.Export == x {
			delete(t.locks, c)
			n++
		}
	}
	t.shrinkLocked()
	return n
}

// Len returns the number of granted locks.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.locks)
}

// BlockingAST builds the LDLM_BL_CALLBACK request message that asks the
// client to give up l: buffers PTLRPC_BODY and DLM_REQ, pb_handle the
// client's connection handle, lock_handle[0] the client's lock cookie.
func BlockingAST(l *Lock) []byte {
	var body [ptlrpc.BodySize]byte
	pb := ptlrpc.Body{Type: ptlrpc.MsgRequest, Version: DLMVersion | ptlrpc.MsgVersion, Opc: ptlrpc.LDLMBLCallback, Timeout: 5}
	if l.Export != nil {
		pb.Handle = l.Export.Handle()
	}
	pb.Marshal(body[:])
	req := Request{Flags: FlagASTSent, Count: 1, Desc: l.Desc, Handles: []uint64{l.ClientCookie, 0}}
	m := ptlrpc.Msg{Bufs: [][]byte{body[:], req.Marshal()}}
	return m.Pack()
}

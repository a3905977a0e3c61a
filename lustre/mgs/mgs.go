// Package mgs is the simulated management service: MGS_CONNECT, the
// configuration lock (a plain LDLM_ENQUEUE), and the llog RPCs that hand
// the client its "<fsname>-client" configuration log, which tells it to
// set up lov/lmv and an mdc (and oscs) pointing back at this server.
//
// Opcodes handled (request portal 26, replies to 25):
//
//	MGS_CONNECT (250)                     grants VERSION|AT|FULL20 ∩ asked
//	LDLM_ENQUEUE (101)                    plain config lock, granted at once
//	LLOG_ORIGIN_HANDLE_CREATE (501)       "<fsname>-client"; others -ENOENT
//	LLOG_ORIGIN_HANDLE_READ_HEADER (503)  the 8192-byte llog header
//	LLOG_ORIGIN_HANDLE_NEXT_BLOCK (502)   8192-byte chunks; -EBADR at EOF
//	LLOG_ORIGIN_HANDLE_PREV_BLOCK (508)   the chunk at the given offset
//	MGS_CONFIG_READ (256)                 -EOPNOTSUPP (IMP_RECOV is never granted)
//
// OBD_PING, MGS_DISCONNECT and LDLM_CANCEL are answered by package server.
// This list is checked against the dispatch map by the package's tests.
package mgs

import (
	"fmt"
	"sync"

	"github.com/kregress/kregress/lustre/ldlm"
	"github.com/kregress/kregress/lustre/lnet"
	"github.com/kregress/kregress/lustre/ptlrpc"
)

// Supported are the connect flags the MGS grants (when asked).
const Supported = ptlrpc.ConnectVersion | ptlrpc.ConnectAT | ptlrpc.ConnectFull20

// TargetUUID is what the client names the MGS in MGS_CONNECT.
const TargetUUID = "MGS"

// LlogdBodySize is sizeof(struct llogd_body).
const LlogdBodySize = 48

// clientLogID is the llog id handed out for the client log.
const clientLogID = 0xc11e47

// Service is the MGS.
type Service struct {
	FSName  string
	OSTs    int
	Exports *ptlrpc.Exports
	Locks   *ldlm.Table

	ops  map[uint32]func(*ptlrpc.Request) *ptlrpc.Reply
	mu   sync.Mutex
	logs map[lnet.NID]*Log
}

// New returns an MGS for fsname whose client log lists osts OSTs.
func New(fsname string, osts int, ex *ptlrpc.Exports, locks *ldlm.Table) *Service {
	s := &Service{FSName: fsname, OSTs: osts, Exports: ex, Locks: locks, logs: map[lnet.NID]*Log{}}
	s.ops = map[uint32]func(*ptlrpc.Request) *ptlrpc.Reply{
		ptlrpc.MGSConnect: func(r *ptlrpc.Request) *ptlrpc.Reply {
			return ptlrpc.Connect(r, s.Exports, TargetUUID, Supported, 0, 0, nil)
		},
		ptlrpc.LDLMEnqueue:                func(r *ptlrpc.Request) *ptlrpc.Reply { return PlainEnqueue(r, s.Locks) },
		ptlrpc.LLOGOriginHandleCreate:     s.llogCreate,
		ptlrpc.LLOGOriginHandleReadHeader: s.llogReadHeader,
		ptlrpc.LLOGOriginHandleNextBlock:  s.llogBlock,
		ptlrpc.LLOGOriginHandlePrevBlock:  s.llogBlock,
		ptlrpc.MGSConfigRead:              func(r *ptlrpc.Request) *ptlrpc.Reply { return r.Reply(-ptlrpc.EOPNOTSUPP) },
	}
	return s
}

// Opcodes lists the opcodes of the dispatch map, in order.
func (s *Service) Opcodes() []uint32 { return ptlrpc.SortedOpcodes(s.ops) }

// ClientLogFor returns the client log naming nid as the server NID.
func (s *Service) ClientLogFor(nid lnet.NID) *Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.logs[nid]
	if !ok {
		l = ClientLog(s.FSName, nid, s.OSTs)
		s.logs[nid] = l
	}
	return l
}

// Handle serves one MGS request. r.Export is set for all but connect.
func (s *Service) Handle(r *ptlrpc.Request) *ptlrpc.Reply {
	if h, ok := s.ops[r.Body.Opc]; ok {
		return h(r)
	}
	return ptlrpc.ErrorReply(ptlrpc.EOPNOTSUPP)
}

// PlainEnqueue grants a lock request without intent at once: the reply
// echoes the lock descriptor with the granted mode set and a new handle,
// and an empty LVB.
func PlainEnqueue(r *ptlrpc.Request, locks *ldlm.Table) *ptlrpc.Reply {
	req, err := ldlm.UnmarshalRequest(r.Get(ptlrpc.FieldDLMReq))
	if err != nil {
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	if r.Format != ptlrpc.FmtLDLMEnqueue {
		// The MGS knows no intents.
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	var cookie uint64
	if len(req.Handles) > 0 {
		cookie = req.Handles[0]
	}
	l := locks.Grant(req.Desc, cookie, r.Export)
	rep := ldlm.Reply{Desc: l.Desc, Handle: l.Cookie}
	return r.Reply(0, ptlrpc.Set(ptlrpc.FieldDLMRep, rep.Marshal()))
}

type llogdBody struct {
	logID      [20]byte
	ctxtIdx    uint32
	flags      uint32
	index      uint32
	savedIndex uint32
	length     uint32
	curOffset  uint64
}

func parseLlogd(b []byte) (llogdBody, error) {
	var d llogdBody
	if len(b) < LlogdBodySize {
		return d, fmt.Errorf("llogd_body is %d bytes, want %d", len(b), LlogdBodySize)
	}
	copy(d.logID[:], b)
	d.ctxtIdx = le.Uint32(b[20:])
	d.flags = le.Uint32(b[24:])
	d.index = le.Uint32(b[28:])
	d.savedIndex = le.Uint32(b[32:])
	d.length = le.Uint32(b[36:])
	d.curOffset = le.Uint64(b[40:])
	return d, nil
}

func (d *llogdBody) marshal() []byte {
	b := make([]byte, LlogdBodySize)
	copy(b, d.logID[:])
	le.PutUint32(b[20:], d.ctxtIdx)
	le.PutUint32(b[24:], d.flags)
	le.PutUint32(b[28:], d.index)
	le.PutUint32(b[32:], d.savedIndex)
	le.PutUint32(b[36:], d.length)
	le.PutUint64(b[40:], d.curOffset)
	return b
}

func (s *Service) llogCreate(r *ptlrpc.Request) *ptlrpc.Reply {
	d, err := parseLlogd(r.Get(ptlrpc.FieldLlogdBody))
	if err != nil {
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	name := r.GetString(ptlrpc.FieldName)
	if name != s.FSName+"-client" {
		return r.Reply(-ptlrpc.ENOENT)
	}
	d.logID = [20]byte{}
	le.PutUint64(d.logID[0:], clientLogID)
	le.PutUint64(d.logID[8:], 1)
	le.PutUint32(d.logID[16:], 1)
	return r.Reply(0, ptlrpc.Set(ptlrpc.FieldLlogdBody, d.marshal()))
}

func (s *Service) logOf(r *ptlrpc.Request, d *llogdBody) *Log {
	if le.Uint64(d.logID[0:]) != clientLogID {
		return nil
	}
	return s.ClientLogFor(r.Conn.Local)
}

func (s *Service) llogReadHeader(r *ptlrpc.Request) *ptlrpc.Reply {
	d, err := parseLlogd(r.Get(ptlrpc.FieldLlogdBody))
	if err != nil {
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	l := s.logOf(r, &d)
	if l == nil {
		return r.Reply(-ptlrpc.ENOENT)
	}
	return r.Reply(0, ptlrpc.Set(ptlrpc.FieldLlogLogHdr, l.Header()))
}

func (s *Service) llogBlock(r *ptlrpc.Request) *ptlrpc.Reply {
	d, err := parseLlogd(r.Get(ptlrpc.FieldLlogdBody))
	if err != nil {
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	l := s.logOf(r, &d)
	if l == nil {
		return r.Reply(-ptlrpc.ENOENT)
	}
	off := d.curOffset
	if off < ChunkSize {
		off = ChunkSize
	}
	off -= off % ChunkSize
	chunk, last, next, err := l.Chunk(off)
	if err != nil {
		return r.Reply(-ptlrpc.EBADR, ptlrpc.Set(ptlrpc.FieldLlogdBody, d.marshal()))
	}
	d.savedIndex = last
	d.curOffset = next
	return r.Reply(0, ptlrpc.Set(ptlrpc.FieldLlogdBody, d.marshal()), ptlrpc.Set(ptlrpc.FieldEAData, chunk))
}

// Package ost is a simulated object storage target. The namespace keeps
// file sizes on the MDT and gives files no layout, so a client never reads
// objects; the OST exists so that the client's lov has targets to connect
// to, `df` (statfs) has space to report, and getattr of an object answers.
//
// Opcodes handled (request portal 28, replies to 4):
//
//	OST_CONNECT (8)      grants VERSION|FID|FULL20|AT ∩ asked
//	OST_STATFS (13)      obd_statfs
//	OST_GETATTR (1)      the object echoed back with size 0 (no object holds data)
//
// OBD_PING, OST_DISCONNECT and LDLM_CANCEL are answered by package server.
// This list is checked against the dispatch map by the package's tests.
package ost

import (
	"encoding/binary"
	"fmt"

	"github.com/kregress/kregress/lustre/mdt"
	"github.com/kregress/kregress/lustre/ptlrpc"
)

var le = binary.LittleEndian

// Supported are the connect flags an OST grants (when asked).
const Supported = ptlrpc.ConnectVersion | ptlrpc.ConnectFID | ptlrpc.ConnectFull20 | ptlrpc.ConnectAT

// ObdoSize is sizeof(struct obdo) (the ost_body).
const ObdoSize = 208

// Service is one OST.
type Service struct {
	FSName  string
	Index   int
	Exports *ptlrpc.Exports
	ops     map[uint32]func(*ptlrpc.Request) *ptlrpc.Reply
}

// New returns OST number index of fsname.
func New(fsname string, index int, ex *ptlrpc.Exports) *Service {
	s := &Service{FSName: fsname, Index: index, Exports: ex}
	s.ops = map[uint32]func(*ptlrpc.Request) *ptlrpc.Reply{
		ptlrpc.OSTConnect: s.connect,
		ptlrpc.OSTStatfs:  s.statfs,
		ptlrpc.OSTGetattr: s.getattr,
	}
	return s
}

// TargetUUID is the OST's UUID.
func (s *Service) TargetUUID() string { return fmt.Sprintf("%s-OST%04x_UUID", s.FSName, s.Index) }

// Opcodes lists the opcodes of the dispatch map, in order.
func (s *Service) Opcodes() []uint32 { return ptlrpc.SortedOpcodes(s.ops) }

// Handle serves one OST request.
func (s *Service) Handle(r *ptlrpc.Request) *ptlrpc.Reply {
	if h, ok := s.ops[r.Body.Opc]; ok {
		return h(r)
	}
	return ptlrpc.ErrorReply(ptlrpc.EOPNOTSUPP)
}

func (s *Service) connect(r *ptlrpc.Request) *ptlrpc.Reply {
	return ptlrpc.Connect(r, s.Exports, s.TargetUUID(), Supported, 0, ptlrpc.MsgConnectReplayable, func(req, rep *ptlrpc.ConnectData) {
		rep.Index = uint32(s.Index)
		rep.Instance = 1
	})
}

func (s *Service) statfs(r *ptlrpc.Request) *ptlrpc.Reply {
	st := mdt.Statfs{Type: 0x0bd00bd0, Blocks: 1 << 24, Bfree: 1 << 23, Bavail: 1 << 23, Files: 1 << 20,
		Ffree: 1 << 20, FSID: s.FSName, Bsize: 4096, Namelen: 255, Maxbyte: 1 << 50}
	return r.Reply(0, ptlrpc.Set(ptlrpc.FieldOBDStatfs, st.Marshal()))
}

func (s *Service) getattr(r *ptlrpc.Request) *ptlrpc.Reply {
	in := r.Get(ptlrpc.FieldOSTBody)
	if len(in) < ObdoSize {
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	out := make([]byte, ObdoSize)
	copy(out[8:24], in[8:24])            // o_oi
	le.PutUint64(out[0:], 0x1|0x10|0x20) // FLID|FLSIZE|FLBLOCKS
	le.PutUint32(out[80:], 4096)         // o_blksize
	return r.Reply(0, ptlrpc.Set(ptlrpc.FieldOSTBody, out))
}

// Package ost is a simulated object storage target. The namespace keeps
// file sizes on the MDT and gives files no layout, so a client never reads
// objects; the OST exists so that the client's lov has targets to connect
// to, `df` (statfs) has space to report, and getattr of an object answers.
//
// Opcodes handled (request portal 28, replies to 4):
//
//	OST_CONNECT (8)      grants VERSION|FID|FULL20|AT ∩ asked
//	OST_DISCONNECT (9)   drops the export (in the server's generic code)
//	OST_STATFS (13)      obd_statfs
//	OST_GETATTR (1)      the object echoed back with size 0 (no object holds data)
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
}

// New returns OST number index of fsname.
func New(fsname string, index int, ex *ptlrpc.Exports) *Service {
	return &Service{FSName: fsname, Index: index, Exports: ex}
}

// TargetUUID is the OST's UUID.
func (s *Service) TargetUUID() string { return fmt.Sprintf("%s-OST%04x_UUID", s.FSName, s.Index) }

// Opcodes lists what Handle implements.
func (s *Service) Opcodes() []uint32 {
	return []uint32{ptlrpc.OSTConnect, ptlrpc.OSTStatfs, ptlrpc.OSTGetattr}
}

// Handle serves one OST request.
func (s *Service) Handle(r *ptlrpc.Request) *ptlrpc.Reply {
	switch r.Body.Opc {
	case ptlrpc.OSTConnect:
		return ptlrpc.Connect(r, s.Exports, s.TargetUUID(), Supported, 0, ptlrpc.MsgConnectReplayable, func(req, rep *ptlrpc.ConnectData) {
			rep.Index = uint32(s.Index)
			rep.Instance = 1
		})
	case ptlrpc.OSTStatfs:
		st := mdt.Statfs{Type: 0x0bd00bd0, Blocks: 1 << 24, Bfree: 1 << 23, Bavail: 1 << 23, Files: 1 << 20,
			Ffree: 1 << 20, FSID: s.FSName, Bsize: 4096, Namelen: 255, Maxbyte: 1 << 50}
		return ptlrpc.StatusReply(0, st.Marshal())
	case ptlrpc.OSTGetattr:
		in := r.Msg.Buf(1)
		if len(in) < ObdoSize {
			return ptlrpc.ErrorReply(ptlrpc.EPROTO)
		}
		out := make([]byte, ObdoSize)
		copy(out[8:24], in[8:24])            // o_oi
		le.PutUint64(out[0:], 0x1|0x10|0x20) // FLID|FLSIZE|FLBLOCKS
		le.PutUint32(out[80:], 4096)         // o_blksize
		return ptlrpc.StatusReply(0, out)
	}
	return ptlrpc.ErrorReply(ptlrpc.EOPNOTSUPP)
}

package lnet

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var le = binary.LittleEndian

// Wire constants (lnet-idl.h, socklnd.h, socklnd-idl.h).
const (
	AcceptorMagic   = 0xacce7100 // lnet_acceptor_connreq.acr_magic
	AcceptorVersion = 1
	ProtoMagic      = 0x45726963 // ksock_hello_msg magic for V2/V3
	ProtoV2         = 2
	ProtoV3         = 3
	PIDLustre       = 12345

	ConnAny     = 0
	ConnControl = 1
	ConnBulkIn  = 2
	ConnBulkOut = 3
	ConnNone    = 0xffffffff

	KsockNOOP = 0xc0
	KsockLNET = 0xc1

	// KeepalivePing is the ZC-ACK cookie value of a V3 keepalive NOOP.
	KeepalivePing = 1

	MsgACK   = 0
	MsgPUT   = 1
	MsgGET   = 2
	MsgREPLY = 3

	// MTU is the largest LNet payload.
	MTU = 1 << 20

	ConnReqSize  = 16
	HelloSize    = 56
	KsockHdrSize = 24
	HeaderSize   = 72

	// ReservedPortal carries LNet pings.
	ReservedPortal = 0
	// PingMatchBits are the match bits of an LNet ping GET.
	PingMatchBits     = 0x8000000000000000
	PingMagic         = 0x70696e67
	niStatusUp        = 0x15aac0de
	pingFeatBase      = 0x1
	pingFeatStatus    = 0x2
	pingFeatMR        = 0x8
	pingFeatDiscovery = 0x10
	maxHelloIPs       = 16
)

// Handle is an LNet wire handle (memory descriptor cookie pair).
type Handle struct{ Interface, Object uint64 }

// HandleNone is the "no handle" value, both cookies all ones.
var HandleNone = Handle{^uint64(0), ^uint64(0)}

// Header is the 72-byte LNet header (struct _lnet_hdr_nid4) with the
// type-dependent union flattened: WMD is ack_wmd (PUT), return_wmd (GET)
// or dst_wmd (ACK, REPLY); Offset is the PUT offset or the GET src_offset.
type Header struct {
	DestNID, SrcNID NID
	DestPID, SrcPID uint32
	Type            uint32
	PayloadLength   uint32
	WMD             Handle
	MatchBits       uint64
	HdrData         uint64 // PUT
	Portal          uint32 // PUT, GET
	Offset          uint32 // PUT offset, GET src_offset
	SinkLength      uint32 // GET
	MLength         uint32 // ACK
}

// TypeName returns the LNet message type name.
func TypeName(t uint32) string {
	switch t {
	case MsgACK:
		return "ACK"
	case MsgPUT:
		return "PUT"
	case MsgGET:
		return "GET"
	case MsgREPLY:
		return "REPLY"
	}
	return fmt.Sprintf("type%d", t)
}

// Marshal writes the header into b, which must hold HeaderSize bytes.
func (h *Header) Marshal(b []byte) {
	_ = b[HeaderSize-1]
	le.PutUint64(b[0:], uint64(h.DestNID))
	le.PutUint64(b[8:], uint64(h.SrcNID))
	le.PutUint32(b[16:], h.DestPID)
	le.PutUint32(b[20:], h.SrcPID)
	le.PutUint32(b[24:], h.Type)
	le.PutUint32(b[28:], h.PayloadLength)
	clear(b[32:72])
	le.PutUint64(b[32:], h.WMD.Interface)
	le.PutUint64(b[40:], h.WMD.Object)
	le.PutUint64(b[48:], h.MatchBits)
	switch h.Type {
	case MsgPUT:
		le.PutUint64(b[56:], h.HdrData)
		le.PutUint32(b[64:], h.Portal)
		le.PutUint32(b[68:], h.Offset)
	case MsgGET:
		le.PutUint32(b[56:], h.Portal)
		le.PutUint32(b[60:], h.Offset)
		le.PutUint32(b[64:], h.SinkLength)
	case MsgACK:
		le.PutUint32(b[56:], h.MLength)
	case MsgREPLY:
		clear(b[48:72])
	}
}

// ErrBadHeader is wrapped by every header decoding error.
var ErrBadHeader = errors.New("bad LNet header")

// Unmarshal decodes a header from b and checks it for consistency.
func (h *Header) Unmarshal(b []byte) error {
	if len(b) < HeaderSize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrBadHeader, len(b), HeaderSize)
	}
	*h = Header{
		DestNID:       NID(le.Uint64(b[0:])),
		SrcNID:        NID(le.Uint64(b[8:])),
		DestPID:       le.Uint32(b[16:]),
		SrcPID:        le.Uint32(b[20:]),
		Type:          le.Uint32(b[24:]),
		PayloadLength: le.Uint32(b[28:]),
		WMD:           Handle{le.Uint64(b[32:]), le.Uint64(b[40:])},
	}
	switch h.Type {
	case MsgPUT:
		h.MatchBits = le.Uint64(b[48:])
		h.HdrData = le.Uint64(b[56:])
		h.Portal = le.Uint32(b[64:])
		h.Offset = le.Uint32(b[68:])
	case MsgGET:
		h.MatchBits = le.Uint64(b[48:])
		h.Portal = le.Uint32(b[56:])
		h.Offset = le.Uint32(b[60:])
		h.SinkLength = le.Uint32(b[64:])
	case MsgACK:
		h.MatchBits = le.Uint64(b[48:])
		h.MLength = le.Uint32(b[56:])
	case MsgREPLY:
	default:
		return fmt.Errorf("%w: unknown message type %d", ErrBadHeader, h.Type)
	}
	if h.PayloadLength > MTU {
		return fmt.Errorf("%w: payload length %d exceeds the %d-byte LNet MTU", ErrBadHeader, h.PayloadLength, MTU)
	}
	if (h.Type == MsgGET || h.Type == MsgACK) && h.PayloadLength != 0 {
		return fmt.Errorf("%w: %s with payload length %d", ErrBadHeader, TypeName(h.Type), h.PayloadLength)
	}
	return nil
}

// ConnReq is the acceptor connection request that opens every socket.
type ConnReq struct {
	Version uint32
	NID     NID // the target (server) NID the client dialled
}

// Marshal encodes the request (16 bytes).
func (c *ConnReq) Marshal() []byte {
	b := make([]byte, ConnReqSize)
	le.PutUint32(b[0:], AcceptorMagic)
	le.PutUint32(b[4:], c.Version)
	le.PutUint64(b[8:], uint64(c.NID))
	return b
}

// UnmarshalConnReq decodes and checks an acceptor request.
func UnmarshalConnReq(b []byte) (ConnReq, error) {
	if len(b) < ConnReqSize {
		return ConnReq{}, fmt.Errorf("lnet: acceptor request is %d bytes, want %d", len(b), ConnReqSize)
	}
	m := le.Uint32(b)
	switch m {
	case AcceptorMagic:
	case swap32(AcceptorMagic):
		return ConnReq{}, fmt.Errorf("lnet: acceptor magic %#08x is byte-swapped: big-endian peers are not supported", m)
	default:
		return ConnReq{}, fmt.Errorf("lnet: acceptor magic %#08x, want %#08x", m, AcceptorMagic)
	}
	c := ConnReq{Version: le.Uint32(b[4:]), NID: NID(le.Uint64(b[8:]))}
	if c.Version != AcceptorVersion {
		return c, fmt.Errorf("lnet: acceptor version %d, only %d is supported", c.Version, AcceptorVersion)
	}
	return c, nil
}

// Hello is a socklnd V2/V3 HELLO (struct ksock_hello_msg_nid4).
type Hello struct {
	Version                        uint32
	SrcNID, DstNID                 NID
	SrcPID, DstPID                 uint32
	SrcIncarnation, DstIncarnation uint64
	ConnType                       uint32
	IPs                            []uint32
}

// Marshal encodes the HELLO.
func (h *Hello) Marshal() []byte {
	b := make([]byte, HelloSize+4*len(h.IPs))
	le.PutUint32(b[0:], ProtoMagic)
	le.PutUint32(b[4:], h.Version)
	le.PutUint64(b[8:], uint64(h.SrcNID))
	le.PutUint64(b[16:], uint64(h.DstNID))
	le.PutUint32(b[24:], h.SrcPID)
	le.PutUint32(b[28:], h.DstPID)
	le.PutUint64(b[32:], h.SrcIncarnation)
	le.PutUint64(b[40:], h.DstIncarnation)
	le.PutUint32(b[48:], h.ConnType)
	le.PutUint32(b[52:], uint32(len(h.IPs)))
	for i, ip := range h.IPs {
		le.PutUint32(b[56+4*i:], ip)
	}
	return b
}

// UnmarshalHello decodes the fixed 56-byte part of a HELLO; the caller
// reads NIPs more addresses (HelloIPs reports how many).
func UnmarshalHello(b []byte) (Hello, error) {
	if len(b) < HelloSize {
		return Hello{}, fmt.Errorf("lnet: HELLO is %d bytes, want %d", len(b), HelloSize)
	}
	m := le.Uint32(b)
	switch m {
	case ProtoMagic:
	case swap32(ProtoMagic):
		return Hello{}, fmt.Errorf("lnet: HELLO magic %#08x is byte-swapped: big-endian peers are not supported", m)
	default:
		return Hello{}, fmt.Errorf("lnet: HELLO magic %#08x, want %#08x (socklnd V2/V3)", m, ProtoMagic)
	}
	h := Hello{
		Version:        le.Uint32(b[4:]),
		SrcNID:         NID(le.Uint64(b[8:])),
		DstNID:         NID(le.Uint64(b[16:])),
		SrcPID:         le.Uint32(b[24:]),
		DstPID:         le.Uint32(b[28:]),
		SrcIncarnation: le.Uint64(b[32:]),
		DstIncarnation: le.Uint64(b[40:]),
		ConnType:       le.Uint32(b[48:]),
	}
	if h.Version != ProtoV2 && h.Version != ProtoV3 {
		return h, fmt.Errorf("lnet: socklnd protocol version %d, want %d or %d", h.Version, ProtoV2, ProtoV3)
	}
	n := le.Uint32(b[52:])
	if n > maxHelloIPs {
		return h, fmt.Errorf("lnet: HELLO lists %d IPs, at most %d accepted", n, maxHelloIPs)
	}
	h.IPs = make([]uint32, n)
	return h, nil
}

// InverseConnType returns the connection type the passive side reports
// for the active side's type: bulk in and bulk out swap.
func InverseConnType(t uint32) uint32 {
	switch t {
	case ConnBulkIn:
		return ConnBulkOut
	case ConnBulkOut:
		return ConnBulkIn
	}
	return t
}

// PingInfo builds the lnet_ping_info a ping REPLY carries: 0@lo first,
// then self, with the features a modern Lustre server announces
// (BASE|NI_STATUS|MULTI_RAIL|DISCOVERY). A client's LNet marks a server
// peer it learnt from the configuration log as Multi-Rail before it pings,
// and logs "Multi-Rail state vanished" if the reply says otherwise; a
// discovery PUSH that may follow is ACKed and ignored.
func PingInfo(self NID, seq uint32) []byte {
	b := make([]byte, 16+2*16)
	le.PutUint32(b[0:], PingMagic)
	le.PutUint32(b[4:], pingFeatBase|pingFeatStatus|pingFeatMR|pingFeatDiscovery)
	le.PutUint32(b[8:], PIDLustre)
	le.PutUint32(b[12:], 2)
	le.PutUint64(b[16:], uint64(NIDLo))
	le.PutUint32(b[24:], seq)
	le.PutUint64(b[32:], uint64(self))
	le.PutUint32(b[40:], niStatusUp)
	return b
}

func swap32(v uint32) uint32 { return v>>24 | v>>8&0xff00 | v<<8&0xff0000 | v<<24 }

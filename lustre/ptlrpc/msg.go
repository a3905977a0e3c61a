// Package ptlrpc is Lustre's RPC layer as a server sees it: the
// lustre_msg_v2 container (a header and 8-byte-aligned buffers), the
// ptlrpc_body that opens every message, obd_connect_data, the opcode and
// portal numbers, the export (connected client) table, and Request, which
// carries one received RPC and sends its reply (a PUT to the client's reply
// portal, matched by XID, at the offset early-reply-capable clients expect)
// and any bulk data before it.
//
// Messages are decoded only in little-endian order: a byte-swapped
// lustre_msg magic is refused with an error saying so.
package ptlrpc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var le = binary.LittleEndian

// Message constants (lustre_idl.h).
const (
	MsgMagicV2      = 0x0BD00BD3
	MsgMagicSwapped = 0xD30BD00B
	// MaxBufCount is the most buffers a message may carry
	// (PTLRPC_MAX_BUFCOUNT).
	MaxBufCount = 19
	// MsgHdrATSupport in lm_flags: the sender understands early replies.
	MsgHdrATSupport = 0x1
	msgHdrSize      = 32
)

// ErrBadMsg is wrapped by every decoding error.
var ErrBadMsg = errors.New("bad lustre_msg")

// Msg is a lustre_msg_v2: the header fields a server uses and the
// buffers, which after Unpack are slices of the input.
type Msg struct {
	SecFlvr uint32
	RepSize uint32
	Cksum   uint32
	Flags   uint32
	Opc     uint32
	Bufs    [][]byte
}

func round8(n int) int { return (n + 7) &^ 7 }

// HeaderLen is the size of the lustre_msg_v2 header with n buffers.
func HeaderLen(n int) int { return round8(msgHdrSize + 4*n) }

// Size is the packed size of a message with buffers of these lengths.
func Size(lens ...int) int {
	n := HeaderLen(len(lens))
	for _, l := range lens {
		n += round8(l)
	}
	return n
}

// Unpack decodes b. Buffers alias b.
func Unpack(b []byte) (*Msg, error) {
	m := new(Msg)
	if err := m.Unpack(b); err != nil {
		return nil, err
	}
	return m, nil
}

// Unpack decodes b into m, reusing m.Bufs. Buffers alias b.
func (m *Msg) Unpack(b []byte) error {
	if len(b) < msgHdrSize {
		return fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrBadMsg, len(b), msgHdrSize)
	}
	switch magic := le.Uint32(b[8:]); magic {
	case MsgMagicV2:
	case MsgMagicSwapped:
		return fmt.Errorf("%w: magic %#08x is byte-swapped: big-endian senders are not supported", ErrBadMsg, magic)
	default:
		return fmt.Errorf("%w: magic %#08x, want %#08x", ErrBadMsg, magic, MsgMagicV2)
	}
	n := le.Uint32(b)
	if n == 0 || n > MaxBufCount {
		return fmt.Errorf("%w: buffer count %d (want 1..%d)", ErrBadMsg, n, MaxBufCount)
	}
	hl := HeaderLen(int(n))
	if len(b) < hl {
		return fmt.Errorf("%w: %d bytes, shorter than the %d-byte header of %d buffers", ErrBadMsg, len(b), hl, n)
	}
	m.SecFlvr = le.Uint32(b[4:])
	m.RepSize = le.Uint32(b[12:])
	m.Cksum = le.Uint32(b[16:])
	m.Flags = le.Uint32(b[20:])
	m.Opc = le.Uint32(b[24:])
	if cap(m.Bufs) < int(n) {
		m.Bufs = make([][]byte, 0, n)
	}
	m.Bufs = m.Bufs[:0]
	off := hl
	for i := 0; i < int(n); i++ {
		l := int(le.Uint32(b[msgHdrSize+4*i:]))
		if l < 0 || l > len(b)-off {
			return fmt.Errorf("%w: buffer %d of length %d at offset %d overruns the %d-byte message", ErrBadMsg, i, l, off, len(b))
		}
		m.Bufs = append(m.Bufs, b[off:off+l:off+l])
		off += round8(l)
		if off > len(b) {
			// Padding of the last buffer may be absent; nothing follows.
			if i != int(n)-1 {
				return fmt.Errorf("%w: buffer %d padding overruns the message", ErrBadMsg, i)
			}
		}
	}
	return nil
}

// AppendPack appends the packed message to dst.
func (m *Msg) AppendPack(dst []byte) []byte {
	n := len(m.Bufs)
	hl := HeaderLen(n)
	start := len(dst)
	total := hl
	for _, b := range m.Bufs {
		total += round8(len(b))
	}
	dst = append(dst, make([]byte, total)...)
	b := dst[start:]
	le.PutUint32(b[0:], uint32(n))
	le.PutUint32(b[4:], m.SecFlvr)
	le.PutUint32(b[8:], MsgMagicV2)
	le.PutUint32(b[12:], m.RepSize)
	le.PutUint32(b[16:], m.Cksum)
	le.PutUint32(b[20:], m.Flags)
	le.PutUint32(b[24:], m.Opc)
	off := hl
	for i, buf := range m.Bufs {
		le.PutUint32(b[msgHdrSize+4*i:], uint32(len(buf)))
		copy(b[off:], buf)
		off += round8(len(buf))
	}
	return dst
}

// Pack returns the packed message.
func (m *Msg) Pack() []byte { return m.AppendPack(nil) }

// Buf returns buffer i, or nil if the message has fewer buffers.
func (m *Msg) Buf(i int) []byte {
	if i < len(m.Bufs) {
		return m.Bufs[i]
	}
	return nil
}

// String returns a C-style NUL-terminated string held in buffer i.
func (m *Msg) String(i int) string {
	b := m.Buf(i)
	for j, c := range b {
		if c == 0 {
			return string(b[:j])
		}
	}
	return string(b)
}

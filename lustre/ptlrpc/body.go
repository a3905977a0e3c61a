package ptlrpc

import "fmt"

// ptlrpc_body message types and version.
const (
	MsgRequest = 4711
	MsgErr     = 4712
	MsgReply   = 4713
	// MsgVersion is the low 16 bits of pb_version.
	MsgVersion = 3
	// BodySize is sizeof(struct ptlrpc_body_v3); BodySizeV2 the older one.
	BodySize   = 184
	BodySizeV2 = 152
)

// pb_op_flags values used by connect.
const (
	MsgConnectRecovering = 0x1
	MsgConnectReconnect  = 0x2
	MsgConnectReplayable = 0x4
	MsgConnectInitial    = 0x20
)

// Body is struct ptlrpc_body_v3.
type Body struct {
	Handle        uint64
	Type          uint32
	Version       uint32
	Opc           uint32
	Status        int32
	LastXID       uint64
	Tag           uint16
	LastCommitted uint64
	Transno       uint64
	Flags         uint32
	OpFlags       uint32
	ConnCnt       uint32
	Timeout       uint32
	ServiceTime   uint32
	Limit         uint32
	SLV           uint64
	MBits         uint64
	UID, GID      uint32
	JobID         [32]byte
	ProjID        uint32
	PreVersions   [4]uint64
	Padding64     [2]uint64
}

// Marshal writes the body into b (BodySize bytes).
func (p *Body) Marshal(b []byte) {
	_ = b[BodySize-1]
	clear(b[:BodySize])
	le.PutUint64(b[0:], p.Handle)
	le.PutUint32(b[8:], p.Type)
	le.PutUint32(b[12:], p.Version)
	le.PutUint32(b[16:], p.Opc)
	le.PutUint32(b[20:], uint32(p.Status))
	le.PutUint64(b[24:], p.LastXID)
	le.PutUint16(b[32:], p.Tag)
	le.PutUint32(b[36:], p.ProjID)
	le.PutUint64(b[40:], p.LastCommitted)
	le.PutUint64(b[48:], p.Transno)
	le.PutUint32(b[56:], p.Flags)
	le.PutUint32(b[60:], p.OpFlags)
	le.PutUint32(b[64:], p.ConnCnt)
	le.PutUint32(b[68:], p.Timeout)
	le.PutUint32(b[72:], p.ServiceTime)
	le.PutUint32(b[76:], p.Limit)
	le.PutUint64(b[80:], p.SLV)
	for i, v := range p.PreVersions {
		le.PutUint64(b[88+8*i:], v)
	}
	le.PutUint64(b[120:], p.MBits)
	le.PutUint64(b[128:], p.Padding64[0])
	le.PutUint64(b[136:], p.Padding64[1])
	le.PutUint32(b[144:], p.UID)
	le.PutUint32(b[148:], p.GID)
	copy(b[152:184], p.JobID[:])
}

// UnmarshalBody decodes a ptlrpc_body (v3, or the 152-byte v2).
func UnmarshalBody(b []byte) (Body, error) {
	var p Body
	if len(b) < BodySizeV2 {
		return p, fmt.Errorf("%w: ptlrpc_body is %d bytes, want %d or %d", ErrBadMsg, len(b), BodySizeV2, BodySize)
	}
	p.Handle = le.Uint64(b[0:])
	p.Type = le.Uint32(b[8:])
	p.Version = le.Uint32(b[12:])
	p.Opc = le.Uint32(b[16:])
	p.Status = int32(le.Uint32(b[20:]))
	p.LastXID = le.Uint64(b[24:])
	p.Tag = le.Uint16(b[32:])
	p.ProjID = le.Uint32(b[36:])
	p.LastCommitted = le.Uint64(b[40:])
	p.Transno = le.Uint64(b[48:])
	p.Flags = le.Uint32(b[56:])
	p.OpFlags = le.Uint32(b[60:])
	p.ConnCnt = le.Uint32(b[64:])
	p.Timeout = le.Uint32(b[68:])
	p.ServiceTime = le.Uint32(b[72:])
	p.Limit = le.Uint32(b[76:])
	p.SLV = le.Uint64(b[80:])
	for i := range p.PreVersions {
		p.PreVersions[i] = le.Uint64(b[88+8*i:])
	}
	p.MBits = le.Uint64(b[120:])
	p.Padding64[0] = le.Uint64(b[128:])
	p.Padding64[1] = le.Uint64(b[136:])
	p.UID = le.Uint32(b[144:])
	p.GID = le.Uint32(b[148:])
	if len(b) >= BodySize {
		copy(p.JobID[:], b[152:184])
	}
	if p.Version&0xffff != MsgVersion {
		return p, fmt.Errorf("%w: ptlrpc_body version %#x, want low 16 bits %d", ErrBadMsg, p.Version, MsgVersion)
	}
	return p, nil
}

// ConnectDataSize is sizeof(struct obd_connect_data).
const ConnectDataSize = 192

// ConnectData is struct obd_connect_data.
type ConnectData struct {
	Flags        uint64
	Version      uint32
	Grant        uint32
	Index        uint32
	BrwSize      uint32
	IbitsKnown   uint64
	GrantBlkbits uint8
	GrantInobits uint8
	GrantTaxKB   uint16
	GrantMaxBlks uint32
	Transno      uint64
	Group        uint32
	CksumTypes   uint32
	MaxEASize    uint32
	Instance     uint32
	MaxBytes     uint64
	MaxModRPCs   uint16
	ConnPolicy   uint8
	Flags2       uint64
	ComprType    uint64
}

// Marshal encodes the connect data (192 bytes).
func (c *ConnectData) Marshal() []byte {
	b := make([]byte, ConnectDataSize)
	le.PutUint64(b[0:], c.Flags)
	le.PutUint32(b[8:], c.Version)
	le.PutUint32(b[12:], c.Grant)
	le.PutUint32(b[16:], c.Index)
	le.PutUint32(b[20:], c.BrwSize)
	le.PutUint64(b[24:], c.IbitsKnown)
	b[32] = c.GrantBlkbits
	b[33] = c.GrantInobits
	le.PutUint16(b[34:], c.GrantTaxKB)
	le.PutUint32(b[36:], c.GrantMaxBlks)
	le.PutUint64(b[40:], c.Transno)
	le.PutUint32(b[48:], c.Group)
	le.PutUint32(b[52:], c.CksumTypes)
	le.PutUint32(b[56:], c.MaxEASize)
	le.PutUint32(b[60:], c.Instance)
	le.PutUint64(b[64:], c.MaxBytes)
	le.PutUint16(b[72:], c.MaxModRPCs)
	b[74] = c.ConnPolicy
	le.PutUint64(b[80:], c.Flags2)
	le.PutUint64(b[88:], c.ComprType)
	return b
}

// UnmarshalConnectData decodes connect data. Older clients send shorter
// structures; missing fields read as zero.
func UnmarshalConnectData(in []byte) (ConnectData, error) {
	var c ConnectData
	if len(in) < 8 {
		return c, fmt.Errorf("%w: obd_connect_data is %d bytes", ErrBadMsg, len(in))
	}
	b := make([]byte, ConnectDataSize)
	copy(b, in)
	c.Flags = le.Uint64(b[0:])
	c.Version = le.Uint32(b[8:])
	c.Grant = le.Uint32(b[12:])
	c.Index = le.Uint32(b[16:])
	c.BrwSize = le.Uint32(b[20:])
	c.IbitsKnown = le.Uint64(b[24:])
	c.GrantBlkbits = b[32]
	c.GrantInobits = b[33]
	c.GrantTaxKB = le.Uint16(b[34:])
	c.GrantMaxBlks = le.Uint32(b[36:])
	c.Transno = le.Uint64(b[40:])
	c.Group = le.Uint32(b[48:])
	c.CksumTypes = le.Uint32(b[52:])
	c.MaxEASize = le.Uint32(b[56:])
	c.Instance = le.Uint32(b[60:])
	c.MaxBytes = le.Uint64(b[64:])
	c.MaxModRPCs = le.Uint16(b[72:])
	c.ConnPolicy = b[74]
	c.Flags2 = le.Uint64(b[80:])
	c.ComprType = le.Uint64(b[88:])
	return c, nil
}

// Connect flags (obd_connect_data.ocd_connect_flags) this code refers to.
const (
	ConnectIndex     = 0x2
	ConnectGrant     = 0x8
	ConnectVersion   = 0x20
	ConnectACL       = 0x80
	ConnectXattr     = 0x100
	ConnectIbits     = 0x1000
	ConnectAttrFID   = 0x4000
	ConnectNodevoh   = 0x8000
	ConnectBrwSize   = 0x40000
	ConnectAT        = 0x1000000
	ConnectCksum     = 0x20000000
	ConnectFID       = 0x40000000
	ConnectLOVv3     = 0x100000000
	ConnectFull20    = 0x1000000000
	ConnectMaxBytes  = 0x8000000000
	ConnectImpRecov  = 0x10000000000
	ConnectLVBType   = 0x400000000000
	ConnectPingless  = 0x4000000000000
	ConnectOpenByFID = 0x20000000000000
	ConnectBulkMBits = 0x2000000000000000
	ConnectFlags2    = 0x8000000000000000
)

// Version returns OBD_OCD_VERSION(a,b,c,d).
func Version(a, b, c, d uint32) uint32 { return a<<24 | b<<16 | c<<8 | d }

// ServerVersion is the Lustre version this server reports (2.15.0.0).
var ServerVersion = Version(2, 15, 0, 0)

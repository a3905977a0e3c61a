package mdt

import (
	"encoding/binary"
	"fmt"

	"github.com/kregress/kregress/lustre/ldlm"
	"github.com/kregress/kregress/lustre/namespace"
	"github.com/kregress/kregress/lustre/ptlrpc"
)

var le = binary.LittleEndian

// BodySize is sizeof(struct mdt_body).
const BodySize = 216

// OBD_MD_* valid bits.
const (
	MDFlID       = 0x1
	MDFlAtime    = 0x2
	MDFlMtime    = 0x4
	MDFlCtime    = 0x8
	MDFlSize     = 0x10
	MDFlBlocks   = 0x20
	MDFlMode     = 0x80
	MDFlType     = 0x100
	MDFlUID      = 0x200
	MDFlGID      = 0x400
	MDFlFlags    = 0x800
	MDFlNlink    = 0x2000
	MDFlRdev     = 0x10000
	MDLinkName   = 0x40000
	MDFlHandle   = 0x80000
	MDFlXattrLs  = 0x2000000000
	MDFlACL      = 0x8000000000
	MDFlGetattr  = MDFlID | MDFlAtime | MDFlMtime | MDFlCtime | MDFlSize | MDFlBlocks | MDFlMode | MDFlType | MDFlUID | MDFlGID | MDFlFlags | MDFlNlink | MDFlRdev
	fidSize      = 16
	luPageSize   = 4096
	dirEndOff    = 0xfffffffffffffffe
	ldfEmpty     = 0x1
	ludaFID      = 0x1
	ludaType     = 0x2
	direntHdr    = 32
	dirpageHdr   = 24
	recReintSize = 136
)

// Body is struct mdt_body (the fields this server uses).
type Body struct {
	FID1, FID2 namespace.FID
	OpenHandle uint64
	Valid      uint64
	Size       uint64
	Mtime      int64
	Atime      int64
	Ctime      int64
	Blocks     uint64
	Mode       uint32
	UID        uint32
	GID        uint32
	Flags      uint32
	Rdev       uint32
	Nlink      uint32
	EASize     uint32
	MaxMDSize  uint32
}

// PutFID writes a lu_fid.
func PutFID(b []byte, f namespace.FID) {
	le.PutUint64(b[0:], f.Seq)
	le.PutUint32(b[8:], f.Oid)
	le.PutUint32(b[12:], f.Ver)
}

// GetFID reads a lu_fid.
func GetFID(b []byte) namespace.FID {
	return namespace.FID{Seq: le.Uint64(b[0:]), Oid: le.Uint32(b[8:]), Ver: le.Uint32(b[12:])}
}

// Marshal encodes the body (216 bytes).
func (m *Body) Marshal() []byte {
	b := make([]byte, BodySize)
	PutFID(b[0:], m.FID1)
	PutFID(b[16:], m.FID2)
	le.PutUint64(b[32:], m.OpenHandle)
	le.PutUint64(b[40:], m.Valid)
	le.PutUint64(b[48:], m.Size)
	le.PutUint64(b[56:], uint64(m.Mtime))
	le.PutUint64(b[64:], uint64(m.Atime))
	le.PutUint64(b[72:], uint64(m.Ctime))
	le.PutUint64(b[80:], m.Blocks)
	le.PutUint32(b[116:], m.Mode)
	le.PutUint32(b[120:], m.UID)
	le.PutUint32(b[124:], m.GID)
	le.PutUint32(b[128:], m.Flags)
	le.PutUint32(b[132:], m.Rdev)
	le.PutUint32(b[136:], m.Nlink)
	le.PutUint32(b[148:], m.EASize)
	le.PutUint32(b[156:], m.MaxMDSize)
	return b
}

// UnmarshalBody decodes an mdt_body.
func UnmarshalBody(b []byte) (Body, error) {
	var m Body
	if len(b) < BodySize {
		return m, fmt.Errorf("%w: mdt_body is %d bytes, want %d", ptlrpc.ErrBadMsg, len(b), BodySize)
	}
	m.FID1 = GetFID(b[0:])
	m.FID2 = GetFID(b[16:])
	m.OpenHandle = le.Uint64(b[32:])
	m.Valid = le.Uint64(b[40:])
	m.Size = le.Uint64(b[48:])
	m.Mtime = int64(le.Uint64(b[56:]))
	m.Atime = int64(le.Uint64(b[64:]))
	m.Ctime = int64(le.Uint64(b[72:]))
	m.Blocks = le.Uint64(b[80:])
	m.Mode = le.Uint32(b[116:])
	m.UID = le.Uint32(b[120:])
	m.GID = le.Uint32(b[124:])
	m.Flags = le.Uint32(b[128:])
	m.Rdev = le.Uint32(b[132:])
	m.Nlink = le.Uint32(b[136:])
	m.EASize = le.Uint32(b[148:])
	m.MaxMDSize = le.Uint32(b[156:])
	return m, nil
}

// AttrBody fills a body with a node's attributes.
func AttrBody(n *namespace.Node) Body {
	return Body{
		FID1: n.FID, Valid: MDFlGetattr, Size: n.Size, Mtime: n.Mtime, Atime: n.Atime, Ctime: n.Ctime,
		Blocks: n.Blocks(), Mode: n.Mode, UID: n.UID, GID: n.GID, Nlink: n.Nlink,
	}
}

// ResourceOf is the lock resource of a FID (fid_build_reg_res_name).
func ResourceOf(f namespace.FID) ldlm.Resource {
	return ldlm.Resource{f.Seq, uint64(f.Oid) | uint64(f.Ver)<<32, 0, 0}
}

// FIDOfResource is the inverse of ResourceOf.
func FIDOfResource(r ldlm.Resource) namespace.FID {
	return namespace.FID{Seq: r[0], Oid: uint32(r[1]), Ver: uint32(r[1] >> 32)}
}

// DirEntSize is lu_dirent_calc_size for an entry with a type.
func DirEntSize(namelen int) int {
	size := (direntHdr + namelen + 1 + 1) &^ 1
	size += 2
	return (size + 7) &^ 7
}

// DirPages packs entries into lu_dirpages of 4096 bytes, at most maxBytes
// in all (rounded down to whole pages, at least one page). The first page
// starts at hash from; a page's hash_end is the first hash not in it, or
// the end marker when the directory is exhausted.
func DirPages(ents []namespace.DirEntry, from uint64, maxBytes int, attrs uint32) []byte {
	npages := max(maxBytes/luPageSize, 1)
	out := make([]byte, 0, luPageSize)
	i := 0
	for p := 0; p < npages; p++ {
		page := make([]byte, luPageSize)
		start := from
		if p > 0 {
			if i >= len(ents) {
				break
			}
			start = ents[i].Hash
		}
		off := dirpageHdr
		last := -1
		for i < len(ents) {
			e := ents[i]
			sz := DirEntSize(len(e.Name))
			if off+sz > luPageSize {
				break
			}
			d := page[off:]
			PutFID(d[0:], e.FID)
			le.PutUint64(d[16:], e.Hash)
			le.PutUint16(d[24:], uint16(sz))
			le.PutUint16(d[26:], uint16(len(e.Name)))
			le.PutUint32(d[28:], attrs)
			copy(d[32:], e.Name)
			if attrs&ludaType != 0 {
				le.PutUint16(d[32+(len(e.Name)+1)&^1:], uint16(e.Mode&namespace.ModeType))
			}
			last = off
			off += sz
			i++
		}
		end := uint64(dirEndOff)
		if i < len(ents) {
			end = ents[i].Hash
		}
		le.PutUint64(page[0:], start)
		le.PutUint64(page[8:], end)
		if last < 0 {
			le.PutUint32(page[16:], ldfEmpty)
		} else {
			le.PutUint16(page[last+24:], 0) // last entry: reclen 0
		}
		out = append(out, page...)
		if i >= len(ents) {
			break
		}
	}
	return out
}

// ParseDirPages decodes pages built by DirPages (or a real MDT): the
// entries and the hash_end of the last page.
func ParseDirPages(b []byte) ([]namespace.DirEntry, uint64, error) {
	if len(b) == 0 || len(b)%luPageSize != 0 {
		return nil, 0, fmt.Errorf("mdt: readdir data is %d bytes, not whole %d-byte pages", len(b), luPageSize)
	}
	var out []namespace.DirEntry
	var end uint64
	for p := 0; p < len(b); p += luPageSize {
		page := b[p : p+luPageSize]
		end = le.Uint64(page[8:])
		if le.Uint32(page[16:])&ldfEmpty != 0 {
			continue
		}
		for off := dirpageHdr; ; {
			if off+direntHdr > luPageSize {
				return out, end, fmt.Errorf("mdt: dirent at %d overruns page %d", off, p/luPageSize)
			}
			d := page[off:]
			reclen := int(le.Uint16(d[24:]))
			nl := int(le.Uint16(d[26:]))
			if direntHdr+nl > len(d) {
				return out, end, fmt.Errorf("mdt: dirent name of %d bytes overruns page %d", nl, p/luPageSize)
			}
			e := namespace.DirEntry{FID: GetFID(d), Hash: le.Uint64(d[16:]), Name: string(d[32 : 32+nl])}
			if a := le.Uint32(d[28:]); a&ludaType != 0 {
				tp := 32 + (nl+1)&^1
				if tp+2 > len(d) {
					return out, end, fmt.Errorf("mdt: dirent type overruns page %d", p/luPageSize)
				}
				e.Mode = uint32(le.Uint16(d[tp:]))
			}
			out = append(out, e)
			if reclen == 0 {
				break
			}
			if reclen < direntHdr || reclen%8 != 0 {
				return out, end, fmt.Errorf("mdt: dirent reclen %d in page %d", reclen, p/luPageSize)
			}
			off += reclen
		}
	}
	return out, end, nil
}

// Statfs is struct obd_statfs.
type Statfs struct {
	Type    uint64
	Blocks  uint64
	Bfree   uint64
	Bavail  uint64
	Files   uint64
	Ffree   uint64
	FSID    string
	Bsize   uint32
	Namelen uint32
	Maxbyte uint64
}

// StatfsSize is sizeof(struct obd_statfs).
const StatfsSize = 144

// Marshal encodes the statfs (144 bytes).
func (s *Statfs) Marshal() []byte {
	b := make([]byte, StatfsSize)
	le.PutUint64(b[0:], s.Type)
	le.PutUint64(b[8:], s.Blocks)
	le.PutUint64(b[16:], s.Bfree)
	le.PutUint64(b[24:], s.Bavail)
	le.PutUint64(b[32:], s.Files)
	le.PutUint64(b[40:], s.Ffree)
	copy(b[48:87], s.FSID)
	le.PutUint32(b[88:], s.Bsize)
	le.PutUint32(b[92:], s.Namelen)
	le.PutUint64(b[96:], s.Maxbyte)
	return b
}

// UnmarshalStatfs decodes an obd_statfs.
func UnmarshalStatfs(b []byte) (Statfs, error) {
	var s Statfs
	if len(b) < StatfsSize {
		return s, fmt.Errorf("%w: obd_statfs is %d bytes, want %d", ptlrpc.ErrBadMsg, len(b), StatfsSize)
	}
	s.Type = le.Uint64(b[0:])
	s.Blocks = le.Uint64(b[8:])
	s.Bfree = le.Uint64(b[16:])
	s.Bavail = le.Uint64(b[24:])
	s.Files = le.Uint64(b[32:])
	s.Ffree = le.Uint64(b[40:])
	s.Bsize = le.Uint32(b[88:])
	s.Namelen = le.Uint32(b[92:])
	s.Maxbyte = le.Uint64(b[96:])
	return s, nil
}

package mgs

import (
	"fmt"

	"github.com/kregress/kregress/lustre/lnet"
)

// Record is one decoded llog record.
type Record struct {
	Index   uint32
	Type    uint32
	Command uint32   // lustre_cfg command (config records)
	NID     lnet.NID // lcfg_nid
	Bufs    [][]byte // lustre_cfg buffers
}

// Marker returns the flags and target name of a MARKER record.
func (r *Record) Marker() (flags uint32, target string, ok bool) {
	if r.Command != cmMarker || len(r.Bufs) < 2 || len(r.Bufs[1]) < cfgMarkerSize {
		return 0, "", false
	}
	m := r.Bufs[1]
	return le.Uint32(m[4:]), cstr(m[32:96]), true
}

// Str returns buffer i as a string without its NUL.
func (r *Record) Str(i int) string {
	if i >= len(r.Bufs) {
		return ""
	}
	return cstr(r.Bufs[i])
}

// Command names used in String.
var cmdNames = map[uint32]string{cmAttach: "attach", cmSetup: "setup", cmAddUUID: "add_uuid", cmMountOpt: "mount_option",
	cmLOVAddOBD: "lov_add_obd", cmMarker: "marker", cmAddMDC: "add_mdc"}

// CommandName returns the lctl name of a config command.
func CommandName(c uint32) string {
	if n, ok := cmdNames[c]; ok {
		return n
	}
	return fmt.Sprintf("cmd%#x", c)
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// ParseRecords decodes the records in a chunk (or several), stopping at
// zero padding. It never reads outside data.
func ParseRecords(data []byte) ([]Record, error) {
	var out []Record
	for off := 0; off+16 <= len(data); {
		l := int(le.Uint32(data[off:]))
		if l == 0 {
			// Zero padding up to the end of the chunk.
			off = (off/ChunkSize + 1) * ChunkSize
			continue
		}
		if l < 24 || l%8 != 0 || l > len(data)-off {
			return out, fmt.Errorf("mgs: llog record at offset %d has length %d", off, l)
		}
		rec := Record{Index: le.Uint32(data[off+4:]), Type: le.Uint32(data[off+8:])}
		if tl, ti := le.Uint32(data[off+l-8:]), le.Uint32(data[off+l-4:]); int(tl) != l || ti != rec.Index {
			return out, fmt.Errorf("mgs: llog record %d at offset %d: tail says length %d index %d", rec.Index, off, tl, ti)
		}
		if rec.Type == obdCfgRec {
			body := data[off+16 : off+l-8]
			if len(body) < 32 || le.Uint32(body) != lcfgVersion {
				return out, fmt.Errorf("mgs: llog record %d: bad lustre_cfg", rec.Index)
			}
			rec.Command = le.Uint32(body[4:])
			rec.NID = lnet.NID(le.Uint64(body[16:]))
			n := int(le.Uint32(body[28:]))
			hl := round8(32 + 4*n)
			if n > 32 || hl > len(body) {
				return out, fmt.Errorf("mgs: llog record %d: %d buffers do not fit", rec.Index, n)
			}
			p := hl
			for i := 0; i < n; i++ {
				bl := int(le.Uint32(body[32+4*i:]))
				if bl > len(body)-p {
					return out, fmt.Errorf("mgs: llog record %d: buffer %d overruns the record", rec.Index, i)
				}
				rec.Bufs = append(rec.Bufs, body[p:p+bl])
				p += round8(bl)
			}
		}
		out = append(out, rec)
		off += l
	}
	return out, nil
}

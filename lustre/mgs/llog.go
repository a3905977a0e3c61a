package mgs

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/kregress/kregress/lustre/lnet"
)

var le = binary.LittleEndian

// llog and config-record constants (lustre_idl.h, lustre_cfg.h).
const (
	ChunkSize     = 8192
	llogHdrMagic  = 0x10645539
	obdCfgRec     = 0x10620000
	llogPadMagic  = 0x10600000
	llogFIsPlain  = 0x4
	bitmapOffset  = 88
	lcfgVersion   = 0x1cf60001
	cmAttach      = 0xcf001
	cmSetup       = 0xcf003
	cmAddUUID     = 0xcf005
	cmMountOpt    = 0xcf007
	cmLOVAddOBD   = 0xcf00d
	cmMarker      = 0xcf010
	cmAddMDC      = 0xcf014
	cmStart       = 0x1
	cmEnd         = 0x2
	lovDescMagic  = 0xB0CCDE5C
	cfgMarkerSize = 160
)

func round8(n int) int { return (n + 7) &^ 7 }

// lcfgBuf is one lustre_cfg buffer; nil is the zero-length "NULL" buffer.
type lcfgBuf []byte

func str(s string) lcfgBuf { return append([]byte(s), 0) }

func lustreCfg(cmd uint32, nid lnet.NID, bufs ...lcfgBuf) []byte {
	hl := round8(32 + 4*len(bufs))
	n := hl
	for _, b := range bufs {
		n += round8(len(b))
	}
	out := make([]byte, n)
	le.PutUint32(out[0:], lcfgVersion)
	le.PutUint32(out[4:], cmd)
	le.PutUint64(out[16:], uint64(nid))
	le.PutUint32(out[28:], uint32(len(bufs)))
	off := hl
	for i, b := range bufs {
		le.PutUint32(out[32+4*i:], uint32(len(b)))
		copy(out[off:], b)
		off += round8(len(b))
	}
	return out
}

// Log is a plain llog file: an 8192-byte header and 8192-byte chunks of
// records, none crossing a chunk boundary.
type Log struct {
	data  []byte // header + records
	count int    // records
	step  uint32
	ctime int64
}

func newLog(ctime int64) *Log {
	return &Log{data: make([]byte, ChunkSize), ctime: ctime}
}

func (l *Log) addRecord(typ uint32, body []byte) {
	reclen := 16 + round8(len(body)) + 8
	off := len(l.data)
	if left := ChunkSize - off%ChunkSize; reclen > left {
		// Pad to the end of the chunk with a record of its own.
		l.count++
		pad := make([]byte, left)
		le.PutUint32(pad[0:], uint32(left))
		le.PutUint32(pad[4:], uint32(l.count))
		le.PutUint32(pad[8:], llogPadMagic)
		le.PutUint32(pad[left-8:], uint32(left))
		le.PutUint32(pad[left-4:], uint32(l.count))
		l.data = append(l.data, pad...)
	}
	l.count++
	rec := make([]byte, reclen)
	le.PutUint32(rec[0:], uint32(reclen))
	le.PutUint32(rec[4:], uint32(l.count))
	le.PutUint32(rec[8:], typ)
	copy(rec[16:], body)
	le.PutUint32(rec[reclen-8:], uint32(reclen))
	le.PutUint32(rec[reclen-4:], uint32(l.count))
	l.data = append(l.data, rec...)
}

func (l *Log) cfg(cmd uint32, nid lnet.NID, bufs ...lcfgBuf) {
	l.addRecord(obdCfgRec, lustreCfg(cmd, nid, bufs...))
}

func (l *Log) marker(flags uint32, tgt, comment string) {
	if flags&cmStart != 0 {
		l.step++
	}
	m := make([]byte, cfgMarkerSize)
	le.PutUint32(m[0:], l.step)
	le.PutUint32(m[4:], flags)
	le.PutUint32(m[8:], 0x020f0000)
	le.PutUint64(m[16:], uint64(l.ctime))
	copy(m[32:95], tgt)
	copy(m[96:159], comment)
	l.cfg(cmMarker, 0, nil, m)
}

// finish writes the header: count, bitmap, tail.
func (l *Log) finish() {
	h := l.data[:ChunkSize]
	le.PutUint32(h[0:], ChunkSize)
	le.PutUint32(h[8:], llogHdrMagic)
	le.PutUint64(h[16:], uint64(l.ctime))
	le.PutUint32(h[24:], uint32(l.count+1))
	le.PutUint32(h[28:], bitmapOffset)
	le.PutUint32(h[36:], llogFIsPlain)
	copy(h[44:84], "config_uuid")
	for i := 0; i <= l.count; i++ {
		h[bitmapOffset+i/8] |= 1 << (i % 8)
	}
	le.PutUint32(h[ChunkSize-8:], ChunkSize)
	le.PutUint32(h[ChunkSize-4:], uint32(l.count))
}

// Header returns the 8192-byte llog_log_hdr.
func (l *Log) Header() []byte { return l.data[:ChunkSize] }

// Len is the file length: header plus records.
func (l *Log) Len() int { return len(l.data) }

// Records is the number of records (including padding records).
func (l *Log) Records() int { return l.count }

// Chunk returns the chunk at byte offset off (a multiple of ChunkSize, past
// the header), zero-padded to ChunkSize, the index of its last record and
// the offset just past its data.
func (l *Log) Chunk(off uint64) (chunk []byte, lastIndex uint32, next uint64, err error) {
	if off < ChunkSize || off%ChunkSize != 0 {
		return nil, 0, 0, fmt.Errorf("mgs: llog offset %d is not a chunk boundary past the header", off)
	}
	if off >= uint64(len(l.data)) {
		return nil, 0, 0, fmt.Errorf("mgs: llog offset %d is at or past the end (%d)", off, len(l.data))
	}
	end := min(off+ChunkSize, uint64(len(l.data)))
	chunk = make([]byte, ChunkSize)
	copy(chunk, l.data[off:end])
	// The last record's tail holds its index.
	lastIndex = le.Uint32(l.data[end-4:])
	return chunk, lastIndex, end, nil
}

// ClientLog builds the "<fsname>-client" configuration log for a server
// reachable at nid with one MDT and osts OSTs, as the MGS writes it: lov and
// lmv setup, the mount options naming them, an mdc for MDT0000 and an osc
// per OST, each section between start and end markers.
func ClientLog(fsname string, nid lnet.NID, osts int) *Log {
	l := newLog(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	lov, lmv := fsname+"-clilov", fsname+"-clilmv"
	nidstr := nid.String()

	l.marker(cmStart, lov, "lov setup")
	l.cfg(cmAttach, 0, str(lov), str("lov"), str(lov+"_UUID"))
	desc := make([]byte, 88)
	le.PutUint32(desc[4:], lovDescMagic)
	le.PutUint32(desc[8:], 1)           // default stripe count
	le.PutUint32(desc[12:], 1)          // RAID0
	le.PutUint64(desc[16:], 1<<20)      // default stripe size
	le.PutUint64(desc[24:], ^uint64(0)) // default stripe offset -1
	le.PutUint32(desc[36:], 5)          // qos maxage
	copy(desc[48:], lov+"_UUID")
	l.cfg(cmSetup, 0, str(lov), desc)
	l.marker(cmEnd, lov, "lov setup")

	l.marker(cmStart, lmv, "lmv setup")
	l.cfg(cmAttach, 0, str(lmv), str("lmv"), str(lmv+"_UUID"))
	mdesc := make([]byte, 88)
	copy(mdesc[48:], lmv+"_UUID")
	l.cfg(cmSetup, 0, str(lmv), mdesc)
	l.marker(cmEnd, lmv, "lmv setup")

	l.marker(cmStart, fsname+"-client", "mount opts")
	l.cfg(cmMountOpt, 0, nil, str(fsname+"-client"), str(lov), str(lmv))
	l.marker(cmEnd, fsname+"-client", "mount opts")

	mdt := fsname + "-MDT0000"
	l.marker(cmStart, mdt, "add mdc")
	l.cfg(cmAddUUID, nid, nil, str(nidstr))
	l.cfg(cmAttach, 0, str(mdt+"-mdc"), str("mdc"), str(lmv+"_UUID"))
	l.cfg(cmSetup, 0, str(mdt+"-mdc"), str(mdt+"_UUID"), str(nidstr))
	l.cfg(cmAddMDC, 0, str(lmv), str(mdt+"_UUID"), str("0"), str("1"), str(mdt+"-mdc_UUID"))
	l.marker(cmEnd, mdt, "add mdc")

	for i := 0; i < osts; i++ {
		ost := fmt.Sprintf("%s-OST%04x", fsname, i)
		l.marker(cmStart, ost, "add osc")
		l.cfg(cmAddUUID, nid, nil, str(nidstr))
		l.cfg(cmAttach, 0, str(ost+"-osc"), str("osc"), str(lov+"_UUID"))
		l.cfg(cmSetup, 0, str(ost+"-osc"), str(ost+"_UUID"), str(nidstr))
		l.cfg(cmLOVAddOBD, 0, str(lov), str(ost+"_UUID"), str(fmt.Sprint(i)), str("1"))
		l.marker(cmEnd, ost, "add osc")
	}
	l.finish()
	return l
}

package mgs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kregress/kregress/lustre/lnet"
)

func sharedDir(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	d := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "lustre", "pcaptest")
	if _, err := os.Stat(d); err != nil {
		t.Skipf("skipping: %s is absent", d)
	}
	return d
}

// TestClientLogMatchesReference builds the MDT-only client log the shared
// reference script writes (fsname lustre, 10.0.0.1@tcp) and compares the
// bytes, ignoring the two timestamps.
func TestClientLogMatchesReference(t *testing.T) {
	d := sharedDir(t)
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("skipping: python3 not installed")
	}
	tmp := t.TempDir()
	for _, f := range []string{"llogtest.py", "mkpcap.py"} {
		b, err := os.ReadFile(filepath.Join(d, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(tmp, f), b, 0o644)
	}
	cmd := exec.Command(py, filepath.Join(tmp, "llogtest.py"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("llogtest.py: %v\n%s", err, out)
	}
	ref, err := os.ReadFile(filepath.Join(tmp, "client_llog.bin"))
	if err != nil {
		t.Fatal(err)
	}
	nid, _ := lnet.ParseNID("10.0.0.1@tcp")
	l := ClientLog("lustre", nid, 0)
	got := bytes.Clone(l.data)
	if len(got) != len(ref) {
		t.Fatalf("log is %d bytes, reference %d", len(got), len(ref))
	}
	// Mask the header timestamp and each marker's createtime.
	mask := func(b []byte) {
		clear(b[16:24])
		recs, err := ParseRecords(b[ChunkSize:])
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Command == cmMarker {
				clear(r.Bufs[1][16:24])
			}
		}
	}
	mask(got)
	mask(ref)
	for i := range got {
		if got[i] != ref[i] {
			t.Fatalf("first difference at byte %d: got %#x, reference %#x", i, got[i], ref[i])
		}
	}
}

func TestClientLogWithOST(t *testing.T) {
	nid, _ := lnet.ParseNID("10.0.2.2@tcp")
	l := ClientLog("testfs", nid, 2)
	recs, err := ParseRecords(l.data[ChunkSize:])
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 17+12 || l.Records() != len(recs) {
		t.Fatalf("%d records (%d counted)", len(recs), l.Records())
	}
	depth := 0
	var setups []string
	for i, r := range recs {
		if r.Index != uint32(i+1) {
			t.Fatalf("record %d has index %d", i+1, r.Index)
		}
		if f, _, ok := r.Marker(); ok {
			if f == cmStart {
				depth++
			} else {
				depth--
			}
			continue
		}
		if depth != 1 {
			t.Fatalf("record %d (%s) outside markers", r.Index, CommandName(r.Command))
		}
		if r.Command == cmSetup {
			setups = append(setups, r.Str(0)+"="+r.Str(1))
		}
		if r.Command == cmAddUUID && r.NID != nid {
			t.Fatalf("add_uuid NID %v", r.NID)
		}
	}
	want := []string{"testfs-clilov=", "testfs-clilmv=", "testfs-MDT0000-mdc=testfs-MDT0000_UUID",
		"testfs-OST0000-osc=testfs-OST0000_UUID", "testfs-OST0001-osc=testfs-OST0001_UUID"}
	for i := range want {
		if i >= len(setups) || len(setups[i]) < len(want[i]) || setups[i][:len(want[i])] != want[i] {
			t.Fatalf("setups %q, want prefixes %q", setups, want)
		}
	}
	h := l.Header()
	if le.Uint32(h[8:]) != llogHdrMagic || le.Uint32(h[24:]) != uint32(len(recs)+1) || le.Uint32(h[ChunkSize-4:]) != uint32(len(recs)) {
		t.Fatal("bad header")
	}
	chunk, last, next, err := l.Chunk(ChunkSize)
	if err != nil || last != uint32(len(recs)) || next != uint64(l.Len()) || len(chunk) != ChunkSize {
		t.Fatalf("chunk: last %d next %d err %v", last, next, err)
	}
	if _, _, _, err := l.Chunk(uint64(2 * ChunkSize)); err == nil {
		t.Fatal("chunk past EOF succeeded")
	}
}

// TestLogPadding fills more than a chunk and checks that no record crosses
// a chunk boundary and the bitmap covers the padding record.
func TestLogPadding(t *testing.T) {
	l := newLog(0)
	for i := 0; i < 100; i++ {
		l.cfg(cmAttach, 0, str("a-rather-long-device-name-to-fill-the-chunk"), str("lov"), str("x_UUID"))
	}
	l.finish()
	recs, err := ParseRecords(l.data[ChunkSize:])
	if err != nil {
		t.Fatal(err)
	}
	pads := 0
	for _, r := range recs {
		if r.Type == llogPadMagic {
			pads++
		}
	}
	if pads == 0 || len(recs) != l.Records() {
		t.Fatalf("%d pads, %d records, %d counted", pads, len(recs), l.Records())
	}
	for i := 0; i <= l.Records(); i++ {
		if l.data[bitmapOffset+i/8]&(1<<(i%8)) == 0 {
			t.Fatalf("bitmap bit %d clear", i)
		}
	}
}

func FuzzParseRecords(f *testing.F) {
	nid, _ := lnet.ParseNID("10.0.2.2@tcp")
	f.Add(ClientLog("testfs", nid, 1).data[ChunkSize:])
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseRecords(b)
	})
}

package ptlrpc

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// rqfFormats reads the HEAD section of ../shared/lustre/RQF_formats.md:
// format name -> request and reply field lists ("RMF_" names).
func rqfFormats(t *testing.T) map[string][2][]string {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "lustre", "RQF_formats.md")
	f, err := os.Open(path)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the format list is missing: %v", err)
		}
		t.Skipf("the format list is missing: %v", err)
	}
	defer f.Close()
	out := map[string][2][]string{}
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "# ") && len(out) > 0 {
			break // the next section (v2_10_0)
		}
		switch {
		case strings.HasPrefix(l, "RQF_"):
			cur = strings.TrimPrefix(strings.Fields(l)[0], "RQF_")
		case cur != "" && strings.HasPrefix(strings.TrimSpace(l), "req:"):
			e := out[cur]
			e[0] = strings.Split(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "req:")), ", ")
			out[cur] = e
		case cur != "" && strings.HasPrefix(strings.TrimSpace(l), "rep:"):
			e := out[cur]
			e[1] = strings.Split(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "rep:")), ", ")
			out[cur] = e
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 30 {
		t.Fatalf("%s: only %d formats read", path, len(out))
	}
	return out
}

func rmf(fields []Field) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = "RMF_" + f.String()
	}
	return out
}

// TestFormatsMatchLayout: every format is field for field the one the
// shared list (from lustre-release's layout.c) gives, except the MDS_REINT
// family, which the list leaves out (read from layout.c itself).
func TestFormatsMatchLayout(t *testing.T) {
	want := rqfFormats(t)
	for _, f := range Formats() {
		w, ok := want[f.Name]
		if !ok {
			if !strings.HasPrefix(f.Name, "MDS_REINT") {
				t.Errorf("format %s is not in the list", f.Name)
			}
			continue
		}
		if got := rmf(f.Req); !slices.Equal(got, w[0]) {
			t.Errorf("%s request: %v, list has %v", f.Name, got, w[0])
		}
		if got := rmf(f.Rep); !slices.Equal(got, w[1]) {
			t.Errorf("%s reply: %v, list has %v", f.Name, got, w[1])
		}
	}
}

// TestFormatOf: the opcode chooses the format, and for LDLM_ENQUEUE the
// buffer count and intent, for MDS_REINT the record's opcode.
func TestFormatOf(t *testing.T) {
	intent := func(it uint64) *Msg {
		b := make([]byte, 8)
		le.PutUint64(b, it)
		return &Msg{Bufs: [][]byte{nil, nil, b}}
	}
	reint := func(op uint32) *Msg {
		b := make([]byte, 136)
		le.PutUint32(b, op)
		return &Msg{Bufs: [][]byte{nil, b}}
	}
	for _, c := range []struct {
		opc  uint32
		m    *Msg
		want *Format
	}{
		{MDSGetattrName, &Msg{}, FmtMDSGetattrName},
		{MGSConnect, &Msg{}, FmtConnect},
		{LDLMEnqueue, &Msg{Bufs: [][]byte{nil, nil}}, FmtLDLMEnqueue},
		{LDLMEnqueue, intent(ITOpen), FmtLDLMIntentOpen},
		{LDLMEnqueue, intent(ITOpen | ITCreat), FmtLDLMIntentOpen},
		{LDLMEnqueue, intent(ITLookup), FmtLDLMIntentGetattr},
		{LDLMEnqueue, intent(ITLayout), FmtLDLMIntentLayout},
		{LDLMEnqueue, intent(0x20000000), FmtLDLMIntentBasic},
		{LDLMEnqueue, &Msg{Bufs: [][]byte{nil, nil, {1}}}, FmtLDLMIntentBasic},
		{MDSReint, reint(ReintSetattr), FmtMDSReintSetattr},
		{MDSReint, reint(ReintRmentry), FmtMDSReintUnlink},
		{MDSReint, reint(99), FmtMDSReint},
		{MDSReint, &Msg{Bufs: [][]byte{nil}}, FmtMDSReint},
		{12345, &Msg{}, nil},
	} {
		if got := FormatOf(c.opc, c.m); got != c.want {
			t.Errorf("FormatOf(%s, %d buffers) = %v, want %v", OpName(c.opc), len(c.m.Bufs), got, c.want)
		}
	}
}

// TestReplyHasEveryField: a reply has one buffer per reply field after
// PTLRPC_BODY, values where given and empty fields at their empty size.
func TestReplyHasEveryField(t *testing.T) {
	r := &Request{Body: Body{Opc: LDLMEnqueue}, Msg: Msg{Bufs: [][]byte{nil, nil, {ITOpen, 0, 0, 0, 0, 0, 0, 0}}}}
	rep := r.Reply(301, Set(FieldDLMRep, []byte("rep")))
	if len(rep.Bufs) != len(FmtLDLMIntentOpen.Rep)-1 || rep.Status != 301 {
		t.Fatalf("%d buffers status %d, want %d and 301", len(rep.Bufs), rep.Status, len(FmtLDLMIntentOpen.Rep)-1)
	}
	if string(rep.Bufs[0]) != "rep" || len(rep.Bufs[1]) != 216 || len(rep.Bufs[2]) != 0 {
		t.Errorf("buffers %d/%d/%d bytes, want DLM_REP as given, a 216-byte MDT_BODY, an empty MDT_MD",
			len(rep.Bufs[0]), len(rep.Bufs[1]), len(rep.Bufs[2]))
	}
	if r.GetString(FieldName) != "" || r.Get(FieldLDLMIntent)[0] != ITOpen {
		t.Error("fields read from the wrong buffers")
	}
}

package faults

import (
	"testing"
	"time"

	"github.com/kregress/kregress/lustre/ptlrpc"
)

func TestParseAndMatch(t *testing.T) {
	rules, err := Parse([]byte(`
faults:
  - {op: MDS_GETATTR, error: ESTALE, count: 2}
  - {name: victim, delay: 250ms}
  - {op: LDLM_ENQUEUE, name: gone, drop: true}
  - {op: OBD_PING, evict: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	var s Set
	if err := s.Add(rules...); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		a := s.Match(ptlrpc.MDSGetattr)
		if a == nil || a.Errno != ptlrpc.ESTALE {
			t.Fatalf("getattr %d: %+v", i, a)
		}
	}
	if a := s.Match(ptlrpc.MDSGetattr); a != nil {
		t.Fatalf("count exhausted but matched: %+v", a)
	}
	if a := s.Match(ptlrpc.LDLMEnqueue, "victim"); a == nil || a.Delay != 250*time.Millisecond {
		t.Fatalf("victim: %+v", a)
	}
	if a := s.Match(ptlrpc.LDLMEnqueue, "gone"); a == nil || !a.Drop {
		t.Fatalf("gone: %+v", a)
	}
	if a := s.Match(ptlrpc.LDLMEnqueue, "other"); a != nil {
		t.Fatalf("other matched %+v", a)
	}
	if a := s.Match(ptlrpc.OBDPing); a == nil || !a.Evict {
		t.Fatalf("ping: %+v", a)
	}
	s.Clear()
	if a := s.Match(ptlrpc.OBDPing); a != nil {
		t.Fatal("cleared set matched")
	}
	var nilSet *Set
	if nilSet.Match(1) != nil {
		t.Fatal("nil set matched")
	}
}

func TestParseRejects(t *testing.T) {
	for name, y := range map[string]string{
		"unknown op":    "- {op: MDS_FROB, drop: true}",
		"unknown errno": "- {op: MDS_GETATTR, error: EWHAT}",
		"no effect":     "- {op: MDS_GETATTR}",
		"unknown field": "- {op: MDS_GETATTR, drop: true, colour: red}",
		"bad delay":     "- {delay: soon}",
		"negative":      "- {drop: true, count: -1}",
	} {
		if _, err := Parse([]byte(y)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if r, err := Parse([]byte("- {error: eio}")); err != nil || r[0].errno != ptlrpc.EIO {
		t.Fatalf("lower-case errno: %v %v", r, err)
	}
}

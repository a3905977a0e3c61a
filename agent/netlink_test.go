package agent

import (
	"bytes"
	"testing"
)

// TestAttrsRoundTrip: attributes written by attr read back through
// parseAttrs, nested ones too, with padding honoured.
func TestAttrsRoundTrip(t *testing.T) {
	inner := attr(nil, 1, []byte("acpi_mc_group\x00"))
	inner = attr(inner, 2, []byte{7, 0, 0, 0})
	b := attr(nil, 3, []byte("abc")) // padded to 8
	b = attr(b, 0x8000|4, attr(nil, 1, inner))
	got := parseAttrs(b)
	if len(got) != 2 || got[0].typ != 3 || string(got[0].data) != "abc" || got[1].typ != 4 {
		t.Fatalf("parseAttrs = %+v", got)
	}
	groups := parseAttrs(got[1].data)
	if len(groups) != 1 {
		t.Fatalf("nested: %+v", groups)
	}
	fields := parseAttrs(groups[0].data)
	if len(fields) != 2 || !bytes.Equal(fields[0].data, []byte("acpi_mc_group\x00")) || fields[1].data[0] != 7 {
		t.Errorf("fields = %+v", fields)
	}
}

// FuzzParseAttrs: whatever the kernel (or a corrupt buffer) hands the
// agent, parsing never panics and never returns data beyond the input.
func FuzzParseAttrs(f *testing.F) {
	f.Add(attr(nil, 1, []byte("x")))
	f.Add([]byte{0xff, 0xff, 1, 0, 0})
	f.Add([]byte{3, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		for _, a := range parseAttrs(b) {
			total += len(a.data)
			parseAttrs(a.data)
		}
		if total > len(b) {
			t.Errorf("attributes hold %d bytes of a %d-byte input", total, len(b))
		}
	})
}

// Package golden compares what a test produced with a file under the
// package's testdata/, and rewrites the file instead when the test binary
// runs with -update (review the difference before committing it).
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Bytes fails t unless got equals the content of file, naming the first
// byte that differs.
func Bytes(t testing.TB, file string, got []byte) {
	t.Helper()
	if *update {
		os.MkdirAll(filepath.Dir(file), 0o755)
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("output differs from %s at byte %d (%d vs %d bytes)", file, i, len(got), len(want))
		}
	}
	t.Fatalf("output is %d bytes, %s has %d", len(got), file, len(want))
}

package build

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReadSeriesKeepsThreading keeps each patch's Message-ID and
// References, which a reply to the patch needs.
func TestReadSeriesKeepsThreading(t *testing.T) {
	mbox := "From 0 Mon Sep 17 00:00:00 2001\nFrom: A <a@example.org>\nSubject: [PATCH 0/1] cover\n" +
		"Message-ID: <cover@example.org>\n\nthe cover letter\n" +
		"From 1 Mon Sep 17 00:00:00 2001\nFrom: A <a@example.org>\nSubject: [PATCH 1/1] x: y\n" +
		"Message-ID: <p1@example.org>\nIn-Reply-To: <cover@example.org>\nReferences: <cover@example.org>\n\n" +
		"---\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"
	path := filepath.Join(t.TempDir(), "s.mbox")
	if err := os.WriteFile(path, []byte(mbox), 0o644); err != nil {
		t.Fatal(err)
	}
	ps, err := ReadSeries(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].MessageID != "<p1@example.org>" || ps[0].References != "<cover@example.org>" {
		t.Fatalf("patches %+v", ps)
	}
}

// Package testlustre finds the Lustre client inputs the tests build: the
// lustre-release snapshot next to the repository and the headers of
// Debian's kernel. Missing inputs skip a test, except under CI=true, where
// they fail it: CI must run the real client.
package testlustre

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/images"
)

// SnapshotName is the lustre-release snapshot the tests build.
const SnapshotName = "lustre-release-c881f8eb.tar.xz"

// missing skips t, or fails it under CI=true.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format+" (CI=true: this test must run)", args...)
	}
	t.Skipf(format, args...)
}

// Snapshot returns the lustre-release snapshot: $KREGRESS_LUSTRE_SNAPSHOT,
// else ../shared/lustre/<SnapshotName> beside the repository.
func Snapshot(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KREGRESS_LUSTRE_SNAPSHOT"); p != "" {
		if _, err := os.Stat(p); err != nil {
			missing(t, "KREGRESS_LUSTRE_SNAPSHOT: %v", err)
		}
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testlustre: no go.mod above the test's folder")
		}
		dir = parent
	}
	p := filepath.Join(filepath.Dir(dir), "shared", "lustre", SnapshotName)
	if _, err := os.Stat(p); err != nil {
		missing(t, "no lustre-release snapshot: %v (set KREGRESS_LUSTRE_SNAPSHOT)", err)
	}
	return p
}

// DebianKernel returns Debian's newest /boot/vmlinuz-* and the kernel tree
// of its headers.
func DebianKernel(t testing.TB) (string, build.KernelTree) {
	t.Helper()
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(ks) == 0 {
		missing(t, "no /boot/vmlinuz-*: install Debian's linux-image-amd64 (make setup)")
	}
	k := ks[len(ks)-1]
	rel, err := images.KernelRelease(k)
	if err != nil {
		t.Fatal(err)
	}
	kt, err := build.DistroKernel(rel)
	if err != nil {
		missing(t, "%v", err)
	}
	return k, kt
}

// InsertPatch returns a one-patch mail (as git format-patch writes it)
// that inserts text after the first line of file (content old) holding
// anchor.
func InsertPatch(t testing.TB, file, old, anchor, text, subject string) string {
	t.Helper()
	i := strings.Index(old, anchor)
	if i < 0 {
		t.Fatalf("%s has no %q", file, anchor)
	}
	nl := strings.IndexByte(old[i:], '\n') + i + 1
	changed := old[:nl] + text + old[nl:]
	tmp := t.TempDir()
	for _, f := range []struct{ name, body string }{{"a/" + file, old}, {"b/" + file, changed}} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(tmp, f.name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, f.name), []byte(f.body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("git", "diff", "--no-index", "--no-prefix", "a/"+file, "b/"+file)
	cmd.Dir = tmp
	diff, _ := cmd.Output() // exit 1: the files differ
	if len(diff) == 0 {
		t.Fatalf("git diff of %s gave no diff", file)
	}
	return "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\nFrom: kregress test <test@localhost>\nSubject: " + subject + "\n\n---\n" + string(diff)
}

package build

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// fakeOutputs makes a build result whose outputs are small files, with a
// module tree holding a symlink as modules_install's does.
func fakeOutputs(t *testing.T, tag string) *Result {
	t.Helper()
	d := t.TempDir()
	res := &Result{BzImage: filepath.Join(d, "bzImage"), Vmlinux: filepath.Join(d, "vmlinux"),
		Config: filepath.Join(d, ".config"), SystemMap: filepath.Join(d, "System.map"), ModulesDir: filepath.Join(d, "staging")}
	for _, f := range []string{res.BzImage, res.Vmlinux, res.Config, res.SystemMap} {
		if err := os.WriteFile(f, []byte(tag+" "+filepath.Base(f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mod := filepath.Join(res.ModulesDir, "lib", "modules", "6.1.0")
	os.MkdirAll(mod, 0o755)
	os.WriteFile(filepath.Join(mod, "modules.dep"), []byte(tag), 0o644)
	os.Symlink("/nonexistent/source", filepath.Join(mod, "source"))
	return res
}

// TestExportKeepsWhatIsNotOurs (issue 12 item 16): build --out DIR never
// deletes or overwrites what kregress did not write there (DIR/modules the
// user had), and replaces what a former export wrote.
func TestExportKeepsWhatIsNotOurs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	users := filepath.Join(dir, "modules", "mine.ko")
	os.MkdirAll(filepath.Dir(users), 0o755)
	os.WriteFile(users, []byte("the user's"), 0o644)
	_, err := Export(ctx, fakeOutputs(t, "one"), dir)
	if Classify(err) != ClassBadInput {
		t.Errorf("export over the user's modules/: %v, want bad input", err)
	}
	if data, _ := os.ReadFile(users); string(data) != "the user's" {
		t.Errorf("the user's %s is gone or changed: %q", users, data)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("export wrote into %s after refusing: %v", dir, entries)
	}
	// The same for a file: the user's own bzImage stays.
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, "bzImage"), []byte("the user's"), 0o644)
	if _, err := Export(ctx, fakeOutputs(t, "one"), dir2); Classify(err) != ClassBadInput {
		t.Errorf("export over the user's bzImage: %v, want bad input", err)
	}

	// A folder of its own: written, then replaced by the next export.
	out := filepath.Join(t.TempDir(), "out")
	for _, tag := range []string{"one", "two"} {
		res, err := Export(ctx, fakeOutputs(t, tag), out)
		if err != nil {
			t.Fatalf("export %s: %v", tag, err)
		}
		if data, _ := os.ReadFile(res.BzImage); string(data) != tag+" bzImage" || res.BzImage != filepath.Join(out, "bzImage") {
			t.Errorf("export %s: %s holds %q", tag, res.BzImage, data)
		}
		dep := filepath.Join(res.ModulesDir, "lib", "modules", "6.1.0", "modules.dep")
		if data, _ := os.ReadFile(dep); string(data) != tag {
			t.Errorf("export %s: %s holds %q", tag, dep, data)
		}
		if l, err := os.Readlink(filepath.Join(res.ModulesDir, "lib", "modules", "6.1.0", "source")); err != nil || l != "/nonexistent/source" {
			t.Errorf("export %s: symlink not kept: %q %v", tag, l, err)
		}
	}
}

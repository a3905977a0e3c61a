package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// gitRepo makes a git repository in a temporary folder with files (path ->
// content) committed on branch main, and returns it.
func gitRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "repo")
	for f, data := range files {
		os.MkdirAll(filepath.Join(repo, filepath.Dir(f)), 0o755)
		if err := os.WriteFile(filepath.Join(repo, f), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range [][]string{{"git", "init", "-q", "-b", "main"}, {"git", "add", "-A"}, {"git", "commit", "-q", "-m", "base"}} {
		if _, err := run(context.Background(), repo, gitEnv(), c...); err != nil {
			t.Fatal(err)
		}
	}
	return repo
}

// treeState lists every file under dir with its digest (and every folder),
// so that any change shows.
func treeState(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			lines = append(lines, rel+"/")
			return nil
		}
		data, _ := os.ReadFile(p)
		sum := sha256.Sum256(data)
		lines = append(lines, rel+" "+hex.EncodeToString(sum[:8]))
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

const kernelMakefile = "# SPDX-License-Identifier: GPL-2.0\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\nEXTRAVERSION =\n"

// TestGitSourcePrivateClone (issue 12 item 15): a git source is used
// through a private clone in the cache: nothing is written into the user's
// repository (no .git/worktrees entry, no object, ref or config), and the
// series is applied in the clone only.
func TestGitSourcePrivateClone(t *testing.T) {
	ctx := context.Background()
	repo := gitRepo(t, map[string]string{"Makefile": kernelMakefile, "fs/x.c": "a\n"})
	before := treeState(t, repo)
	root := t.TempDir()
	s, err := prepareSource(ctx, root, &Request{Source: repo}, nil)
	if err != nil {
		t.Fatal(err)
	}
	patch := Patch{Number: 1, Total: 1, Subject: "x", Data: []byte("--- a/fs/x.c\n+++ b/fs/x.c\n@@ -1 +1 @@\n-a\n+b\n"), Files: []string{"fs/x.c"}}
	if _, err := applySeries(ctx, s, t.TempDir(), []Patch{patch}, nil); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(s.dir, "fs/x.c")); string(data) != "b\n" {
		t.Errorf("patched file in the private tree: %q", data)
	}
	if err := s.reset(ctx); err != nil {
		t.Fatal(err)
	}
	s.release()
	// A second use reuses the clone.
	s, err = prepareSource(ctx, root, &Request{Source: repo}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(s.dir, "fs/x.c")); string(data) != "a\n" {
		t.Errorf("private tree not back at the base: %q", data)
	}
	s.release()
	if _, err := os.Stat(filepath.Join(repo, ".git", "worktrees")); err == nil {
		t.Errorf("a worktree is registered in the user's repository")
	}
	if after := treeState(t, repo); after != before {
		t.Errorf("the user's repository changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestNotAKernelIsBadInput (issue 12 item 8): a git tree or a tarball that
// is not a kernel is an *InputError (bad input, exit 2 everywhere), found
// before anything is cloned or extracted into the cache.
func TestNotAKernelIsBadInput(t *testing.T) {
	ctx := context.Background()
	repo := gitRepo(t, map[string]string{"Makefile": "all:\n\techo hello\n", "README": "not a kernel\n"})
	before := treeState(t, repo)
	root := t.TempDir()
	_, err := Build(ctx, Request{Source: repo, CacheDir: root})
	var ie *InputError
	if !errors.As(err, &ie) || Classify(err) != ClassBadInput || !strings.Contains(err.Error(), "is not a kernel tree") {
		t.Fatalf("Build on a git tree that is not a kernel: %v; want an *InputError saying so", err)
	}
	if src, _ := os.ReadDir(filepath.Join(root, "src")); len(src) != 0 {
		t.Errorf("the cache got a source tree for bad input: %v", src)
	}
	if after := treeState(t, repo); after != before {
		t.Errorf("the user's repository changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := CheckApply(ctx, Request{Source: repo, CacheDir: root}); Classify(err) != ClassBadInput {
		t.Errorf("CheckApply: %v, want bad input", err)
	}

	tarball := filepath.Join(t.TempDir(), "notlinux.tar")
	if _, err := run(ctx, repo, nil, "tar", "-cf", tarball, "--transform", "s,^\\.,notlinux,", "."); err != nil {
		t.Fatal(err)
	}
	_, err = Build(ctx, Request{Source: tarball, CacheDir: root})
	if Classify(err) != ClassBadInput || !strings.Contains(err.Error(), "not a kernel source tarball") {
		t.Errorf("Build on a tarball that is not a kernel: %v; want bad input", err)
	}
	src, _ := filepath.Glob(filepath.Join(root, "src", "tar-*"))
	for _, s := range src {
		if !strings.HasSuffix(s, ".lock") { // the flock's file stays, empty
			t.Errorf("the cache kept %s for bad input", s)
		}
	}
}

// TestBadInputClasses: each kind of unworkable request is an *InputError.
func TestBadInputClasses(t *testing.T) {
	ctx := context.Background()
	repo := gitRepo(t, map[string]string{"Makefile": kernelMakefile})
	root := t.TempDir()
	for _, req := range []Request{
		{},
		{Source: "/nonexistent/linux.tar.xz"},
		{Source: repo, Configs: []string{"no-such-preset"}},
		{Source: repo, ExternalModules: []string{"/nonexistent/module"}},
		{Source: repo, Series: "/nonexistent/series"},
		{Source: "/usr/src/linux-source-6.1.tar.xz", Series: "v6.1..topic"}, // a range needs a git source
		{Source: repo, Base: "no-such-ref"},
		{Source: repo, Base: "--upload-pack=x"},
		{Source: filepath.Join(repo, "Makefile"), Base: "main"}, // a file is a tarball: its own base
	} {
		req.CacheDir = root
		if _, err := Build(ctx, req); Classify(err) != ClassBadInput {
			t.Errorf("%+v: %v (%s), want bad input", req, err, Classify(err))
		}
	}
}

// TestKindOfSeries: one decision for every command.
func TestKindOfSeries(t *testing.T) {
	repo := t.TempDir()
	for _, c := range []struct {
		source, series string
		kind           SeriesKind
		bad            bool
	}{
		{repo, "", SeriesNone, false},
		{repo, "testdata/series/good.mbox", SeriesPath, false},
		{repo, "testdata/series/broken", SeriesPath, false},
		{repo, "v6.1..topic", SeriesGitRange, false},
		{repo, "topic", SeriesNone, true},
		{repo, "-v6.1..topic", SeriesNone, true},
		{"/usr/src/linux-source-6.1.tar.xz", "v6.1..topic", SeriesNone, true},
	} {
		k, err := KindOfSeries(c.source, c.series)
		if k != c.kind || (err != nil) != c.bad || (err != nil && Classify(err) != ClassBadInput) {
			t.Errorf("KindOfSeries(%q, %q) = %v, %v; want %v, bad %v", c.source, c.series, k, err, c.kind, c.bad)
		}
	}
}

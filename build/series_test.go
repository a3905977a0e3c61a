package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestReadSeriesMbox reads the test series as git format-patch
// --cover-letter --stdout wrote it: the cover letter is skipped.
func TestReadSeriesMbox(t *testing.T) {
	ps, err := ReadSeries("testdata/series/good.mbox")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Label()+" "+strings.Join(p.Files, ","))
	}
	want := []string{
		`patch 1/3 "kregress-test: add a boot-time marker" kernel/Makefile,kernel/kregress_test.c`,
		`patch 2/3 "kregress-test: mark patch 2" kernel/kregress_test.c`,
		`patch 3/3 "kregress-test: mark patch 3" kernel/kregress_test.c`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("series:\n got %q\nwant %q", got, want)
	}
	if ps[0].From != "Kregress Tester <tester@example.org>" {
		t.Errorf("From = %q", ps[0].From)
	}
}

// TestReadSeriesFolder reads a folder of .patch files in name order; the
// same patches as one mbox give the same series.
func TestReadSeriesFolder(t *testing.T) {
	ps, err := ReadSeries("testdata/series/broken")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 || ps[1].Subject != "kregress-test: tag two init messages" ||
		!reflect.DeepEqual(ps[1].Files, []string{"init/main.c", "kernel/kregress_test.c"}) {
		t.Fatalf("broken series read as %+v", ps)
	}
	hs := hunks(ps[1].Data)
	var got []string
	for _, h := range hs {
		got = append(got, h.file+"#"+string(rune('0'+h.index))+"@"+strings.Fields(h.header)[1])
	}
	want := []string{"init/main.c#1@-943,7", "init/main.c#2@-1393,7", "kernel/kregress_test.c#1@-9,6"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hunks %q, want %q", got, want)
	}

	// Concatenated into one mbox, the folder reads the same.
	var mbox []byte
	names, _ := filepath.Glob("testdata/series/broken/*.patch")
	for _, n := range names {
		b, _ := os.ReadFile(n)
		mbox = append(mbox, b...)
	}
	f := filepath.Join(t.TempDir(), "series.mbox")
	os.WriteFile(f, mbox, 0o644)
	ps2, err := ReadSeries(f)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ps {
		if ps[i].Subject != ps2[i].Subject || string(ps[i].Data) != string(ps2[i].Data) {
			t.Errorf("patch %d differs between folder and mbox", i+1)
		}
	}
}

func TestReadSeriesBadInput(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	cover := filepath.Join(dir, "cover.mbox")
	data, _ := os.ReadFile("testdata/series/good.mbox")
	// Only the cover letter: everything before the second "From " line.
	i := strings.Index(string(data[1:]), "\nFrom ")
	os.WriteFile(cover, data[:i+2], 0o644)
	for path, want := range map[string]string{
		filepath.Join(dir, "missing"): "no such file",
		empty:                         "no *.patch files",
		cover:                         "contains no patches",
	} {
		if _, err := ReadSeries(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadSeries(%s) = %v, want an error containing %q", path, err, want)
		}
	}
}

func TestCleanSubject(t *testing.T) {
	for in, want := range map[string]struct {
		s string
		n int
	}{
		"[PATCH v2 03/10] fs: fix it":         {"fs: fix it", 3},
		"[RFC PATCH 1/2] [net] a\n  folded b": {"a folded b", 1},
		"plain subject":                       {"plain subject", 0},
		"[PATCH 0/4] cover":                   {"cover", 0},
	} {
		s, n := cleanSubject(in)
		if s != want.s || n != want.n {
			t.Errorf("cleanSubject(%q) = %q, %d; want %q, %d", in, s, n, want.s, want.n)
		}
	}
}

// TestPrefixKeepsNumbers: a prefix of a series handed to a build as
// Patches (as `kregress test` does per step) keeps the series' numbers;
// a series read from a file is numbered as read, and so is a mixture.
func TestPrefixKeepsNumbers(t *testing.T) {
	ps, err := ReadSeries("testdata/series/good.mbox")
	if err != nil {
		t.Fatal(err)
	}
	labels := func(ps []Patch) (l []string) {
		for _, p := range ps {
			l = append(l, fmt.Sprintf("%d/%d", p.Number, p.Total))
		}
		return l
	}
	got, err := readRequestSeries(context.Background(), &Request{Patches: ps[:2]})
	if err != nil {
		t.Fatal(err)
	}
	if l := labels(got); !reflect.DeepEqual(l, []string{"1/3", "2/3"}) {
		t.Errorf("prefix of two: %v, want [1/3 2/3]", l)
	}
	got, err = readRequestSeries(context.Background(), &Request{Series: "testdata/series/good.mbox", Patches: ps[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if l := labels(got); !reflect.DeepEqual(l, []string{"1/4", "2/4", "3/4", "4/4"}) {
		t.Errorf("series plus one patch: %v, want 1/4..4/4", l)
	}
	loose := []Patch{{Subject: "a"}, {Subject: "b"}}
	got, _ = readRequestSeries(context.Background(), &Request{Patches: loose})
	if l := labels(got); !reflect.DeepEqual(l, []string{"1/2", "2/2"}) {
		t.Errorf("unnumbered patches: %v, want [1/2 2/2]", l)
	}
}

// TestReadSeriesFolderGarbage: a *.patch file that holds no diff makes the
// series an error naming that file, instead of being dropped (which made
// a two-patch series "patch 1/1"); a cover letter is still skipped.
func TestReadSeriesFolderGarbage(t *testing.T) {
	names, _ := filepath.Glob("testdata/series/broken/*.patch")
	if len(names) < 2 {
		t.Fatalf("want the broken series' patches, found %v", names)
	}
	good, _ := os.ReadFile(names[0])
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "0001-good.patch"), good, 0o644)
	garbage := filepath.Join(dir, "0002-garbage.patch")
	os.WriteFile(garbage, []byte("this is not a patch\n\x00\x01 random bytes\n"), 0o644)
	if ps, err := ReadSeries(dir); err == nil || !strings.Contains(err.Error(), garbage) {
		t.Errorf("garbage .patch: got %d patches, err %v; want an error naming %s", len(ps), err, garbage)
	}
	// A mail without a diff that is no cover letter is garbage too.
	os.WriteFile(garbage, []byte("From: a@b\nSubject: [PATCH 2/2] nothing here\n\njust words\n"), 0o644)
	if _, err := ReadSeries(dir); err == nil || !strings.Contains(err.Error(), garbage) {
		t.Errorf("diff-less mail: err %v; want an error naming %s", err, garbage)
	}
	// git format-patch --cover-letter's 0000-cover-letter.patch is skipped.
	os.Remove(garbage)
	os.WriteFile(filepath.Join(dir, "0000-cover-letter.patch"), []byte("From 1 Mon Sep 17 00:00:00 2001\nFrom: a@b\nSubject: [PATCH 0/1] the series\n\nwhy\n"), 0o644)
	ps, err := ReadSeries(dir)
	if err != nil || len(ps) != 1 {
		t.Errorf("with a cover letter: %d patches, %v", len(ps), err)
	}
}

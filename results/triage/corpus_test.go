package triage

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// corpusDir is syzkaller's crash log corpus, shared beside the repository.
const corpusDir = "../../../shared/corpus/syzkaller"

// corpusCase is one corpus file: expected results and the console log.
type corpusCase struct {
	name      string
	title     string
	alts      []string
	typ       string
	corrupted bool
	log       []byte
}

func readCorpusCase(t testing.TB, path string) corpusCase {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading corpus file: %v", err)
	}
	data = bytes.ReplaceAll(data, []byte{'\r'}, nil)
	c := corpusCase{name: filepath.Base(path)}
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(nil, 16<<20)
	phase := 0 // 0 headers, 1 log, 2 expected report
	prevEmpty := false
	var log bytes.Buffer
	for s.Scan() {
		ln := s.Text()
		switch phase {
		case 0:
			if ln == "" {
				phase = 1
				continue
			}
			switch {
			case strings.HasPrefix(ln, "TITLE: "):
				c.title = strings.TrimPrefix(ln, "TITLE: ")
			case strings.HasPrefix(ln, "ALT: "):
				c.alts = append(c.alts, strings.TrimPrefix(ln, "ALT: "))
			case strings.HasPrefix(ln, "TYPE: "):
				c.typ = strings.TrimPrefix(ln, "TYPE: ")
			case ln == "CORRUPTED: Y":
				c.corrupted = true
			}
		case 1:
			if prevEmpty && ln == "REPORT:" {
				phase = 2
				continue
			}
			log.WriteString(ln)
			log.WriteByte('\n')
		}
		prevEmpty = ln == ""
	}
	if err := s.Err(); err != nil {
		t.Fatalf("scanning %v: %v", path, err)
	}
	c.log = log.Bytes()
	return c
}

func corpusCases(t testing.TB) []corpusCase {
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("skipping: shared corpus %v is absent (%v); it lives beside the repository, not in it", corpusDir, err)
	}
	files, err := filepath.Glob(filepath.Join(corpusDir, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files in %v: %v", corpusDir, err)
	}
	var out []corpusCase
	for _, f := range files {
		out = append(out, readCorpusCase(t, f))
	}
	return out
}

// TestSyzkallerCorpus measures agreement with syzkaller's expected results
// on its own corpus: detection must agree everywhere, titles in at least
// 95% of the files.
func TestSyzkallerCorpus(t *testing.T) {
	cases := corpusCases(t)
	var n, detect, exact, titleOrAlt, typ, corrupt, reports int
	for _, c := range cases {
		n++
		reps := Parse(c.log)
		want := c.title != ""
		got := len(reps) > 0
		if got == want {
			detect++
		} else {
			t.Errorf("%v: detection: want report %v, got %v", c.name, want, titles(reps))
		}
		if !want {
			if !got {
				exact++
				titleOrAlt++
				typ++
				corrupt++
			}
			continue
		}
		reports++
		if !got {
			continue
		}
		r := reps[0]
		if r.Title == c.title {
			exact++
		} else {
			t.Logf("%v: title %q, want %q", c.name, r.Title, c.title)
		}
		if r.Title == c.title || slices.Contains(c.alts, r.Title) || slices.Contains(r.AltTitles, c.title) {
			titleOrAlt++
		}
		if r.Type == c.typ {
			typ++
		} else if r.Title == c.title {
			t.Logf("%v: type %q, want %q", c.name, r.Type, c.typ)
		}
		if r.Corrupted == c.corrupted {
			corrupt++
		} else if r.Title == c.title {
			t.Logf("%v: corrupted %v (%v), want %v", c.name, r.Corrupted, r.CorruptedReason, c.corrupted)
		}
	}
	pct := func(k int) float64 { return 100 * float64(k) / float64(n) }
	t.Logf("corpus: %d files (%d with a report)", n, reports)
	t.Logf("detection agreement:   %d/%d = %.2f%%", detect, n, pct(detect))
	t.Logf("exact title agreement: %d/%d = %.2f%%", exact, n, pct(exact))
	t.Logf("title or ALT agreement: %d/%d = %.2f%%", titleOrAlt, n, pct(titleOrAlt))
	t.Logf("type agreement:        %d/%d = %.2f%%", typ, n, pct(typ))
	t.Logf("corrupted agreement:   %d/%d = %.2f%%", corrupt, n, pct(corrupt))
	if detect != n {
		t.Errorf("detection agreement %.2f%% is below 100%%", pct(detect))
	}
	if pct(titleOrAlt) < 95 {
		t.Errorf("title agreement %.2f%% is below 95%%", pct(titleOrAlt))
	}
}

func titles(reps []Report) []string {
	var out []string
	for _, r := range reps {
		out = append(out, r.Title)
	}
	return out
}

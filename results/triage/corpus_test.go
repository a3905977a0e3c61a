package triage

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"reflect"
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
	frame     string // guilty frame, when the file names one
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
			case strings.HasPrefix(ln, "FRAME: "):
				c.frame = strings.TrimPrefix(ln, "FRAME: ")
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

// requireShared checks that the shared input at path (beside the
// repository, not in it) is present: when it is absent the test is
// skipped, or fails under CI=true, where every input must be there.
func requireShared(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared test input %v is missing under CI=true: %v", path, err)
		}
		t.Skipf("skipping: shared test input %v is absent (%v); it lives beside the repository, not in it", path, err)
	}
}

func corpusCases(t testing.TB) []corpusCase {
	requireShared(t, corpusDir)
	return readCorpus(t)
}

// corpusCasesOptional returns the corpus, or nothing when it is absent
// outside CI, for tests that use it to widen their inputs.
func corpusCasesOptional(t testing.TB) []corpusCase {
	if _, err := os.Stat(corpusDir); err != nil && os.Getenv("CI") != "true" {
		return nil
	}
	return corpusCases(t)
}

func readCorpus(t testing.TB) []corpusCase {
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

// corpusResult is what the parser says of a corpus file, in the terms of
// the file's headers.
type corpusResult struct {
	title     string // "" when no report
	alts      []string
	typ       string
	corrupted bool
	frame     string
}

// resultOf sums up the first report of a log as the corpus headers do: the
// guilty frame is the first of Frames, or "corrupted" when the title says
// none could be trusted.
func resultOf(reps []Report) corpusResult {
	if len(reps) == 0 {
		return corpusResult{}
	}
	r := reps[0]
	alts := slices.Clone(r.AltTitles)
	slices.Sort(alts)
	res := corpusResult{title: r.Title, alts: alts, typ: r.Type, corrupted: r.Corrupted}
	switch {
	case strings.HasSuffix(r.Title, " in corrupted"):
		res.frame = "corrupted"
	case len(r.Frames) > 0:
		res.frame = r.Frames[0]
	}
	return res
}

// corpusDeviations pins, file by file, where kregress knowingly differs from
// syzkaller's expected results, and why. Anything else must agree exactly,
// and a listed file that agrees again must be taken off the list.
var corpusDeviations = map[string]struct {
	want   func(*corpusResult) // turns syzkaller's expectation into kregress's
	reason string
}{
	"197": {func(r *corpusResult) { r.corrupted = true },
		"a GPF of another CPU interleaves the KASAN report without caller ids; kregress's report has no trace of its own and says so"},
	"343": {func(r *corpusResult) { r.corrupted = false },
		"syzkaller marks the report corrupted for a trace kregress reads whole"},
	// Environments kregress never runs: their rules were dropped.
	"353": {trustyWarning, "trusty (Android TEE) panic; the kernel WARNING it also prints remains"},
	"354": {trustyWarning, "trusty (Android TEE) panic; the kernel WARNING it also prints remains"},
	"356": {trustyWarning, "trusty (Android TEE) panic; the kernel WARNING it also prints remains"},
	"601": {noReport, "SYZFAIL of syz-executor"},
	"716": {noReport, "SYZFAIL of syz-executor"},
	"717": {noReport, "SYZFAIL of syz-executor"},
}

func noReport(r *corpusResult) { *r = corpusResult{} }

func trustyWarning(r *corpusResult) {
	*r = corpusResult{title: "WARNING in bug_handler", typ: TypeWarning}
}

// TestSyzkallerCorpus checks every corpus file exactly against its
// expected results (title, alt titles, type, corrupted, guilty frame where
// named), except for the pinned deviations; the agreement percentages are
// logged.
func TestSyzkallerCorpus(t *testing.T) {
	cases := corpusCases(t)
	var n, detect, exact, alts, typ, corrupt, frames, framed int
	used := map[string]bool{}
	for _, c := range cases {
		n++
		got := resultOf(Parse(c.log))
		want := corpusResult{title: c.title, alts: slices.Clone(c.alts), typ: c.typ, corrupted: c.corrupted, frame: c.frame}
		slices.Sort(want.alts)
		if want.title == "" {
			want = corpusResult{}
		}
		if (got.title != "") == (want.title != "") {
			detect++
		}
		if got.title == want.title {
			exact++
		}
		if slices.Equal(got.alts, want.alts) {
			alts++
		}
		if got.typ == want.typ {
			typ++
		}
		if got.corrupted == want.corrupted {
			corrupt++
		}
		if want.frame != "" {
			framed++
			if got.frame == want.frame {
				frames++
			}
		} else {
			got.frame = "" // the file does not name one
		}
		if dev, ok := corpusDeviations[c.name]; ok {
			used[c.name] = true
			if reflect.DeepEqual(normalize(got), normalize(want)) {
				t.Errorf("%v agrees with syzkaller now: take it off corpusDeviations (%v)", c.name, dev.reason)
			}
			dev.want(&want)
			if want.frame == "" {
				got.frame = ""
			}
		}
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Errorf("%v: got %+v, want %+v", c.name, got, want)
		}
	}
	for name := range corpusDeviations {
		if !used[name] {
			t.Errorf("deviation pinned for %v, which is not in the corpus", name)
		}
	}
	pct := func(k, of int) float64 { return 100 * float64(k) / float64(of) }
	t.Logf("corpus: %d files, %d deviations pinned", n, len(corpusDeviations))
	t.Logf("detection agreement: %d/%d = %.2f%%", detect, n, pct(detect, n))
	t.Logf("exact title agreement: %d/%d = %.2f%%", exact, n, pct(exact, n))
	t.Logf("alt titles agreement: %d/%d = %.2f%%", alts, n, pct(alts, n))
	t.Logf("type agreement: %d/%d = %.2f%%", typ, n, pct(typ, n))
	t.Logf("corrupted agreement: %d/%d = %.2f%%", corrupt, n, pct(corrupt, n))
	t.Logf("guilty frame agreement: %d/%d = %.2f%%", frames, framed, pct(frames, framed))
}

// normalize makes empty and nil alt title lists compare equal.
func normalize(r corpusResult) corpusResult {
	if len(r.alts) == 0 {
		r.alts = nil
	}
	return r
}

func titles(reps []Report) []string {
	var out []string
	for _, r := range reps {
		out = append(out, r.Title)
	}
	return out
}

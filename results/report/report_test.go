package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/kregress/kregress/internal/golden"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/triage"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// The pinned run directories (testdata/runs/README.md): real runs of
// kregress, kept small, and one series composed around two of them.
var pinned = []struct {
	name, dir string
	email     bool // a regression to mail about
}{
	{"smoke", "testdata/runs/smoke", false},
	{"sysrq-crash", "testdata/runs/sysrq-crash", true},
	{"series-interrupted", "testdata/runs/series-interrupted", false},
	{"composed-series", "testdata/runs/composed-series", true},
}

const testSourceURL = "https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git/tree/{file}?h=v6.1.192#n{line}"

func render(t *testing.T, dir string, f func(io.Writer, *Model) error) []byte {
	t.Helper()
	m, err := Load(dir, Options{SourceURL: testSourceURL, Mbox: mboxFor(dir)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mboxFor(dir string) string {
	if strings.Contains(dir, "composed-series") {
		return "testdata/seed-series.mbox"
	}
	return ""
}

func opts(dir string) Options { return Options{SourceURL: testSourceURL, Mbox: mboxFor(dir)} }

func TestGolden(t *testing.T) {
	for _, p := range pinned {
		t.Run(p.name, func(t *testing.T) {
			o := opts(p.dir)
			golden.Bytes(t, filepath.Join("testdata", "golden", p.name+".html"), render(t, p.dir, func(w io.Writer, m *Model) error { return HTML(w, m, o) }))
			golden.Bytes(t, filepath.Join("testdata", "golden", p.name+".junit.xml"), render(t, p.dir, JUnit))
			golden.Bytes(t, filepath.Join("testdata", "golden", p.name+".kcidb.json"), render(t, p.dir, KCIDB))
			if p.email {
				golden.Bytes(t, filepath.Join("testdata", "golden", p.name+".eml"), render(t, p.dir, func(w io.Writer, m *Model) error {
					return Email(w, m, o, MailOptions{From: "kregress <kregress@example.org>"})
				}))
			}
		})
	}
}

// needTool returns the path of a program the test needs; without it the
// test is skipped, or fails under CI=true.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (Debian package %s, in the Makefile's DEBIAN_PACKAGES)", name, pkg)
		}
		t.Skipf("%s not found (Debian package %s)", name, pkg)
	}
	return p
}

// TestJUnitConsumers hands the JUnit XML to two real consumers:
// xmllint against testdata/junit.xsd (the Jenkins/Ant format) and
// Debian's python3-junitparser, which reads it as Jenkins does and must
// find the crash as a failure with the title as message.
func TestJUnitConsumers(t *testing.T) {
	xmllint := needTool(t, "xmllint", "libxml2-utils")
	python := "/usr/bin/python3"
	if exec.Command(python, "-c", "import junitparser").Run() != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3-junitparser is not installed (Debian package python3-junitparser)")
		}
		t.Skip("python3-junitparser is not installed")
	}
	for _, p := range pinned {
		out := filepath.Join(t.TempDir(), p.name+".xml")
		os.WriteFile(out, render(t, p.dir, JUnit), 0o644)
		if b, err := exec.Command(xmllint, "--noout", "--schema", "testdata/junit.xsd", out).CombinedOutput(); err != nil {
			t.Errorf("%s: xmllint: %v\n%s", p.name, err, b)
		}
		script := `
import sys, junitparser
x = junitparser.JUnitXml.fromfile(sys.argv[1])
for s in x:
    for c in s:
        for r in c.result:
            print("%s|%s|%s|%s" % (type(r).__name__, s.name, c.name, r.message))
    print("suite|%s|%d|%d|%d|%d" % (s.name, s.tests, s.failures, s.errors, s.skipped))
`
		b, err := exec.Command(python, "-c", script, out).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: junitparser: %v\n%s", p.name, err, b)
		}
		got := string(b)
		t.Logf("%s: junitparser read:\n%s", p.name, got)
		if p.name == "sysrq-crash" {
			for _, want := range []string{
				"Failure|sysrq-crash|sysrq-crash|kernel panic: sysrq triggered crash",
				"Failure|sysrq-crash|console|kernel panic: sysrq triggered crash",
				"Skipped|sysrq-crash|after-crash|the VM had ended: crash",
				"suite|sysrq-crash|4|2|0|1",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("junitparser output lacks %q", want)
				}
			}
		}
		if p.name == "series-interrupted" && !strings.Contains(got, "Error|base/seedfs|console|build: make") {
			t.Errorf("the canceled base build is not an error:\n%s", got)
		}
		if p.name == "composed-series" && !strings.Contains(got, "Failure|patch-03/sysrq-crash|sysrq-crash|kernel panic: sysrq triggered crash") {
			t.Errorf("patch 3's crash is not a failure:\n%s", got)
		}
		if p.name == "smoke" && strings.Contains(got, "Failure") {
			t.Errorf("a passing run has failures:\n%s", got)
		}
	}
}

func TestCleanXML(t *testing.T) {
	in := "ok\x00nul\x01\x1b[0m\ttab\nline\r\xff\xfeend\uFFFE"
	if got, want := cleanXML(in), "oknul[0m\ttab\nline\rend"; got != want {
		t.Errorf("cleanXML = %q, want %q", got, want)
	}
}

func TestKCIDBSchemaV53(t *testing.T) {
	for _, p := range pinned {
		data := render(t, p.dir, KCIDB)
		for _, e := range checkKCIDB(data) {
			t.Errorf("%s: %s", p.name, e)
		}
	}
}

func TestTestPath(t *testing.T) {
	for _, c := range []struct{ suite, test, want string }{
		{"lustre-sanity", "stat-storm", "lustre.sanity.stat_storm"},
		{"smoke", "tmpfs-create-stat", "smoke.tmpfs_create_stat"},
		{"seedfs", "ls -l", "seedfs.ls_l"},
	} {
		if got := TestPath(c.suite, c.test); got != c.want {
			t.Errorf("TestPath(%q, %q) = %q, want %q", c.suite, c.test, got, c.want)
		}
	}
}

// TestHTMLSelfContained: no script, no stylesheet, image or font from
// elsewhere; the only links are to the tree's source and to anchors.
func TestHTMLSelfContained(t *testing.T) {
	for _, p := range pinned {
		page := string(render(t, p.dir, func(w io.Writer, m *Model) error { return HTML(w, m, opts(p.dir)) }))
		if strings.Contains(strings.ToLower(page), "<script") {
			t.Errorf("%s: the page has a script", p.name)
		}
		for _, m := range regexp.MustCompile(`(?i)(src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
			if m[1] == "src" || !(strings.HasPrefix(m[2], "#") || strings.HasPrefix(m[2], "https://git.kernel.org/")) {
				t.Errorf("%s: external or unexpected reference %s=%q", p.name, m[1], m[2])
			}
		}
		if regexp.MustCompile(`(?i)url\(|@import`).MatchString(page) {
			t.Errorf("%s: the CSS loads something", p.name)
		}
	}
}

// TestEmailParsesBack reads the mail back with net/mail.
func TestEmailParsesBack(t *testing.T) {
	for _, p := range pinned {
		m, err := Load(p.dir, opts(p.dir))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		err = Email(&buf, m, opts(p.dir), MailOptions{From: "kregress <kregress@example.org>"})
		if !p.email {
			if err == nil {
				t.Errorf("%s: a mail about a passing run", p.name)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		msg, err := mail.ReadMessage(&buf)
		if err != nil {
			t.Fatalf("%s: net/mail: %v", p.name, err)
		}
		if _, err := msg.Header.AddressList("From"); err != nil {
			t.Errorf("%s: From: %v", p.name, err)
		}
		if _, err := msg.Header.Date(); err != nil {
			t.Errorf("%s: Date: %v", p.name, err)
		}
		if !regexp.MustCompile(`^<[^<>@\s]+@[^<>@\s]+>$`).MatchString(msg.Header.Get("Message-ID")) {
			t.Errorf("%s: Message-ID %q", p.name, msg.Header.Get("Message-ID"))
		}
		body, _ := io.ReadAll(msg.Body)
		for _, want := range []string{"Reported-by: kregress <kregress@example.org>", "Closes: https://lore.kernel.org/r/kregress-", "reproduce:\n  kregress run"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("%s: body lacks %q", p.name, want)
			}
		}
		checkThread(t, p.name, msg)
	}
}

// TestLockChain draws the real lockdep report of the seed series' crash
// (results/triage/testdata: patch 3 takes sbi->lock twice).
// seedfsLockdep is the lockdep report pinned in triage's testdata: seedfs
// taking &sbi->lock twice.
func seedfsLockdep(t *testing.T) triage.Report {
	t.Helper()
	data, err := os.ReadFile("../triage/testdata/kernel/seedfs-lookup.json")
	if err != nil {
		t.Fatal(err)
	}
	var reps []triage.Report
	if err := json.Unmarshal(data, &reps); err != nil {
		t.Fatal(err)
	}
	return reps[0]
}

func TestLockChain(t *testing.T) {
	got := LockChain(seedfsLockdep(t).Lockdep)
	want := []string{"held &sbi->lock (at seedfs_find) -> acquiring &sbi->lock (at seedfs_find)"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("chain %q, want %q", got, want)
	}
	circular := &triage.Lockdep{
		Held:      &triage.LockRef{Class: "&A", At: "f"},
		Acquiring: &triage.LockRef{Class: "&B", At: "g"},
		Chain:     []triage.ChainLink{{Index: 1, Lock: triage.LockRef{Class: "&B"}}, {Index: 0, Lock: triage.LockRef{Class: "&A"}}},
	}
	got = LockChain(circular)
	want = []string{"#1 &B -> #0 &A", "held &A (at f) -> acquiring &B (at g)"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("circular chain %q, want %q", got, want)
	}
}

// TestSourceLinks: symbolized frames link to the tree when a URL is
// configured, and to nothing otherwise. (The pinned runs are Debian
// kernels without debug info, so the position here is set by the test.)
func TestSourceLinks(t *testing.T) {
	m, err := Load("testdata/runs/sysrq-crash", Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := m.Steps[0].Crashes[0]
	c.Crash.Stack[2].File, c.Crash.Stack[2].Line = "drivers/tty/sysrq.c", 158
	c.Crash.Stack[2].Inlined = []triage.InlinedFrame{{Func: "inner", File: "./include/linux/x.h", Line: 7}}
	var with, without bytes.Buffer
	HTML(&with, m, Options{SourceURL: testSourceURL})
	HTML(&without, m, Options{})
	for _, want := range []string{
		`<a href="https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git/tree/drivers/tty/sysrq.c?h=v6.1.192#n158">drivers/tty/sysrq.c:158</a>`,
		`<a href="https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git/tree/include/linux/x.h?h=v6.1.192#n7">./include/linux/x.h:7</a>`,
		`inner (inlined)`,
	} {
		if !strings.Contains(with.String(), want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(without.String(), "git.kernel.org") || !strings.Contains(without.String(), "drivers/tty/sysrq.c:158") {
		t.Error("without a URL: a link, or no position")
	}
}

// The tests a crash left unrun all say the same: the page gives them one
// row per step and suite, naming them, and keeps every other row.
func TestSkippedTestsFolded(t *testing.T) {
	ended := "not run: the VM had ended: crash: possible deadlock in ll_splice_alias"
	st := &Step{ID: "patch-03", Label: "patch 3/4", Tests: []Test{
		{Suite: "lustre-sanity", Name: "stat-root", Status: "pass"},
		{Suite: "lustre-sanity", Name: "ls-l", Status: "crash", Message: "the kernel crashed during the test"},
		{Suite: "lustre-sanity", Name: "lookup-missing", Status: "skip", Message: ended},
		{Suite: "lustre-sanity", Name: "readdir-walk", Status: "skip", Message: ended},
		{Suite: "lustre-sanity", Name: "umount", Status: "skip", Message: ended},
		{Suite: "lustre-lookup", Name: "first-stat-file", Status: "skip", Message: ended},
		{Suite: "lustre-lookup", Name: "umount", Status: "skip", Message: "not run: no mount"},
	}}
	m := &Model{Kind: "series", Steps: []*Step{st}}
	var rows []string
	for _, r := range shownTests(m) {
		rows = append(rows, fmt.Sprintf("%s/%s %s %v", r.Suite, r.Name, r.Status, r.Names))
	}
	want := []string{
		"lustre-sanity/ls-l crash []",
		"lustre-sanity/lookup-missing skip [lookup-missing readdir-walk umount]",
		"lustre-lookup/first-stat-file skip []",
		"lustre-lookup/umount skip []",
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	var page bytes.Buffer
	if err := HTML(&page, m, Options{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), "3 tests<br><span class=\"mono muted\">lookup-missing, readdir-walk, umount</span>") {
		t.Errorf("the page does not fold the three skipped tests into one row")
	}
}

// A client series says which tree it was applied to and which kernel the
// client was built against, not only the kernel tree.
func TestClientSeriesHeader(t *testing.T) {
	m := &Model{Kind: "series", Series: "llite.mbox", Target: "client", Client: "lustre-release.tar.xz", Kernel: "/boot/vmlinuz-6.1.0-56-amd64"}
	var page bytes.Buffer
	if err := HTML(&page, m, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"<dt>kernel</dt><dd>/boot/vmlinuz-6.1.0-56-amd64</dd>",
		"<dt>client tree</dt><dd>lustre-release.tar.xz</dd>",
		"<dd>llite.mbox (applied to the client tree)</dd>",
	} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// A lockdep report's lock sites ("..., at: seedfs_find+0x55/0x7a") are
// shown apart, under the lock chain, and the stack is the call trace
// alone, on the page and in the mail.
func TestLockSitesApart(t *testing.T) {
	rc := results.CrashesFrom([]triage.Report{seedfsLockdep(t)})[0]
	c := &Crash{Crash: rc, Guilty: rc.Frames[0]}
	var sites, stack []string
	for _, l := range c.LockSites() {
		sites = append(sites, l.Func+l.Offset)
	}
	for _, l := range c.Stack() {
		stack = append(stack, l.Func)
	}
	want := []string{"seedfs_find+0x55/0x7a", "seedfs_find+0x15/0x7a", "walk_component+0x68/0xc1", "seedfs_find+0x15/0x7a"}
	if !reflect.DeepEqual(sites, want) {
		t.Errorf("lock sites %q, want %q", sites, want)
	}
	if len(stack) == 0 || stack[0] != "dump_stack_lvl" || len(stack)+len(sites) != len(rc.Stack) {
		t.Errorf("stack %q: want the call trace alone, from dump_stack_lvl", stack)
	}
	st := &Step{ID: "patch-03", Label: "patch 3/4", Index: 3, Verdict: "crash", Crashes: []*Crash{c}}
	m := &Model{Kind: "series", Steps: []*Step{st}, FirstBad: st}
	var page bytes.Buffer
	if err := HTML(&page, m, Options{}); err != nil {
		t.Fatal(err)
	}
	p := page.String()
	if i, j := strings.Index(p, "<h3>Lock sites</h3>"), strings.Index(p, "<h3>Stack</h3>"); i < 0 || j < i ||
		strings.Contains(p[j:], "seedfs_find&#43;0x15/0x7a") || !strings.Contains(p[i:j], "seedfs_find&#43;0x15/0x7a") {
		t.Errorf("the page does not show the lock sites before, and apart from, the stack:\n%s", p[max(i, 0):])
	}
	var mail bytes.Buffer
	if err := Email(&mail, m, Options{}, MailOptions{}); err != nil {
		t.Fatal(err)
	}
	body := mail.String()
	if i, j := strings.Index(body, "lock sites:\n"), strings.Index(body, "\nstack:\n"); i < 0 || j < i ||
		!strings.Contains(body[i:j], "seedfs_find+0x15/0x7a") || strings.Contains(body[j:], "seedfs_find+0x15/0x7a") {
		t.Errorf("the mail does not list the lock sites apart from the stack:\n%s", body)
	}
}

// writeTwoRunSeries writes a series directory whose patch 1 ran two suites
// that both crashed the same way (the second run's report titled by the
// first's alternative title) and whose second run also crashed another
// way. deduped says whether the series' result.json lists the shared crash
// once, with also_in (as job.JudgeStep writes it), or once per run (as it
// did before). It returns the directory and the two runs of patch 1.
func writeTwoRunSeries(t *testing.T, deduped bool) (dir, run1, run2 string) {
	t.Helper()
	dir = t.TempDir()
	lockdep := results.Crash{Title: "possible deadlock in seedfs_lookup", Type: "LOCKDEP", Frames: []string{"seedfs_lookup"}, StartLine: 3, EndLine: 5, Count: 1, Report: "lockdep report 1"}
	lockdep2 := results.Crash{Title: "possible deadlock in seedfs_find", AltTitles: []string{lockdep.Title}, Type: "LOCKDEP", Frames: []string{"seedfs_find"}, StartLine: 6, EndLine: 8, Count: 1, Report: "lockdep report 2"}
	oops := results.Crash{Title: "general protection fault in seedfs_readdir", Type: "GPF", Frames: []string{"seedfs_readdir"}, StartLine: 10, EndLine: 11, Count: 1, Report: "oops report"}
	writeRun := func(step, name, suite string, status results.Status, tests []results.Test, crashes ...results.Crash) string {
		run := filepath.Join(dir, step, name)
		if err := os.MkdirAll(run, 0o755); err != nil {
			t.Fatal(err)
		}
		var console []string
		for i := 1; i <= 12; i++ {
			console = append(console, fmt.Sprintf("%s console line %d", name, i))
		}
		os.WriteFile(filepath.Join(run, "console.log"), []byte(strings.Join(console, "\n")+"\n"), 0o644)
		if crashes == nil {
			crashes = []results.Crash{}
		}
		data, _ := json.Marshal(&results.Result{Status: status, Suite: suite, Kernel: "/out/" + step + "/bzImage", Tests: tests, Crashes: crashes})
		if err := os.WriteFile(filepath.Join(run, "result.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		return run
	}
	pass := []results.Test{{Name: "t1", Status: results.StatusPass}}
	crash := []results.Test{{Name: "t1", Status: results.StatusCrash, Message: "the VM ended during the test"}}
	base := writeRun("base", "run-s1", "s1", results.StatusPass, pass)
	base2 := writeRun("base", "run-s2", "s2", results.StatusPass, pass)
	run1 = writeRun("patch-01", "run-s1", "s1", results.StatusCrash, crash, lockdep)
	run2 = writeRun("patch-01", "run-s2", "s2", results.StatusCrash, crash, lockdep2, oops)
	merged := lockdep
	merged.AltTitles = []string{lockdep2.Title}
	crashes := []results.SeriesCrash{{Crash: merged, Status: results.CrashNew, Run: run1, AlsoIn: []string{run2}}, {Crash: oops, Status: results.CrashNew, Run: run2}}
	if !deduped {
		crashes = []results.SeriesCrash{{Crash: lockdep, Status: results.CrashNew, Run: run1}, {Crash: lockdep2, Status: results.CrashNew, Run: run2}, {Crash: oops, Status: results.CrashNew, Run: run2}}
	}
	s := results.SeriesResult{Status: results.StatusRegression, Source: "/src/linux", Series: filepath.Join(dir, "no-such.mbox"), Suites: []string{"s1", "s2"},
		Base:     &results.Step{Verdict: results.VerdictPass, Runs: []string{base, base2}, Crashes: []results.SeriesCrash{}},
		Patches:  []*results.PatchVerdict{{Index: 1, Subject: "seedfs: lookup", Step: results.Step{Verdict: results.VerdictCrash, Runs: []string{run1, run2}, Crashes: crashes}}},
		FirstBad: &results.FirstBad{Index: 1, Subject: "seedfs: lookup", Verdict: results.VerdictCrash, Title: lockdep.Title, Reproduce: "kregress test --series x"},
	}
	data, _ := json.Marshal(&s)
	if err := os.WriteFile(filepath.Join(dir, "result.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, run1, run2
}

// TestSameCrashInTwoRuns: a crash two runs of one series step show is one
// crash of the step, from the first run, whose page section and mail say
// where else it was seen; a different crash of the second run stays apart,
// and the step table's links still lead to the sections. The series'
// result.json may list the crash once (also_in) or once per run.
func TestSameCrashInTwoRuns(t *testing.T) {
	for _, deduped := range []bool{true, false} {
		dir, run1, run2 := writeTwoRunSeries(t, deduped)
		m, err := Load(dir, Options{Context: 1})
		if err != nil {
			t.Fatal(err)
		}
		st := m.Steps[1]
		var got []string
		for _, c := range st.Crashes {
			g := fmt.Sprintf("%s [%s] %s:%d", c.Title, c.Status, filepath.Base(c.RunDir), c.StartLine)
			for _, a := range c.Also {
				g += fmt.Sprintf(" also %s:%d", filepath.Base(a.RunDir), a.StartLine)
			}
			got = append(got, g)
		}
		want := []string{
			"possible deadlock in seedfs_lookup [new] run-s1:3 also run-s2:6",
			"general protection fault in seedfs_readdir [new] run-s2:10",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("deduped %v: crashes\n%s\nwant\n%s", deduped, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}

		var page bytes.Buffer
		if err := HTML(&page, m, Options{}); err != nil {
			t.Fatal(err)
		}
		p := page.String()
		for _, want := range []string{
			`<a href="#patch-01-crash-1">possible deadlock in seedfs_lookup</a>`,
			`<a href="#patch-01-crash-2">general protection fault in seedfs_readdir</a>`,
			`<h2 id="patch-01-crash-1">patch 1/1: possible deadlock in seedfs_lookup</h2>`,
			`<h2 id="patch-01-crash-2">patch 1/1: general protection fault in seedfs_readdir</h2>`,
			"<dt>also known as</dt><dd>possible deadlock in seedfs_find</dd>",
			"<dt>console</dt><dd>" + run1 + "/console.log lines 3-5</dd><dt>also seen in</dt><dd>" + run2 + "/console.log lines 6-8</dd>",
		} {
			if !strings.Contains(p, want) {
				t.Errorf("deduped %v: page lacks %s", deduped, want)
			}
		}
		// The second run's title is only one of the crash's other names.
		if n := strings.Count(p, "<h2 id=\"patch-01-crash-"); n != 2 || strings.Count(p, "seedfs_find") != 1 || strings.Count(p, "also seen in") != 1 {
			t.Errorf("deduped %v: %d crash sections, want 2, the shared crash once, one also-seen-in line", deduped, n)
		}

		var mail bytes.Buffer
		if err := Email(&mail, m, Options{}, MailOptions{}); err != nil {
			t.Fatal(err)
		}
		body := mail.String()
		if strings.Count(body, "\npossible deadlock in seedfs_lookup\n") != 1 || !strings.Contains(body, "\nalso seen in: "+run2+"\n") || strings.Contains(body, "seedfs_find") {
			t.Errorf("deduped %v: the mail does not list the shared crash once, with the other run:\n%s", deduped, body)
		}

		// JUnit still gives each run's crashing test the crash as its
		// own run showed it.
		var junit bytes.Buffer
		if err := JUnit(&junit, m); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(junit.String(), `message="possible deadlock in seedfs_find" type="crash LOCKDEP"`) {
			t.Errorf("deduped %v: the second run's crashing test lost its crash:\n%s", deduped, junit.String())
		}

		// KCIDB: one issue per crash, an incident per test that showed it.
		var kcidb bytes.Buffer
		if err := KCIDB(&kcidb, m); err != nil {
			t.Fatal(err)
		}
		for _, e := range checkKCIDB(kcidb.Bytes()) {
			t.Errorf("deduped %v: kcidb: %s", deduped, e)
		}
		var k struct {
			Issues    []struct{ ID string }
			Incidents []struct {
				TestID  string `json:"test_id"`
				IssueID string `json:"issue_id"`
			}
		}
		if err := json.Unmarshal(kcidb.Bytes(), &k); err != nil {
			t.Fatal(err)
		}
		var incidents []string
		for _, i := range k.Incidents {
			incidents = append(incidents, i.TestID+" "+i.IssueID)
		}
		ok := len(k.Issues) == 2 && len(incidents) == 3
		// The shared crash's issue in both runs' tests, then the other's.
		for n, want := range []struct {
			test  string
			issue int
		}{{"patch-01:s1.t1", 0}, {"patch-01:s2.t1", 0}, {"patch-01:s2.t1", 1}} {
			ok = ok && strings.HasSuffix(incidents[n], want.test+" "+k.Issues[want.issue].ID)
		}
		if !ok {
			t.Errorf("deduped %v: kcidb: issues %v, incidents %q; want 2 issues, the shared one's incidents in both runs' tests", deduped, k.Issues, incidents)
		}
	}
}

// mergeRuns folds a crash of a later run into the same crash of an earlier
// one when their statuses agree, or when the later one has none (the
// series listed it once already); a new crash stays apart from a
// pre-existing one, and two crashes of one run stay two.
func TestMergeRunsStatus(t *testing.T) {
	a := results.Crash{Title: "possible deadlock in seedfs_lookup"}
	b := results.Crash{Title: "possible deadlock in seedfs_find", AltTitles: []string{a.Title}}
	for _, c := range []struct {
		name    string
		crashes []*Crash
		want    string
	}{
		{"same status", []*Crash{{Crash: a, Status: "new", RunDir: "r1"}, {Crash: b, Status: "new", RunDir: "r2"}}, "new r1 [r2]"},
		{"no status: listed once by the series", []*Crash{{Crash: a, Status: "pre-existing", RunDir: "r1"}, {Crash: b, RunDir: "r2"}}, "pre-existing r1 [r2]"},
		{"new apart from pre-existing", []*Crash{{Crash: a, Status: "pre-existing", RunDir: "r1"}, {Crash: b, Status: "new", RunDir: "r2"}}, "pre-existing r1 []; new r2 []"},
		{"one run", []*Crash{{Crash: a, Status: "new", RunDir: "r1"}, {Crash: b, Status: "new", RunDir: "r1"}}, "new r1 []; new r1 []"},
		{"sound into corrupted", []*Crash{{Crash: results.Crash{Title: a.Title, Corrupted: true}, Status: "new", RunDir: "r1"}, {Crash: b, Status: "new", RunDir: "r2"}}, "new r1 []; new r2 []"},
	} {
		var got []string
		for _, m := range mergeRuns(c.crashes) {
			var also []string
			for _, o := range m.Also {
				also = append(also, o.RunDir)
			}
			got = append(got, fmt.Sprintf("%s %s %v", m.Status, m.RunDir, also))
		}
		if g := strings.Join(got, "; "); g != c.want {
			t.Errorf("%s: %s, want %s", c.name, g, c.want)
		}
	}
}

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

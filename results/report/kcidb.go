package report

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/kregress/kregress/results"
)

// KCIDB origin of everything kregress submits.
const kcidbOrigin = "kregress"

// kcidbLogMax is the schema's maxLength of log_excerpt.
const kcidbLogMax = 16384

// KCIDB I/O data, schema v5.3: only the fields kregress fills.
type kcidbData struct {
	Version   kcidbVersion    `json:"version"`
	Checkouts []kcidbCheckout `json:"checkouts"`
	Builds    []kcidbBuild    `json:"builds"`
	Tests     []kcidbTest     `json:"tests"`
	Issues    []kcidbIssue    `json:"issues"`
	Incidents []kcidbIncident `json:"incidents"`
}

type kcidbVersion struct {
	Major int `json:"major"`
	Minor int `json:"minor"`
}

type kcidbCheckout struct {
	ID            string         `json:"id"`
	Origin        string         `json:"origin"`
	TreeName      string         `json:"tree_name,omitempty"`
	GitCommitHash string         `json:"git_commit_hash,omitempty"`
	GitCommitName string         `json:"git_commit_name,omitempty"`
	PatchsetHash  *string        `json:"patchset_hash,omitempty"`
	MessageID     string         `json:"message_id,omitempty"`
	Comment       string         `json:"comment,omitempty"`
	StartTime     string         `json:"start_time,omitempty"`
	Valid         *bool          `json:"valid,omitempty"`
	Misc          map[string]any `json:"misc,omitempty"`
}

type kcidbBuild struct {
	ID           string         `json:"id"`
	CheckoutID   string         `json:"checkout_id"`
	Origin       string         `json:"origin"`
	Comment      string         `json:"comment,omitempty"`
	StartTime    string         `json:"start_time,omitempty"`
	Duration     *float64       `json:"duration,omitempty"`
	Architecture string         `json:"architecture,omitempty"`
	ConfigName   string         `json:"config_name,omitempty"`
	LogExcerpt   string         `json:"log_excerpt,omitempty"`
	Status       string         `json:"status,omitempty"`
	Misc         map[string]any `json:"misc,omitempty"`
}

type kcidbTest struct {
	ID          string            `json:"id"`
	BuildID     string            `json:"build_id"`
	Origin      string            `json:"origin"`
	Environment *kcidbEnvironment `json:"environment,omitempty"`
	Path        string            `json:"path"`
	Comment     string            `json:"comment,omitempty"`
	LogExcerpt  string            `json:"log_excerpt,omitempty"`
	Status      string            `json:"status"`
	StartTime   string            `json:"start_time,omitempty"`
	Duration    *float64          `json:"duration,omitempty"`
	Misc        map[string]any    `json:"misc,omitempty"`
}

type kcidbEnvironment struct {
	Comment string `json:"comment,omitempty"`
}

type kcidbIssue struct {
	ID            string         `json:"id"`
	Version       int            `json:"version"`
	Origin        string         `json:"origin"`
	ReportSubject string         `json:"report_subject,omitempty"`
	Culprit       *kcidbCulprit  `json:"culprit,omitempty"`
	Comment       string         `json:"comment,omitempty"`
	Misc          map[string]any `json:"misc,omitempty"`
}

type kcidbCulprit struct {
	Code    bool `json:"code"`
	Tool    bool `json:"tool"`
	Harness bool `json:"harness"`
}

type kcidbIncident struct {
	ID           string `json:"id"`
	Origin       string `json:"origin"`
	IssueID      string `json:"issue_id"`
	IssueVersion int    `json:"issue_version"`
	BuildID      string `json:"build_id,omitempty"`
	TestID       string `json:"test_id,omitempty"`
	Present      *bool  `json:"present,omitempty"`
	Comment      string `json:"comment,omitempty"`
}

var (
	sha1Re     = regexp.MustCompile(`^[0-9a-f]{40}$`)
	pathBadRe  = regexp.MustCompile(`[^a-zA-Z0-9_]+`)
	kcidbTrue  = true
	kcidbFalse = false
)

// TestPath turns a suite and a test name into a KCIDB test path:
// "lustre-sanity", "stat-storm" -> "lustre.sanity.stat_storm" (the
// suite's dashes become levels; other characters outside [A-Za-z0-9_]
// become "_").
func TestPath(suite, test string) string {
	var parts []string
	for _, p := range strings.Split(suite, "-") {
		if p = pathPart(p); p != "" {
			parts = append(parts, p)
		}
	}
	if t := pathPart(test); t != "" {
		parts = append(parts, t)
	}
	return strings.Join(parts, ".")
}

func pathPart(s string) string {
	return strings.Trim(pathBadRe.ReplaceAllString(s, "_"), "_")
}

// kcidbTime renders a time as the schema's date-time (RFC 3339).
func kcidbTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000+00:00")
}

// KCIDB writes m as KCIDB I/O data, schema v5.3: the checkout (tree,
// base and patch series), one build per step, one test per test and a
// "boot" test per step, one issue per distinct crash and one incident
// per crash seen. Ids are "kregress:" followed by the run directory's
// name and the step.
func KCIDB(w io.Writer, m *Model) error {
	d := kcidbData{Version: kcidbVersion{Major: 5, Minor: 3}, Checkouts: []kcidbCheckout{}, Builds: []kcidbBuild{}, Tests: []kcidbTest{}, Issues: []kcidbIssue{}, Incidents: []kcidbIncident{}}
	runID := kcidbOrigin + ":" + filepath.Base(filepath.Clean(m.Dir))
	co := kcidbCheckout{ID: runID, Origin: kcidbOrigin, StartTime: kcidbTime(m.Started), Misc: map[string]any{"run_dir": m.Dir}}
	if m.Kind == "series" {
		co.TreeName = filepath.Base(m.Tree)
		if sha1Re.MatchString(m.Base) {
			co.GitCommitHash = m.Base
		} else if m.Base != "" {
			co.GitCommitName = m.Base
		}
		co.Comment = fmt.Sprintf("%s with the series %s", m.Tree, m.Series)
		co.Misc["tree"], co.Misc["series"] = m.Tree, m.Series
		var hashes []string
		for _, st := range m.Steps {
			if st.Patch != nil {
				sum := sha256.Sum256(st.Patch.Data)
				hashes = append(hashes, hex.EncodeToString(sum[:]))
			}
		}
		// The thread the series came in: its first message (the cover
		// letter, or patch 1 without one).
		for _, st := range m.Steps {
			if p := st.Patch; p != nil && p.MessageID != "" {
				first := p.MessageID
				if refs := strings.Fields(p.References); len(refs) > 0 {
					first = refs[0]
				}
				co.MessageID = strings.Trim(first, "<>")
				break
			}
		}
		if len(hashes) > 0 && len(hashes) == len(m.Steps)-1 {
			sum := sha256.Sum256([]byte(strings.Join(hashes, "\n") + "\n"))
			h := hex.EncodeToString(sum[:])
			co.PatchsetHash = &h
		}
		valid := len(m.Steps) > 0 && m.Steps[0].Verdict != "infra" && m.Steps[0].Verdict != "no-build"
		co.Valid = &valid
	} else if len(m.Steps) > 0 {
		co.Comment = "the kernel image " + m.Steps[0].Kernel
		co.Valid = &kcidbTrue
	}
	d.Checkouts = append(d.Checkouts, co)
	issues, incidents := map[string]bool{}, map[string]bool{}
	for _, st := range m.Steps {
		bid := runID + ":" + st.ID
		b := kcidbBuild{ID: bid, CheckoutID: runID, Origin: kcidbOrigin, Architecture: "x86_64", StartTime: kcidbTime(st.Started),
			ConfigName: strings.Join(m.Configs, "+"), Misc: map[string]any{"kernel": st.Kernel}}
		if st.Release != "" {
			b.Misc["release"] = st.Release
		}
		if st.BuildKey != "" {
			dur := st.BuildSeconds
			b.Duration = &dur
			b.Misc["build_key"] = st.BuildKey
		}
		switch {
		case m.Kind == "series" && st.Index > 0:
			b.Comment = fmt.Sprintf("%s %s", st.Label, st.Subject)
		case m.Kind == "series":
			b.Comment = "the base"
		default:
			b.Comment = "a kernel image built elsewhere"
		}
		switch st.Verdict {
		case "no-apply", "no-build":
			b.Status = "FAIL"
			b.LogExcerpt = logExcerpt(st.Message)
		case "infra":
			if st.BuildKey == "" && m.Kind == "series" {
				b.Status = "ERROR"
				b.LogExcerpt = logExcerpt(st.Message)
			} else {
				b.Status = "PASS"
			}
		default:
			b.Status = "PASS"
		}
		d.Builds = append(d.Builds, b)
		if b.Status != "PASS" {
			continue
		}
		env := &kcidbEnvironment{Comment: "QEMU"}
		if st.Accel != "" {
			env.Comment = "QEMU (" + st.Accel + ")"
		}
		boot := kcidbTest{ID: bid + ":boot", BuildID: bid, Origin: kcidbOrigin, Environment: env, Path: "boot", StartTime: kcidbTime(st.Started)}
		if st.BootSeconds > 0 {
			dur := st.BootSeconds
			boot.Duration = &dur
		}
		switch {
		case len(st.Crashes) > 0:
			boot.Status = "FAIL"
			boot.Comment = "the console shows a crash: " + st.Crashes[0].Title
			boot.LogExcerpt = logExcerpt(excerpt(st.Crashes[0].Console))
		case st.Verdict == "no-boot":
			boot.Status = "FAIL"
			boot.LogExcerpt = logExcerpt(st.Message)
		case st.Verdict == "infra" || st.Verdict == string(results.StatusInfra):
			boot.Status = "ERROR"
			boot.LogExcerpt = logExcerpt(st.Message)
		default:
			boot.Status = "PASS"
		}
		d.Tests = append(d.Tests, boot)
		for _, t := range st.Tests {
			path := TestPath(t.Suite, t.Name)
			kt := kcidbTest{ID: bid + ":" + path, BuildID: bid, Origin: kcidbOrigin, Environment: env, Path: path,
				Status: kcidbStatus(t.Status, st.Verdict, len(st.Crashes) > 0), Comment: t.Message}
			dur := t.Seconds
			kt.Duration = &dur
			if isFailure(t.Status) {
				kt.LogExcerpt = logExcerpt(testOutput(t))
			}
			d.Tests = append(d.Tests, kt)
		}
		for _, c := range st.Crashes {
			iid := kcidbOrigin + ":" + issueKey(c.Title)
			if !issues[iid] {
				issues[iid] = true
				d.Issues = append(d.Issues, kcidbIssue{ID: iid, Version: 1, Origin: kcidbOrigin, ReportSubject: c.Title,
					Culprit: &kcidbCulprit{Code: true}, Comment: c.Title,
					Misc: map[string]any{"type": c.Type, "alt_titles": nonNil(c.AltTitles)}})
			}
			// One incident per test that showed it: the crashing test of
			// each run that saw the crash, else the boot.
			for _, o := range c.occurrences() {
				testID := bid + ":boot"
				for _, t := range st.Tests {
					if t.Status == string(results.StatusCrash) && t.RunDir == o.RunDir {
						testID = bid + ":" + TestPath(t.Suite, t.Name)
						break
					}
				}
				id := testID + ":" + issueKey(c.Title)
				if incidents[id] {
					continue
				}
				incidents[id] = true
				d.Incidents = append(d.Incidents, kcidbIncident{ID: id, Origin: kcidbOrigin, IssueID: iid, IssueVersion: 1,
					TestID: testID, Present: &kcidbTrue, Comment: fmt.Sprintf("%s/console.log lines %d-%d", o.RunDir, o.StartLine, o.EndLine)})
			}
		}
	}
	data, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return fmt.Errorf("report: kcidb: %w", err)
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// issueKey is a crash title's stable id part.
func issueKey(title string) string {
	sum := sha256.Sum256([]byte(title))
	return hex.EncodeToString(sum[:8])
}

// kcidbStatus maps a test's status to KCIDB's: a test that did not run
// because the VM had died (crashed, or lost to an infrastructure failure)
// is MISS, not SKIP (which says the test did not apply).
func kcidbStatus(status, verdict string, crashed bool) string {
	switch results.Status(status) {
	case results.StatusPass:
		return "PASS"
	case results.StatusFail, results.StatusTimeout, results.StatusCrash:
		return "FAIL"
	case results.StatusSkip:
		if crashed || verdict == "infra" || verdict == string(results.StatusInfra) {
			return "MISS"
		}
		return "SKIP"
	}
	return "ERROR"
}

// logExcerpt fits text to the schema: no NUL, at most 16384 characters
// (the end is kept: it is where things went wrong).
func logExcerpt(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "")
	r := []rune(s)
	if len(r) > kcidbLogMax {
		r = r[len(r)-kcidbLogMax:]
	}
	return string(r)
}

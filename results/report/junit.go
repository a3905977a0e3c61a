package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/kregress/kregress/results"
)

// JUnit XML as Jenkins' junit plugin and GitLab read it (the Ant
// format): testsuites > testsuite > testcase with failure, error,
// skipped and system-out.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr,omitempty"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

// JUnit writes m as JUnit XML: one testsuite per step and suite, one
// testcase per test plus a "console" testcase per step that fails when
// the console shows a crash (so a crash outside any test is not lost).
// A crash or a failing test is a failure with the title (or the test's
// message) as message; a step kregress could not run is an error;
// skipped tests are skipped; the console excerpt around a crash is the
// system-out, with characters XML cannot carry removed.
func JUnit(w io.Writer, m *Model) error {
	all := junitSuites{Name: "kregress " + m.Dir}
	var total float64
	for _, st := range m.Steps {
		bySuite := map[string]*junitSuite{}
		var order []string
		suite := func(name string) *junitSuite {
			if s := bySuite[name]; s != nil {
				return s
			}
			full := name
			if m.Kind == "series" {
				full = st.ID + "/" + name
			}
			s := &junitSuite{Name: full}
			if !st.Started.IsZero() {
				s.Timestamp = st.Started.UTC().Format("2006-01-02T15:04:05")
			}
			bySuite[name] = s
			order = append(order, name)
			return s
		}
		class := func(s string) string {
			if m.Kind == "series" {
				return "kregress." + st.ID + "." + s
			}
			return "kregress." + s
		}
		for _, t := range st.Tests {
			c := junitCase{Name: t.Name, Classname: class(t.Suite), Time: secs(t.Seconds)}
			switch results.Status(t.Status) {
			case results.StatusPass:
			case results.StatusSkip:
				c.Skipped = &junitSkipped{Message: cleanXML(t.Message)}
			case results.StatusCrash:
				msg := t.Message
			crashes:
				for _, sc := range st.Crashes {
					// The crash as this test's run showed it.
					for _, cr := range sc.occurrences() {
						if cr.RunDir == t.RunDir {
							msg = cr.Title
							c.Failure = &junitProblem{Message: cleanXML(msg), Type: "crash " + cr.Type, Text: cleanXML(cr.Report)}
							c.SystemOut = cleanXML(excerpt(cr.Console))
							break crashes
						}
					}
				}
				if c.Failure == nil {
					c.Failure = &junitProblem{Message: cleanXML(msg), Type: "crash"}
				}
			default: // fail, timeout
				c.Failure = &junitProblem{Message: cleanXML(t.Message), Type: t.Status, Text: cleanXML(testOutput(t))}
				if c.Failure.Message == "" {
					c.Failure.Message = fmt.Sprintf("%s: %s", t.Name, t.Status)
				}
			}
			s := suite(t.Suite)
			s.Cases = append(s.Cases, c)
		}
		// The console: one case per step.
		name := "kernel"
		if len(m.Suites) > 0 {
			name = m.Suites[0]
		}
		c := junitCase{Name: "console", Classname: class(name), Time: secs(st.WallSeconds)}
		switch {
		case len(st.Crashes) > 0:
			var titles, reports, outs []string
			for _, cr := range st.Crashes {
				titles = append(titles, cr.Title)
				reports = append(reports, cr.Report)
				outs = append(outs, excerpt(cr.Console))
			}
			c.Failure = &junitProblem{Message: cleanXML(strings.Join(titles, "; ")), Type: "crash " + st.Crashes[0].Type, Text: cleanXML(strings.Join(reports, "\n\n"))}
			c.SystemOut = cleanXML(strings.Join(outs, "\n\n"))
		case st.Verdict == "no-apply" || st.Verdict == "no-build" || st.Verdict == "no-boot":
			c.Failure = &junitProblem{Message: cleanXML(st.Label + ": " + st.Verdict), Type: st.Verdict, Text: cleanXML(st.Message)}
		case st.Verdict == "infra" || st.Verdict == string(results.StatusInfra):
			c.Error = &junitProblem{Message: cleanXML(firstLine(st.Message)), Type: "infra", Text: cleanXML(st.Message)}
		}
		s := suite(name)
		s.Cases = append(s.Cases, c)
		for _, n := range order {
			s := bySuite[n]
			var t float64
			for _, c := range s.Cases {
				s.Tests++
				switch {
				case c.Failure != nil:
					s.Failures++
				case c.Error != nil:
					s.Errors++
				case c.Skipped != nil:
					s.Skipped++
				}
				var f float64
				fmt.Sscan(c.Time, &f)
				if c.Name != "console" {
					t += f
				}
			}
			s.Time = secs(t)
			total += t
			all.Tests += s.Tests
			all.Failures += s.Failures
			all.Errors += s.Errors
			all.Skipped += s.Skipped
			all.Suites = append(all.Suites, *s)
		}
	}
	all.Time = secs(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return fmt.Errorf("report: junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func secs(s float64) string { return fmt.Sprintf("%.3f", s) }

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// excerpt renders console lines with their numbers.
func excerpt(lines []Line) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%6d  %s\n", l.N, l.Text)
	}
	return b.String()
}

// testOutput is the last 64 KiB of a test's output file.
func testOutput(t Test) string {
	if t.Output == "" {
		return ""
	}
	data, err := os.ReadFile(filepath.Join(t.RunDir, t.Output))
	if err != nil {
		return ""
	}
	if len(data) > 64<<10 {
		data = data[len(data)-64<<10:]
	}
	return string(data)
}

// cleanXML drops what XML 1.0 cannot carry: NUL and the other control
// characters but tab, newline and carriage return, surrogates, U+FFFE,
// U+FFFF and bytes that are not UTF-8.
func cleanXML(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == utf8.RuneError:
			return -1
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20:
			return -1
		case r >= 0xD800 && r <= 0xDFFF, r == 0xFFFE, r == 0xFFFF:
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
}

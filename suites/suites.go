// Package suites owns the test suite format: YAML files (gopkg.in/yaml.v3)
// listing guest commands and built-in workloads, with timeouts, expected
// exit statuses, set-up and tear-down, and the filesystem they target.
// The shipped suites are embedded from builtin/. Decoding is strict: an
// unknown key, a wrong type or a missing field is an error that names the
// file, line and column.
//
// A suite file:
//
//	name: smoke
//	description: what it checks
//	target: tmpfs          # tmpfs (a fresh tmpfs at Mount), lustre, or none
//	lustre-tree: dirs=4,files=16  # target lustre: the namespace the simulated
//	                       # server generates unless the user gives one
//	network: true          # the guest gets a NIC (QEMU user networking, the
//	                       # host is 10.0.2.2); default: only target lustre
//	timeout: 30s           # default per-test timeout
//	setup: mkdir -p x      # shell, run once before the tests
//	teardown: rm -rf x     # shell, run once after them
//	tests:
//	  - name: uname
//	    run: uname -a      # a shell command, or:
//	  - name: storm
//	    workload: stat     # a built-in workload of the guest agent
//	    threads: 4
//	    duration: 5s
//	    args: {names: 16}
//	    expect: 0          # expected exit status (default 0)
//	    timeout: 60s
//	    repeat: 1
package suites

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kregress/kregress/agent/protocol"

	"gopkg.in/yaml.v3"

	"github.com/kregress/kregress/lustre/namespace"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

// Mount is where the suite's target filesystem is mounted in the guest;
// tests run with it as their working directory and in $KREGRESS_MNT.
const Mount = "/mnt/kregress"

// Targets a suite can name.
const (
	TargetNone   = "none"
	TargetTmpfs  = "tmpfs"
	TargetLustre = "lustre"
)

// Suite is a parsed suite file.
type Suite struct {
	Name        string
	Description string
	Target      string
	// LustreTree is the generate spec ("dirs=4,files=16") of the
	// namespace the suite's tests expect from the simulated Lustre
	// server; empty leaves the job's default.
	LustreTree string
	// Network says the tests reach the host through a NIC (the host is
	// 10.0.2.2 under QEMU user networking). Target lustre implies it;
	// without it the guest has no network at all.
	Network  bool
	Timeout  time.Duration
	Setup    string
	Teardown string
	Tests    []Test
	// File is where the suite came from ("builtin:smoke" for shipped ones).
	File string
}

// Test is one test of a suite.
type Test struct {
	Name     string
	Run      string            // shell command, or
	Workload string            // built-in workload name
	Args     map[string]string // workload flags
	Threads  int
	Duration time.Duration
	Repeat   int
	Expect   int
	Timeout  time.Duration
	Setup    string
	Teardown string
	// Line is the test's line in the suite file.
	Line int
}

// Bounds of a test's threads and repeat counts.
const (
	maxThreads = 4096
	maxRepeat  = 1 << 20
)

// Workloads lists the built-in workload names a test may name: the guest
// agent's, as package protocol lists them.
var Workloads = protocol.Workloads

// Builtin lists the shipped suites' names.
func Builtin() []string {
	ents, _ := builtinFS.ReadDir("builtin")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(out)
	return out
}

// Load parses the suite file at nameOrPath, or returns the shipped suite of
// that name. A file that exists is always the file: "--suite smoke" with a
// ./smoke file loads ./smoke; a name without "/" or "." that is not a file
// is a shipped suite's.
func Load(nameOrPath string) (*Suite, error) {
	st, statErr := os.Stat(nameOrPath)
	if (statErr != nil || st.IsDir()) && !strings.ContainsAny(nameOrPath, "/.") {
		data, err := builtinFS.ReadFile("builtin/" + nameOrPath + ".yaml")
		if err != nil {
			return nil, fmt.Errorf("suites: no suite file or shipped suite named %q (shipped: %s)", nameOrPath, strings.Join(Builtin(), ", "))
		}
		return Parse("builtin:"+nameOrPath, data)
	}
	data, err := os.ReadFile(nameOrPath)
	if err != nil {
		return nil, fmt.Errorf("suites: %w", err)
	}
	return Parse(nameOrPath, data)
}

// Error is a problem at a place in a suite file.
type Error struct {
	File         string
	Line, Column int // Column is 0 when the YAML parser does not give one
	Msg          string
}

func (e *Error) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Parse decodes a suite from data; file names it in errors. data holds
// one YAML document.
func Parse(file string, data []byte) (*Suite, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, syntaxError(file, data, dec, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &Error{File: file, Line: 1, Column: 1, Msg: "empty suite"}
	}
	var next yaml.Node
	if err := dec.Decode(&next); err != io.EOF {
		if err != nil {
			return nil, syntaxError(file, data, dec, err)
		}
		return nil, &Error{File: file, Line: next.Line, Column: next.Column, Msg: "a second YAML document: a suite file holds one"}
	}
	p := &parser{file: file}
	s := &Suite{File: file, Target: TargetTmpfs, Timeout: 60 * time.Second}
	root := doc.Content[0]
	fields := p.mapping(root, "suite", map[string]bool{
		"name": true, "description": false, "target": false, "lustre-tree": false, "network": false, "timeout": false,
		"setup": false, "teardown": false, "tests": true,
	})
	if p.err != nil {
		return nil, p.err
	}
	s.Name = p.str(fields["name"])
	if n := fields["description"]; n != nil {
		s.Description = p.str(n)
	}
	if n := fields["target"]; n != nil {
		s.Target = p.str(n)
		switch s.Target {
		case TargetNone, TargetTmpfs, TargetLustre:
		default:
			p.fail(n, "unknown target %q (want none, tmpfs or lustre)", s.Target)
		}
	}
	if n := fields["lustre-tree"]; n != nil {
		s.LustreTree = p.str(n)
		if s.Target != TargetLustre {
			p.fail(n, "lustre-tree is for target lustre (this suite's target is %s)", s.Target)
		} else if _, err := namespace.Generate(s.LustreTree); err != nil && p.err == nil {
			p.fail(n, "lustre-tree: %v", err)
		}
	}
	if n := fields["network"]; n != nil {
		s.Network = p.boolean(n)
	}
	if s.Target == TargetLustre {
		s.Network = true
	}
	if n := fields["timeout"]; n != nil {
		s.Timeout = p.duration(n)
	}
	if n := fields["setup"]; n != nil {
		s.Setup = p.script(n)
	}
	if n := fields["teardown"]; n != nil {
		s.Teardown = p.script(n)
	}
	tests := fields["tests"]
	if tests != nil && p.err == nil {
		if tests.Kind != yaml.SequenceNode {
			p.fail(tests, "tests must be a list")
		} else if len(tests.Content) == 0 {
			p.fail(tests, "a suite needs at least one test")
		}
		seen := map[string]bool{}
		for _, tn := range tests.Content {
			if p.err != nil {
				break
			}
			t := p.test(tn, s.Timeout)
			if p.err == nil && seen[t.Name] {
				p.fail(tn, "duplicate test name %q", t.Name)
			}
			seen[t.Name] = true
			s.Tests = append(s.Tests, t)
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return s, nil
}

// syntaxError places a YAML syntax error. yaml.v3's message names only
// the line where the enclosing construct began (often lines before the
// mistake) and no column, but its parser keeps libyaml's marks: where it
// stopped (the problem) and the construct it was in (the context). They
// are read from the decoder's unexported state (yaml.v3 is archived, its
// layout fixed at the version go.sum pins; TestSyntaxErrorGolden fails if
// that changes). Without marks the message's line is used.
func syntaxError(file string, data []byte, dec *yaml.Decoder, err error) error {
	if m, ok := parserMarks(dec); ok && m.problem != "" {
		msg := m.problem
		line, col := m.line, m.col
		switch {
		case strings.HasSuffix(m.context, "simple key"):
			// A key without its colon: the key is the mistake.
			line, col = m.ctxLine, m.ctxCol
			msg = fmt.Sprintf("%s after this key", m.problem)
		case m.context != "" && atEnd(data, m.ctxLine, m.ctxCol):
			msg = fmt.Sprintf("%s: the file ends %s", m.problem, m.context)
		case m.context != "" && (strings.Contains(m.problem, "end of stream") || atEnd(data, m.line, m.col)):
			// Something never closed: point at where it opened.
			line, col = m.ctxLine, m.ctxCol
			msg = fmt.Sprintf("%s %s that starts here and runs to the end of the file", m.problem, m.context)
		case m.context != "" && (m.ctxLine != m.line || m.ctxCol != m.col):
			msg += fmt.Sprintf(" (%s that starts at %d:%d)", m.context, m.ctxLine, m.ctxCol)
		}
		if ql, qc, ok := quotedFrom(data, line, col); ok {
			// The usual cause: a quote left open lines before.
			msg += fmt.Sprintf("; the quoted string just before it opens at %d:%d", ql, qc)
		}
		return &Error{File: file, Line: line, Column: col, Msg: "YAML syntax: " + msg}
	}
	msg := err.Error()
	var line int
	if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok {
		if n, m, ok := strings.Cut(rest, ": "); ok {
			if v, err := strconv.Atoi(n); err == nil {
				line, msg = v, m
			}
		}
	}
	if line == 0 {
		msg = strings.TrimPrefix(msg, "yaml: ")
		line = 1
	}
	return &Error{File: file, Line: line, Msg: "YAML syntax: " + msg}
}

// quotedFrom tells where the quoted scalar that ends just before line:col
// (1-based; spaces between them allowed) opened, when that is on an
// earlier line: a string that ran over lines to a quote meant to open
// another one.
func quotedFrom(data []byte, line, col int) (qline, qcol int, ok bool) {
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) || col < 1 {
		return 0, 0, false
	}
	before := strings.TrimRight(lines[line-1][:min(col-1, len(lines[line-1]))], " ")
	if before == "" {
		return 0, 0, false
	}
	q := before[len(before)-1]
	if q != '"' && q != '\'' {
		return 0, 0, false
	}
	// Walk back from the closing quote to the one that opens it: for "
	// the previous unescaped ", for ' the previous ' not doubled.
	closeAt := 0
	for i := 0; i < line-1; i++ {
		closeAt += len(lines[i]) + 1
	}
	closeAt += len(before) - 1
	for i := closeAt - 1; i >= 0; i-- {
		if data[i] != q {
			continue
		}
		if q == '"' {
			bs := 0
			for j := i - 1; j >= 0 && data[j] == '\\'; j-- {
				bs++
			}
			if bs%2 == 1 {
				continue
			}
		} else if i > 0 && data[i-1] == '\'' {
			i--
			continue
		}
		qline = bytes.Count(data[:i], []byte("\n")) + 1
		qcol = i - (bytes.LastIndexByte(data[:i], '\n') + 1) + 1
		return qline, qcol, qline < line
	}
	return 0, 0, false
}

// atEnd tells whether line:col (1-based) is at or past the end of data's
// last line.
func atEnd(data []byte, line, col int) bool {
	last := bytes.Count(data, []byte("\n")) + 1
	if bytes.HasSuffix(data, []byte("\n")) {
		last--
	}
	return line > last
}

// marks are a failed yaml.v3 parse's positions, 1-based.
type marks struct {
	problem, context string
	line, col        int
	ctxLine, ctxCol  int
}

// parserMarks reads the problem and context marks of dec's parser (see
// syntaxError); ok is false when they are not where yaml.v3 v3.0.1 keeps
// them.
func parserMarks(dec *yaml.Decoder) (m marks, ok bool) {
	p := reflect.ValueOf(dec).Elem().FieldByName("parser")
	if !p.IsValid() || p.Kind() != reflect.Pointer || p.IsNil() {
		return m, false
	}
	y := p.Elem().FieldByName("parser")
	if !y.IsValid() || y.Kind() != reflect.Struct {
		return m, false
	}
	str := func(name string) (string, bool) {
		f := y.FieldByName(name)
		if !f.IsValid() || f.Kind() != reflect.String {
			return "", false
		}
		return f.String(), true
	}
	mark := func(name string) (line, col int, ok bool) {
		f := y.FieldByName(name)
		if !f.IsValid() || f.Kind() != reflect.Struct {
			return 0, 0, false
		}
		l, c := f.FieldByName("line"), f.FieldByName("column")
		if !l.IsValid() || !c.IsValid() || l.Kind() != reflect.Int || c.Kind() != reflect.Int {
			return 0, 0, false
		}
		return int(l.Int()) + 1, int(c.Int()) + 1, true
	}
	var ok1, ok2, ok3, ok4 bool
	m.problem, ok1 = str("problem")
	m.context, ok2 = str("context")
	m.line, m.col, ok3 = mark("problem_mark")
	m.ctxLine, m.ctxCol, ok4 = mark("context_mark")
	return m, ok1 && ok2 && ok3 && ok4
}

type parser struct {
	file string
	err  error
}

func (p *parser) fail(n *yaml.Node, format string, args ...any) {
	if p.err == nil {
		p.err = &Error{File: p.file, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, args...)}
	}
}

// mapping checks that n is a mapping with only the allowed keys (value:
// required) and returns key -> value node.
func (p *parser) mapping(n *yaml.Node, what string, allowed map[string]bool) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.fail(n, "%s must be a mapping of keys to values", what)
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if _, ok := allowed[k.Value]; !ok {
			var keys []string
			for a := range allowed {
				keys = append(keys, a)
			}
			sort.Strings(keys)
			p.fail(k, "unknown key %q in %s (known: %s)", k.Value, what, strings.Join(keys, ", "))
			return out
		}
		if _, dup := out[k.Value]; dup {
			p.fail(k, "key %q given twice in %s", k.Value, what)
			return out
		}
		out[k.Value] = v
	}
	keys := make([]string, 0, len(allowed))
	for k := range allowed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if allowed[k] && out[k] == nil {
			p.fail(n, "%s is missing required key %q", what, k)
		}
	}
	return out
}

func (p *parser) str(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.fail(n, "want a string")
		return ""
	}
	return n.Value
}

// boolean reads true or false.
func (p *parser) boolean(n *yaml.Node) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		p.fail(n, "want true or false, got %q", n.Value)
		return false
	}
	return b
}

// integer reads an integer from min to max.
func (p *parser) integer(n *yaml.Node, min, max int) int {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		p.fail(n, "want an integer, got %q", n.Value)
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < min || v > max {
		p.fail(n, "want an integer from %d to %d, got %q", min, max, n.Value)
	}
	return v
}

func (p *parser) duration(n *yaml.Node) time.Duration {
	if n.Kind != yaml.ScalarNode {
		p.fail(n, "want a duration such as 30s or 2m")
		return 0
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil || d <= 0 {
		p.fail(n, "want a positive duration such as 30s or 2m, got %q", n.Value)
	}
	return d
}

// script accepts a string or a list of strings (joined as lines).
func (p *parser) script(n *yaml.Node) string {
	if n.Kind == yaml.SequenceNode {
		var lines []string
		for _, c := range n.Content {
			lines = append(lines, p.str(c))
		}
		return strings.Join(lines, "\n")
	}
	return p.str(n)
}

func (p *parser) test(n *yaml.Node, defTimeout time.Duration) Test {
	f := p.mapping(n, "test", map[string]bool{
		"name": true, "run": false, "workload": false, "args": false, "threads": false,
		"duration": false, "repeat": false, "expect": false, "timeout": false,
		"setup": false, "teardown": false,
	})
	t := Test{Line: n.Line, Timeout: defTimeout, Repeat: 1, Threads: 1}
	if p.err != nil {
		return t
	}
	t.Name = p.str(f["name"])
	if t.Name == "" || strings.ContainsAny(t.Name, "/ \t\n") {
		p.fail(f["name"], "test name %q must be non-empty without spaces or slashes", t.Name)
	}
	switch {
	case f["run"] != nil && f["workload"] != nil:
		p.fail(f["workload"], "test %q has both run and workload; give one", t.Name)
	case f["run"] != nil:
		t.Run = p.script(f["run"])
	case f["workload"] != nil:
		t.Workload = p.str(f["workload"])
		known := false
		for _, w := range Workloads {
			known = known || w == t.Workload
		}
		if !known {
			p.fail(f["workload"], "unknown workload %q (have %s)", t.Workload, strings.Join(Workloads, ", "))
		}
	default:
		p.fail(n, "test %q needs run or workload", t.Name)
	}
	if a := f["args"]; a != nil {
		if t.Workload == "" {
			p.fail(a, "args is only for workloads")
		}
		if a.Kind != yaml.MappingNode {
			p.fail(a, "args must be a mapping of flag names to values")
		} else {
			t.Args = map[string]string{}
			for i := 0; i+1 < len(a.Content); i += 2 {
				k, v := a.Content[i], a.Content[i+1]
				if !validFlag(k.Value) {
					p.fail(k, "bad workload flag name %q", k.Value)
				}
				t.Args[k.Value] = p.str(v)
			}
		}
	}
	if v := f["threads"]; v != nil {
		t.Threads = p.integer(v, 1, maxThreads)
	}
	if v := f["repeat"]; v != nil {
		t.Repeat = p.integer(v, 1, maxRepeat)
	}
	if v := f["expect"]; v != nil {
		t.Expect = p.integer(v, 0, 255) // an exit status is one byte
	}
	if v := f["duration"]; v != nil {
		t.Duration = p.duration(v)
	}
	if v := f["timeout"]; v != nil {
		t.Timeout = p.duration(v)
	}
	if v := f["setup"]; v != nil {
		t.Setup = p.script(v)
	}
	if v := f["teardown"]; v != nil {
		t.Teardown = p.script(v)
	}
	if t.Duration > 0 && t.Timeout <= t.Duration {
		p.fail(n, "test %q: timeout %v must exceed duration %v", t.Name, t.Timeout, t.Duration)
	}
	return t
}

func validFlag(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// ErrNoSuite is returned by callers that need a suite and got none.
var ErrNoSuite = errors.New("suites: no suite given")

// Path joins a path under Mount.
func Path(rel string) string { return filepath.Join(Mount, rel) }

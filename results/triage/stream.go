package triage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Report is one crash report found in a console log.
type Report struct {
	// Title names the bug in syzbot's conventions, e.g.
	// "possible deadlock in ll_splice_alias".
	Title string `json:"title"`
	// AltTitles also name the bug; two reports whose titles or alt titles
	// meet are the same bug.
	AltTitles []string `json:"alt_titles"`
	// Type is the class of bug, e.g. LOCKDEP, WARNING, HANG,
	// KASAN-USE-AFTER-FREE-READ, NULL-POINTER-DEREFERENCE, LBUG; empty
	// when unknown.
	Type string `json:"type"`
	// Corrupted is set when the report's stack could not be trusted.
	Corrupted bool `json:"corrupted"`
	// CorruptedReason says why Corrupted is set.
	CorruptedReason string `json:"corrupted_reason,omitempty"`
	// Frames are function names, guilty first, then its callers.
	Frames []string `json:"frames"`
	// StartLine and EndLine are the 1-based lines of the input holding the
	// report's first and last lines.
	StartLine int `json:"start_line"`
	EndLine   int `json:"end_line"`
	// Report is the report text, console prefixes removed, lines of other
	// tasks and CPUs left out.
	Report string `json:"report"`
	// Lockdep is the structure of a lockdep report, nil for other reports.
	Lockdep *Lockdep `json:"lockdep,omitempty"`
	// Stack is every frame of the report's traces, in order, for
	// symbolization; a Symbolizer fills in File, Line and Inlined.
	Stack []Frame `json:"stack,omitempty"`
}

// Frame is one "func+0x1f/0x80 [module]" stack frame.
type Frame struct {
	Func   string `json:"func"`
	Offset uint64 `json:"offset"`
	Size   uint64 `json:"size"`
	Module string `json:"module,omitempty"`
	// Exact is set for the faulting instruction (RIP/PC lines), whose
	// address is not a return address.
	Exact bool `json:"exact,omitempty"`
	// Lock is set for a lock site that lockdep printed ("at: func+0x...",
	// a held lock's "..., at: func+0x..."): where a lock was taken, not a
	// frame of a call trace.
	Lock bool `json:"lock,omitempty"`
	// File and Line are the source position, filled by a Symbolizer.
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	// Inlined are the functions inlined at this address, innermost first,
	// each with its own position; Func then holds the outermost.
	Inlined []InlinedFrame `json:"inlined,omitempty"`
}

// InlinedFrame is a function inlined into a Frame.
type InlinedFrame struct {
	Func string `json:"func"`
	File string `json:"file"`
	Line int    `json:"line"`
}

// Parse returns every crash report in a console log, ordered by start line.
func Parse(log []byte) []Report {
	s := NewStream()
	var out []Report
	for len(log) > 0 {
		i := bytes.IndexByte(log, '\n')
		var line []byte
		if i < 0 {
			line, log = log, nil
		} else {
			line, log = log[:i], log[i+1:]
		}
		out = append(out, s.feed(line)...)
	}
	out = append(out, s.Flush()...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartLine < out[j].StartLine })
	return out
}

// ParseReader reads console output from r line by line and calls emit
// with each report as soon as it is complete and no report still open
// started before it, so the reports come in the order Parse returns them.
// Memory stays bounded whatever the size of the input (lines longer than
// maxLineBytes are cut, as Parse cuts them): should more than maxReady
// complete reports wait behind one that stays open, they go out first, out
// of Parse's order. It stops at the first error of
// r or emit and returns it.
func ParseReader(r io.Reader, emit func(Report) error) error {
	s := NewStream()
	var ready []Report // complete, waiting for older open reports
	release := func(reps []Report, final bool) error {
		for _, rep := range reps {
			// Keep ready sorted by start line, stable for equal ones.
			i := len(ready)
			for i > 0 && ready[i-1].StartLine > rep.StartLine {
				i--
			}
			ready = slices.Insert(ready, i, rep)
		}
		oldest := s.oldestOpen()
		n := 0
		for n < len(ready) && (final || oldest == 0 || ready[n].StartLine <= oldest || len(ready)-n > maxReady) {
			if err := emit(ready[n]); err != nil {
				return err
			}
			ready[n] = Report{}
			n++
		}
		ready = append(ready[:0], ready[n:]...)
		return nil
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: keep its start, skip the rest.
			line = bytes.Clone(line)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("triage: reading console output at line %d: %w", s.line+1, err)
		}
		if len(line) > 0 {
			if e := release(s.feed(bytes.TrimSuffix(line, []byte("\n"))), false); e != nil {
				return e
			}
		}
		if err == io.EOF {
			return release(s.Flush(), true)
		}
	}
}

// oldestOpen returns the start line of the oldest open report, 0 when none
// is open.
func (s *Stream) oldestOpen() int {
	oldest := 0
	for _, p := range s.open {
		if oldest == 0 || p.start < oldest {
			oldest = p.start
		}
	}
	return oldest
}

// Limits that bound a Stream's memory whatever its input.
const (
	maxReportLines = 2000
	maxReportBytes = 512 << 10
	maxLineBytes   = 4 << 10
	// tailLines is how long after a finished report a panic or LBUG line is
	// taken as that report's consequence rather than a new report.
	tailLines = 200
)

// Stream finds reports in console output fed one line at a time. Without
// printk caller ids, one report is open at a time and the next report's
// header ends it. With caller ids ("[ T123]", "[ C1]"), reports of
// different tasks and CPUs interleave, and a report of the same task may
// start inside another (a WARNING in the middle of a stall dump); each task
// holds at most maxOpenPerContext open reports, each bounded in size.
// A Stream is not safe for concurrent use.
type Stream struct {
	line    int
	booted  bool       // the kernel's boot banner has been seen
	open    []*pending // oldest first
	tailEnd map[string]int
}

// Bounds on open reports: per task or CPU, and in all; past them the
// oldest is finished.
const (
	maxOpenPerContext = 4
	maxOpen           = 64
	maxTails          = 1024
	maxReady          = 256
)

// NewStream returns a Stream at line 0.
func NewStream() *Stream {
	return &Stream{tailEnd: map[string]int{}}
}

// Feed takes the next line of output, without its trailing newline, and
// returns the reports that this line completed. Lines are numbered from 1
// by Feed calls.
func (s *Stream) Feed(line string) []Report {
	return s.feed([]byte(line))
}

// Flush finishes every open report (the output has ended) and returns them.
func (s *Stream) Flush() []Report {
	var out []Report
	for len(s.open) > 0 {
		out = append(out, s.finish(s.open[0])...)
	}
	return out
}

// Idle finishes and returns the open reports whose last line ended a
// stack trace ("</TASK>"). A console monitor calls it when the output has
// been quiet for a short while (a second or two): a report that dumps
// several stacks and no end marker, such as an RCU stall detected by
// another CPU, is then complete, and need not wait for the next report to
// begin, which may be never or the stall timeout later.
func (s *Stream) Idle() []Report {
	var out []Report
	for _, p := range append([]*pending(nil), s.open...) {
		if p.traceEnded {
			out = append(out, s.finish(p)...)
			s.setTail(p.key)
		}
	}
	return out
}

// pending is a report being collected.
type pending struct {
	rule       *rule
	key, ctx   string
	start, end int
	text       []byte
	lines      int
	skipText   bool
	cpuTrace   bool
	minLines   int
	awaitCheck bool // the next line may say the header was a replay
	dumpOnly   bool // a dump_stack() report: its trace's </TASK> ends it
	wrapNext   bool // the last line looks cut, as mail wraps them
	traceEnded bool // the last line closed a stack trace
	full       bool
}

var replayMarker = []byte("** replaying previous printk message **")

func (s *Stream) feed(line []byte) []Report {
	s.line++
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > maxLineBytes {
		line = line[:maxLineBytes]
	}
	var out []Report
	// A header immediately followed by a replay marker was cut short and
	// is printed again: drop it.
	for _, p := range s.open {
		if p.awaitCheck {
			p.awaitCheck = false
			if p.lines == 1 && bytes.Contains(line, replayMarker) {
				s.drop(p)
				break
			}
		}
	}
	ctx, body, questionable := splitPrefix(line)
	if ctx != "" && bytes.HasPrefix(body, []byte("Linux version ")) && bytes.Contains(line, []byte(" 0.000000]")) {
		// The boot banner, printed at time zero: a second one means the
		// machine rebooted without a report saying why.
		if s.booted {
			out = append(out, s.Flush()...)
			out = append(out, Report{
				Title: "unexpected kernel reboot", AltTitles: []string{}, Type: TypeReboot,
				Frames: []string{}, StartLine: s.line, EndLine: s.line, Report: string(body) + "\n",
			})
		}
		s.booted = true
		return out
	}
	key := groupOf(ctx)
	r := headerRule(line)
	if r != nil && r.kind == "warning" && s.warnsForBug(key) {
		r = nil // the WARN_ON() after a one-line BUG message: its trace
	}
	mid := r != nil && anyMatch(line, midReportHeaders)
	switch {
	case r != nil && !mid:
		same := s.openFor(key)
		if key == "" {
			for _, p := range same {
				out = append(out, s.finish(p)...)
			}
		} else if len(same) >= maxOpenPerContext {
			out = append(out, s.finish(same[0])...)
		}
		out = append(out, s.start(key, ctx, r, body)...)
		if key == "" {
			return out
		}
		// With caller ids the header line also belongs to the reports
		// of this task that are still open.
	case r != nil && mid && len(s.openFor(key)) == 0:
		if s.line > s.tailEnd[key] {
			out = append(out, s.start(key, ctx, r, body)...)
		}
		return out // else a consequence of the report just finished
	case r == nil && containsAny(line, infoWithStack):
		for _, p := range s.openFor(key) {
			out = append(out, s.finish(p)...)
		}
		return out
	}
	for _, p := range append([]*pending(nil), s.open...) {
		if p.start == s.line || questionable {
			continue
		}
		wrapped := ctx == "" && p.ctx != "" && p.end == s.line-1 && p.wrapNext
		if p.ctx != ctx && !wrapped && (!p.cpuTrace || !isCPUContext(ctx)) {
			continue
		}
		p.add(body, s.line)
		if p.full || isTerminator(body) || p.dumpOnly && bytes.Equal(bytes.TrimSpace(body), []byte("</TASK>")) {
			out = append(out, s.finish(p)...)
			s.setTail(p.key)
		}
	}
	return out
}

// setTail opens the window in which panic lines of key's context are a
// finished report's consequences; expired windows are dropped.
func (s *Stream) setTail(key string) {
	if len(s.tailEnd) >= maxTails {
		for k, end := range s.tailEnd {
			if end < s.line {
				delete(s.tailEnd, k)
			}
		}
	}
	if len(s.tailEnd) < maxTails {
		s.tailEnd[key] = s.line + tailLines
	}
}

// warnsForBug reports whether a WARNING header now belongs to the report
// of key that a one-line "BUG: ..." message opened just before: code such
// as the dcache's umount_check prints the message and then WARN_ON(1) from
// the same place, and the two are one report.
func (s *Stream) warnsForBug(key string) bool {
	for _, p := range s.open {
		// The WARN_ON's "cut here" line follows the message at once;
		// without it a WARNING is another CPU's, printed in between.
		if p.key == key && p.rule.kind == "bug" && s.line-p.end == 1 && p.lines == 2 &&
			bytes.Contains(p.text, []byte("[ cut here ]")) {
			return true
		}
	}
	return false
}

func (s *Stream) openFor(key string) []*pending {
	var out []*pending
	for _, p := range s.open {
		if p.key == key {
			out = append(out, p)
		}
	}
	return out
}

func (s *Stream) start(key, ctx string, r *rule, body []byte) []Report {
	var out []Report
	if len(s.open) >= maxOpen {
		out = s.finish(s.open[0])
	}
	p := &pending{rule: r, key: key, ctx: ctx, start: s.line, end: s.line, minLines: 22, awaitCheck: true}
	if bytes.Contains(body, []byte("BUG: KMSAN:")) {
		p.minLines = 16
	}
	p.text = append(p.text, body...)
	p.text = append(p.text, '\n')
	p.lines = 1
	p.dumpOnly = anyMatch(body, dumpStackReports)
	s.open = append(s.open, p)
	return out
}

func (s *Stream) drop(p *pending) {
	for i, q := range s.open {
		if q == p {
			s.open = append(s.open[:i], s.open[i+1:]...)
			return
		}
	}
}

func (s *Stream) finish(p *pending) []Report {
	s.drop(p)
	return []Report{p.build()}
}

// add appends a line of the report's context.
func (p *pending) add(body []byte, line int) {
	p.lines++
	skip := p.skipText
	switch {
	case bytes.Contains(body, []byte("Disabling lock debugging due to kernel taint")):
		skip = true
	case bytes.Contains(body, []byte("Sending NMI from CPU")):
		p.cpuTrace = true
	case (bytes.Contains(body, []byte("Kernel panic - not syncing")) ||
		bytes.Contains(body, []byte("WARNING: possible circular locking dependency detected"))) &&
		p.lines > p.minLines:
		// A panic after a long enough report only repeats its stack.
		p.skipText = true
		skip = true
	}
	p.end = line
	if p.lines <= 3 && !p.dumpOnly && p.rule.kind == "info" {
		// The header may be split across lines (a garbled task name).
		p.dumpOnly = anyMatch(body, dumpStackReports)
	}
	t := bytes.TrimRight(body, " ")
	p.wrapNext = len(t) == 0 || t[len(t)-1] == ':'
	p.traceEnded = bytes.Equal(bytes.TrimSpace(body), []byte("</TASK>"))
	if skip {
		return
	}
	p.text = append(p.text, body...)
	p.text = append(p.text, '\n')
	if p.lines >= maxReportLines || len(p.text) >= maxReportBytes {
		p.full = true
	}
}

// dumpStackReports print one dump_stack() as their last part and no
// end-of-trace marker; in kernels that bracket traces with <TASK> and
// </TASK>, the closing one ends the report.
var dumpStackReports = rxs(
	`possible recursive locking detected`, `possible circular locking dependency detected`,
	`inconsistent lock state`, `bad unlock balance detected`, `held lock freed`,
	`suspicious RCU usage`, `irq lock inversion dependency detected`, `lock order detected`,
	`BUG: sleeping function called from invalid context`, `BUG: scheduling while atomic`,
	`INFO: task .* blocked for more than`, `BUG: using .* in preemptible`,
	`INFO: trying to register non-static key`, `Invalid wait context`,
	`:[0-9]+ blocked for more than [0-9]+ seconds`,
	// A self-detected stall and a lockup end with the stalled CPU's own
	// trace; waiting for the next report to begin would delay the verdict
	// by the stall timeout. (A stall detected by another CPU dumps several
	// stacks, the grace-period kthread's first: it is not closed early.)
	`rcu_(?:preempt|sched|bh|tasks) self-detected(?: expedited)? stall`,
	`BUG: soft lockup - CPU`, `Watchdog detected hard LOCKUP`,
)

var terminators = [][]byte{
	[]byte("---[ end trace"),
	[]byte("---[ end Kernel panic"),
	[]byte("Kernel Offset: "),
	[]byte("Rebooting in "),
}

// isTerminator reports whether a report line ends a report: the kernel's
// end-of-trace markers, and the "=====" line closing sanitizer reports.
func isTerminator(body []byte) bool {
	for _, t := range terminators {
		if bytes.Contains(body, t) {
			return true
		}
	}
	b := bytes.TrimSpace(body)
	return len(b) >= 16 && bytes.Count(b, []byte("=")) == len(b)
}

func containsAny(line []byte, subs []string) bool {
	for _, s := range subs {
		if bytes.Contains(line, []byte(s)) {
			return true
		}
	}
	return false
}

// headerRule returns the rule whose header starts a report on line.
func headerRule(line []byte) *rule {
	found := headerIndex.scan(line)
	for found != 0 {
		i := bits.TrailingZeros64(found)
		found &^= 1 << i
		r := rules[i]
		if r.require != nil && !r.require.Match(line) {
			continue
		}
		if anyMatch(line, r.ignore) {
			continue
		}
		return r
	}
	return nil
}

// headerTable finds which rule headers occur in a line in one pass over
// it: byFirst lists, for each byte, the rules whose header starts with it.
type headerTable struct {
	byFirst [256][]int
}

var headerIndex = func() *headerTable {
	if len(rules) > 64 {
		panic("triage: more than 64 rules")
	}
	t := &headerTable{}
	for i, r := range rules {
		c := r.header[0]
		t.byFirst[c] = append(t.byFirst[c], i)
	}
	return t
}()

// scan returns the set of rules (bit i for rules[i]) whose header is in line.
func (t *headerTable) scan(line []byte) uint64 {
	var found uint64
	for i, c := range line {
		for _, ri := range t.byFirst[c] {
			if found&(1<<ri) == 0 && bytes.HasPrefix(line[i:], []byte(rules[ri].header)) {
				found |= 1 << ri
			}
		}
	}
	return found
}

// Console line prefixes: "<6>[   12.345678][ T123] text". The context is
// the caller id ("[ T123]", "[ C1]") when printed, "console" when only a
// timestamp is, and "" for a line with no prefix.
const consoleCtx = "console"

var prefixRe = regexp.MustCompile(`^(?:\*\* [0-9]+ printk messages dropped \*\* )?(?:.* login: )?(?:\<[0-9]+\>)?\[ *[0-9]+\.[0-9]+\](\[ *(?:C|T)[0-9]+\])? `)

// splitPrefix returns the line's context, its text after the prefix, and
// whether that text is a questionable ("? func+...") frame.
func splitPrefix(line []byte) (ctx string, body []byte, questionable bool) {
	ctx, ok := fastContext(line)
	if !ok {
		if bytes.Contains(line, []byte("printk messages dropped")) || bytes.Contains(line, []byte(" login: ")) {
			if m := prefixRe.FindSubmatchIndex(line); m != nil {
				ctx = consoleCtx
				if m[2] >= 0 {
					ctx = string(line[m[2]:m[3]])
				}
				ok = true
			}
		}
	}
	if !ok {
		return "", bareLevel(line), false
	}
	i := bytes.Index(line, []byte("] "))
	body = line[i+2:]
	if !bytes.Contains(body, []byte("<EOI>")) {
		if j := bytes.Index(body, []byte(" ? ")); j >= 0 {
			return ctx, body[j+2:], true
		}
		if bytes.HasSuffix(body, []byte(" (unreliable)")) {
			return ctx, body[:len(body)-13], true
		}
	}
	return ctx, body, false
}

// bareLevel strips a "<N>" log level printed without a timestamp.
func bareLevel(line []byte) []byte {
	if len(line) < 3 || line[0] != '<' {
		return line
	}
	j := 1
	for j < len(line) && j < 4 && line[j] >= '0' && line[j] <= '9' {
		j++
	}
	if j > 1 && j < len(line) && line[j] == '>' {
		return line[j+1:]
	}
	return line
}

// fastContext parses the common prefixes without a regular expression.
func fastContext(line []byte) (string, bool) {
	i := 0
	if i < len(line) && line[i] == '<' {
		j := i + 1
		for j < len(line) && line[j] >= '0' && line[j] <= '9' {
			j++
		}
		if j == i+1 || j >= len(line) || line[j] != '>' {
			return "", false
		}
		i = j + 1
	}
	if i >= len(line) || line[i] != '[' {
		return "", false
	}
	i++
	for i < len(line) && line[i] == ' ' {
		i++
	}
	d := i
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	if i == d || i >= len(line) || line[i] != '.' {
		return "", false
	}
	i++
	d = i
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	if i == d || i >= len(line) || line[i] != ']' {
		return "", false
	}
	i++
	if i < len(line) && line[i] == ' ' {
		return consoleCtx, true
	}
	if i >= len(line) || line[i] != '[' {
		return "", false
	}
	c := i
	i++
	for i < len(line) && line[i] == ' ' {
		i++
	}
	if i >= len(line) || line[i] != 'C' && line[i] != 'T' {
		return "", false
	}
	i++
	d = i
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	if i == d || i+1 >= len(line) || line[i] != ']' || line[i+1] != ' ' {
		return "", false
	}
	return string(line[c : i+1]), true
}

func isCPUContext(ctx string) bool {
	return strings.HasPrefix(ctx, "[") && strings.Contains(ctx, "C")
}

// groupOf maps a context to the key of its open report: each task or CPU
// has its own; all unprefixed and timestamp-only lines share one.
func groupOf(ctx string) string {
	if ctx == consoleCtx {
		return ""
	}
	return ctx
}

// titleFrameRe finds the function a title names.
var titleFrameRe = regexp.MustCompile(`.* in ((?:<[a-zA-Z0-9_: ]+>)?[a-zA-Z0-9_:]+)`)

// build titles the collected text and assembles the Report.
func (p *pending) build() Report {
	text := p.text
	d := describe(text, p.rule)
	corrupted := d.corrupted
	if corrupted == "" {
		corrupted = traceDamaged(d.title, text, d.format)
	}
	rep := Report{
		Title:           normalizeTitle(d.title),
		Corrupted:       corrupted != "",
		CorruptedReason: corrupted,
		StartLine:       p.start,
		EndLine:         p.end,
		Report:          string(text),
	}
	alts := make([]string, 0, len(d.alts))
	for _, a := range d.alts {
		alts = append(alts, normalizeTitle(a))
	}
	rep.AltTitles = unique(alts)
	if rep.AltTitles == nil {
		rep.AltTitles = []string{}
	}
	rep.Type = TitleType(rep.Title)
	rep.Stack = parseStack(text)
	trace := d.frames
	if len(trace) == 0 {
		trace = firstTrace(text)
	}
	rep.Frames = guiltyFirst(rep.Title, trace, rep.Stack, text)
	rep.Lockdep = parseLockdep(text)
	return rep
}

// globalSkip skips the frames of skippedFrames.
var globalSkip = newSkipSet(nil)

// firstTrace returns the frames of the first call trace in text, without
// the frames that are never guilty.
func firstTrace(text []byte) []string {
	lines := bytes.Split(text, []byte("\n"))
	for i, ln := range lines {
		if !isTraceStart(ln) {
			continue
		}
		var out []string
		for _, l := range lines[i+1:] {
			if isTraceStart(l) {
				break
			}
			out = appendFrames(out, frameMatch(l), globalSkip)
		}
		return out
	}
	return nil
}

// guiltyFirst lists the guilty frame and then the frames that follow it in
// the trace it came from.
func guiltyFirst(title string, trace []string, stack []Frame, text []byte) []string {
	guilty := ""
	if m := titleFrameRe.FindStringSubmatch(title); m != nil && m[1] != "corrupted" && namesFunction(m[1], trace, text) {
		guilty = m[1]
	}
	out := []string{}
	if guilty != "" {
		out = append(out, guilty)
	}
	if len(trace) == 0 {
		for _, f := range stack {
			trace = append(trace, f.Func)
		}
	}
	found := guilty == ""
	for _, f := range trace {
		if !found {
			if f == guilty || shortestStripped(f) == guilty {
				found = true
			}
			continue
		}
		out = append(out, f)
	}
	if !found {
		// The guilty frame came from a step before the trace: all of it follows.
		for _, f := range trace {
			if f != guilty {
				out = append(out, f)
			}
		}
	}
	return out
}

// namesFunction reports whether the name a title ends with is a function
// of the report (a frame of its trace, or printed as "name+0x" or
// "name("), rather than a word such as the "unmount" of "BUG: Dentry still
// in use in unmount".
func namesFunction(name string, trace []string, text []byte) bool {
	for _, f := range trace {
		if f == name || shortestStripped(f) == name {
			return true
		}
	}
	return !isPlainWord(name) || bytes.Contains(text, []byte(name+"+0x")) || bytes.Contains(text, []byte(name+"("))
}

// isPlainWord reports whether s is lower-case letters only, as an English
// word in a title is; function names mostly are not.
func isPlainWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// isExactFrame reports whether a frame line names the faulting
// instruction (RIP/IP/NIP/PC lines) rather than a return address.
func isExactFrame(ln []byte) bool {
	return bytes.Contains(ln, []byte("IP: ")) || bytes.Contains(ln, []byte("PC is at ")) ||
		bytes.Contains(ln, []byte("pc : "))
}

// isLockSite reports whether a frame is a lock site of a lockdep report,
// from the text of its line before the frame: the frame follows "at: "
// (after the old "[<address>] " form, if any). Other "at" lines ("at
// fs/namei.c:12", "enabled at (1234): ") have no colon right after "at".
func isLockSite(before []byte) bool {
	before = bytes.TrimRight(before, " ")
	if bytes.HasSuffix(before, []byte("]")) {
		if j := bytes.LastIndex(before, []byte("[<")); j >= 0 {
			before = bytes.TrimRight(before[:j], " ")
		}
	}
	return bytes.HasSuffix(before, []byte("at:"))
}

// parseStack lists the frames printed in text ("func+0xoff/0xsize [mod]"),
// in order.
func parseStack(text []byte) []Frame {
	var out []Frame
	for len(text) > 0 {
		i := bytes.IndexByte(text, '\n')
		var ln []byte
		if i < 0 {
			ln, text = text, nil
		} else {
			ln, text = text[:i], text[i+1:]
		}
		f, ok := parseFrame(ln)
		if !ok {
			continue
		}
		f.Exact = isExactFrame(ln)
		out = append(out, f)
		if len(out) >= 512 {
			break
		}
	}
	return out
}

// ParseFrame finds the first "func+0xoff/0xsize" in a console line, with
// the module that may follow in brackets; ok is false when there is none.
func ParseFrame(line string) (f Frame, ok bool) {
	f, ok = parseFrame([]byte(line))
	if ok {
		f.Exact = isExactFrame([]byte(line))
	}
	return f, ok
}

func parseFrame(ln []byte) (Frame, bool) {
	for from := 0; ; {
		k := bytes.Index(ln[from:], []byte("+0x"))
		if k < 0 {
			return Frame{}, false
		}
		k += from
		from = k + 3
		s := k
		for s > 0 && (isIdent(ln[s-1]) || ln[s-1] == '.') {
			s--
		}
		if s == k || s > 0 && !(ln[s-1] == ' ' || ln[s-1] == '\t' || ln[s-1] == '(' || ln[s-1] == ']' || ln[s-1] == ':') {
			continue
		}
		j := k + 3
		off := j
		for j < len(ln) && isHex(ln[j]) {
			j++
		}
		if j == off || j+3 > len(ln) || string(ln[j:j+3]) != "/0x" {
			continue
		}
		j += 3
		sz := j
		for j < len(ln) && isHex(ln[j]) {
			j++
		}
		if j == sz {
			continue
		}
		f := Frame{Func: string(ln[s:k]), Size: parseHex(ln[sz:j]), Lock: isLockSite(ln[:s])}
		f.Offset = parseHex(ln[off : sz-3])
		rest := ln[j:]
		if len(rest) > 0 && rest[0] == ' ' {
			rest = rest[1:]
		}
		if len(rest) > 1 && rest[0] == '[' {
			e := 1
			for e < len(rest) && (isIdent(rest[e]) || rest[e] == '.') {
				e++
			}
			if e > 1 && e < len(rest) && (rest[e] == ']' || rest[e] == ' ') {
				f.Module = string(rest[1:e])
			}
		}
		return f, true
	}
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

func parseHex(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		}
	}
	return v
}

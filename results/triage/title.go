package triage

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// keyFrame is a guilty frame as used in a title (syscall prefixes
// stripped) and as printed.
type keyFrame struct {
	canonical string
	raw       string
}

// description is what titling a report yields.
type description struct {
	title     string
	alts      []string
	corrupted string // reason, empty when the report is sound
	format    *format
	frames    []string // the frames of the trace the guilty frame came from
}

// describe titles the report text (prefix-stripped lines, the first being
// the header line of r).
func describe(text []byte, r *rule) description {
	var d description
	start := len(text)
	matchedTitle := false
	for _, f := range r.formats {
		m := f.title.FindSubmatchIndex(text)
		if m == nil || m[0] > start {
			continue
		}
		if m[0] == start && d.title != "" {
			continue
		}
		if m[0] < start {
			d.title, d.format, start = "", nil, m[0]
		}
		matchedTitle = true
		if f.report != nil {
			if m = f.report.FindSubmatchIndex(text); m == nil {
				continue
			}
		}
		var captured []any
		for i := 2; i+1 < len(m); i += 2 {
			if m[i] < 0 {
				captured = append(captured, "")
				continue
			}
			captured = append(captured, string(text[m[i]:m[i+1]]))
		}
		if f.more != nil {
			arg, ok := f.more(text)
			if !ok {
				continue
			}
			captured = append(captured, arg)
		}
		var keys []keyFrame
		d.corrupted = ""
		d.frames = nil
		if f.stack != nil {
			var ok bool
			keys, d.frames, ok = guiltyFrames(f.stack, text[m[0]:])
			if !ok {
				d.corrupted = "extracted no frames"
			}
		}
		args := append(append([]any(nil), captured...), canonicalOf(keys)...)
		d.title = fmt.Sprintf(f.tmpl, args...)
		for _, a := range f.alt {
			d.alts = append(d.alts, fmt.Sprintf(a, args...))
		}
		// Titles with partially stripped syscall prefixes also name this
		// bug, which helps dedup across kernel versions.
		for _, seq := range strippedVariants(captured, keys) {
			if t := fmt.Sprintf(f.tmpl, seq...); t != d.title {
				d.alts = append(d.alts, t)
			}
			for _, a := range f.alt {
				d.alts = append(d.alts, fmt.Sprintf(a, seq...))
			}
		}
		d.alts = unique(d.alts)
		d.format = f
	}
	if d.title == "" {
		if matchedTitle {
			d.corrupted = "matched title but not report regexp"
		}
		pos := bytes.Index(text, []byte(r.header))
		if pos < 0 {
			return d
		}
		end := bytes.IndexByte(text[pos:], '\n')
		if end < 0 {
			end = len(text)
		} else {
			end += pos
		}
		d.title = string(text[pos:end])
	}
	if d.corrupted == "" && d.format != nil && d.format.corrupted {
		d.corrupted = "report format is marked as corrupted"
	}
	return d
}

func canonicalOf(keys []keyFrame) []any {
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = k.canonical
	}
	return out
}

// strippedVariants lists the argument lists with the raw frame and with
// each syscall prefix removed, where that changes anything.
func strippedVariants(captured []any, keys []keyFrame) [][]any {
	var out [][]any
	for i := 0; i <= len(syscallPrefixes); i++ {
		prefix, add := "", true
		if i > 0 {
			prefix, add = syscallPrefixes[i-1], false
		}
		var list []any
		for _, k := range keys {
			t := strings.TrimPrefix(k.raw, prefix)
			if t != k.raw {
				add = true
			}
			list = append(list, t)
		}
		if add {
			out = append(out, append(append([]any(nil), captured...), list...))
		}
	}
	return out
}

func unique(in []string) []string {
	seen := make(map[string]bool, len(in))
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// shortestStripped removes whichever syscall prefix shortens the name most.
func shortestStripped(frame string) string {
	best := frame
	for _, p := range syscallPrefixes {
		if t := strings.TrimPrefix(frame, p); len(t) < len(best) {
			best = t
		}
	}
	return best
}

// guiltyFrames runs the stack spec over text and returns one key frame per
// trace (or capturing step group), the frames of the first trace, and
// whether every key frame was found.
func guiltyFrames(s *stackSpec, text []byte) ([]keyFrame, []string, bool) {
	if s.moduleFirst {
		if frames := moduleFrames(s, text); len(frames) > 0 {
			return []keyFrame{{frames[0], frames[0]}}, frames, true
		}
	}
	keys, frames, ok := walkSteps(s, s.steps, text)
	if ok || len(s.altSteps) == 0 {
		return keys, frames, ok
	}
	return walkSteps(s, s.altSteps, text)
}

// moduleFrames returns the frames of text from the first one of a loadable
// module that the spec does not skip, or nil when there is none.
func moduleFrames(s *stackSpec, text []byte) []string {
	var out []string
	for len(text) > 0 {
		ln := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			ln, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		if bytes.HasPrefix(bytes.TrimSpace(ln), []byte("? ")) {
			continue // questionable
		}
		f, ok := parseFrame(ln)
		if !ok {
			continue
		}
		if len(out) == 0 && f.Module == "" {
			continue
		}
		name := demangle(f.Func)
		if s.skipper.skipped(name) {
			continue
		}
		out = append(out, name)
	}
	return out
}

func (s *stackSpec) choose(raw []string) keyFrame {
	if len(raw) == 0 {
		return keyFrame{}
	}
	stripped := make([]string, len(raw))
	for i, f := range raw {
		stripped[i] = shortestStripped(f)
	}
	if s.pick == nil {
		return keyFrame{stripped[0], raw[0]}
	}
	if f, i := s.pick(stripped); f != "" {
		return keyFrame{f, raw[i]}
	}
	return keyFrame{}
}

func walkSteps(s *stackSpec, steps []*regexp.Regexp, text []byte) ([]keyFrame, []string, bool) {
	lines := bytes.Split(text, []byte("\n"))
	var raw, firstTrace []string
	var keys []keyFrame
	ok := true
	traces := 0
	flush := func() {
		k := s.choose(raw)
		if k.canonical == "" {
			k, ok = keyFrame{"corrupted", "corrupted"}, false
		}
		if firstTrace == nil {
			firstTrace = raw
		}
		keys = append(keys, k)
		raw = nil
	}
step:
	for i := 0; ; i++ {
		if i == len(steps) || steps[i] == traceHere && traces > 0 {
			flush()
		}
		if i == len(steps) {
			break
		}
		cur := steps[i]
		if cur == traceHere {
			traces++
			for len(lines) > 0 {
				ln := lines[0]
				lines = lines[1:]
				if anyMatch(ln, badTraceLines) {
					ok = false
					continue step
				}
				if isTraceStart(ln) {
					continue step
				}
				if i != len(steps)-1 && stepMayMatch(steps[i+1], ln) {
					if m := steps[i+1].FindSubmatch(ln); m != nil {
						raw = appendFrames(raw, m, s.skipper)
						i++
						continue step
					}
				}
				raw = appendFrames(raw, frameMatch(ln), s.skipper)
			}
			continue
		}
		for len(lines) > 0 {
			ln := lines[0]
			lines = lines[1:]
			if anyMatch(ln, badTraceLines) {
				ok = false
				continue step
			}
			if !stepMayMatch(cur, ln) {
				continue
			}
			if m := cur.FindSubmatch(ln); m != nil {
				raw = appendFrames(raw, m, s.skipper)
				break
			}
		}
	}
	return keys, firstTrace, ok
}

// frameMatch returns the submatches of the first frame pattern matching ln:
// the whole match and the function name(s).
func frameMatch(ln []byte) [][]byte {
	if name, ok := plainFrame(ln); ok {
		return [][]byte{ln, name}
	}
	if bytes.Contains(ln, []byte(") from ")) {
		return frameLines[1].FindSubmatch(ln)
	}
	return nil
}

// plainFrame matches frameLines[0], `^ *(?:PC ){0,2}FUNC`, by hand: spaces,
// up to two bracketed addresses each followed by a space, then a function
// name followed by '.' or '+'.
func plainFrame(ln []byte) ([]byte, bool) {
	i := 0
	for i < len(ln) && ln[i] == ' ' {
		i++
	}
	for rep := 0; rep < 2; rep++ {
		j, ok := bracketedPC(ln, i)
		if !ok || j >= len(ln) || ln[j] != ' ' {
			break
		}
		i = j + 1
	}
	s := i
	for i < len(ln) && isIdent(ln[i]) {
		i++
	}
	if i > s && i < len(ln) && (ln[i] == '.' || ln[i] == '+') {
		return ln[s:i], true
	}
	return nil, false
}

// bracketedPC matches `\[\<?(?:0x)?[0-9a-f]+\>?\]` at ln[i:] and returns
// the index after it.
func bracketedPC(ln []byte, i int) (int, bool) {
	if i >= len(ln) || ln[i] != '[' {
		return 0, false
	}
	i++
	if i < len(ln) && ln[i] == '<' {
		i++
	}
	rest := func(j int) (int, bool) {
		h := j
		for j < len(ln) && isHex(ln[j]) {
			j++
		}
		if j == h {
			return 0, false
		}
		if j < len(ln) && ln[j] == '>' {
			j++
		}
		if j < len(ln) && ln[j] == ']' {
			return j + 1, true
		}
		return 0, false
	}
	if i+1 < len(ln) && ln[i] == '0' && ln[i+1] == 'x' {
		if j, ok := rest(i + 2); ok {
			return j, true
		}
	}
	return rest(i)
}

func isIdent(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func appendFrames(frames []string, m [][]byte, skip *skipSet) []string {
	if len(m) < 2 {
		return frames
	}
	for _, f := range m[1:] {
		if f == nil {
			continue
		}
		name := demangle(string(f))
		if skip == nil || !skip.skipped(name) {
			frames = append(frames, name)
		}
	}
	return frames
}

// demangle turns a Rust v0 symbol (see demangleRust) or a simple Itanium C++ symbol ("_Z8fakeNameiii",
// "_ZN2ns4funcEv") into its name without parameters ("fakeName",
// "ns::func"); anything else is returned as is.
func demangle(sym string) string {
	if r, ok := demangleRust(sym); ok {
		return r
	}
	if !strings.HasPrefix(sym, "_Z") {
		return sym
	}
	s := sym[2:]
	nested := strings.HasPrefix(s, "N")
	if nested {
		s = s[1:]
	}
	var parts []string
	for len(s) > 0 && s[0] >= '0' && s[0] <= '9' {
		n, i := 0, 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' && n < 1<<20 {
			n = n*10 + int(s[i]-'0')
			i++
		}
		if n == 0 || i+n > len(s) {
			return sym
		}
		parts = append(parts, s[i:i+n])
		s = s[i+n:]
		if !nested {
			break
		}
	}
	if len(parts) == 0 || nested && !strings.HasPrefix(s, "E") {
		return sym
	}
	return strings.Join(parts, "::")
}

func anyMatch(ln []byte, res []*regexp.Regexp) bool {
	for _, re := range res {
		if re.Match(ln) {
			return true
		}
	}
	return false
}

// traceDamaged reports why a titled report's stack traces cannot be trusted,
// or "" when they can.
func traceDamaged(title string, text []byte, f *format) string {
	if corruptedTitle.MatchString(title) {
		return "title matches corrupted regexp"
	}
	if f == nil || f.noTrace {
		return ""
	}
	hasTrace := false
	for ki, key := range traceStarts {
		if !bytes.Contains(text, traceStartNeedles[ki]) {
			continue
		}
		m := key.FindIndex(text)
		if m == nil {
			continue
		}
		lines := bytes.Split(text[m[0]:], []byte("\n"))
		if len(lines) < 4 {
			return "call trace is missed"
		}
		bad := true
		lines = lines[1:]
	scan:
		for i := 0; i < 15 && i < len(lines); i++ {
			if isTraceStart(lines[i]) {
				break scan
			}
			if bytes.Contains(lines[i], []byte("(stack is not available)")) || frameMatch(lines[i]) != nil {
				hasTrace = true
				bad = false
				break
			}
		}
		if key != riscvStackStart && bad {
			return "no frames in a stack trace"
		}
	}
	if !hasTrace {
		return "no stack trace in report"
	}
	return ""
}

type replacement struct {
	re   *regexp.Regexp
	with string
	// needle, when set, is a byte every match contains; titles without
	// it are left alone without running the expression.
	needle string
}

// titleNormalizers make titles stable across runs: task ids, addresses,
// IPs, line numbers, offsets, CPU and other numbers.
var titleNormalizers = []replacement{
	{regexp.MustCompile(`syz-executor\.?[0-9]+((/|:)[0-9]+)?`), "syz-executor", "syz-executor"},
	{regexp.MustCompile(`syzkaller[0-9]+((/|:)[0-9]+)?`), "syzkaller", "syzkaller"},
	{regexp.MustCompile(`([^a-zA-Z0-9])(?:0x)?[0-9a-f]{6,}`), "${1}ADDR", ""},
	{regexp.MustCompile(`([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})`), "IP", "."},
	{regexp.MustCompile(`(\.\w+)(:[0-9]+)+`), "${1}:LINE", ":"},
	{regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9_.]+)\+0x[0-9a-z]+/0x[0-9a-z]+`), "${1}", "+0x"},
	{regexp.MustCompile(`CPU#[0-9]+`), "CPU", "CPU#"},
	{regexp.MustCompile(`(\W)(\d+)(\W|$)`), "${1}NUM${3}", ""},
	{regexp.MustCompile(`(\d+){7,}`), "NUM", ""},
}

// normalizeTitle applies titleNormalizers to a fixed point and then
// sanitizes the result: at most 120 bytes, printable ASCII, single spaces.
func normalizeTitle(t string) string {
	for _, r := range titleNormalizers {
		if r.needle != "" && !strings.Contains(t, r.needle) {
			continue
		}
		for {
			n := r.re.ReplaceAllString(t, r.with)
			if n == t {
				break
			}
			t = n
		}
	}
	const maxLen = 120
	out := make([]byte, 0, len(t))
	prev := byte(' ')
	for i := 0; i < len(t) && i < maxLen; i++ {
		c := t[i]
		switch {
		case c == '\t':
			c = ' '
		case c < 0x20 || c >= 0x7f:
			continue
		}
		if c == ' ' && prev == ' ' {
			continue
		}
		out = append(out, c)
		prev = c
	}
	return strings.TrimSpace(string(out))
}

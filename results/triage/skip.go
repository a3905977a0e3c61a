package triage

import (
	"regexp"
	"regexp/syntax"
	"strings"
)

// skipMatcher decides whether a function name matches any of a list of
// skip patterns, as the regular expression joining them with "|" would,
// without running a ~250-way alternation per name: patterns that stand for
// a small set of literal strings (optionally anchored with ^ or $, which is
// nearly all of them) are expanded into exact, prefix, suffix and substring
// sets; only the few others run as regular expressions, each behind a
// literal it requires.
type skipMatcher struct {
	exact    map[string]bool
	prefixes []string
	suffixes []string
	subsBy   [256][]string // substring literals by their first byte
	emptySub bool          // an empty pattern matches everything
	res      []neededRegexp
}

type neededRegexp struct {
	re     *regexp.Regexp
	needle string // a substring every match contains; "" when unknown
}

// maxExpansion bounds the literal set one pattern may expand into.
const maxExpansion = 64

func newSkipMatcher(patterns []string) *skipMatcher {
	m := &skipMatcher{exact: map[string]bool{}}
	for _, p := range patterns {
		m.add(p)
	}
	return m
}

func (m *skipMatcher) add(pattern string) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		panic("triage: bad skip pattern " + pattern + ": " + err.Error())
	}
	branches := []*syntax.Regexp{re}
	if re.Op == syntax.OpAlternate {
		branches = re.Sub
	}
	for _, b := range branches {
		if !m.addLiterals(b) {
			m.res = append(m.res, neededRegexp{regexp.MustCompile(b.String()), requiredLiteral(b)})
		}
	}
}

// addLiterals adds the branch as literal sets if it is one; false if not.
func (m *skipMatcher) addLiterals(b *syntax.Regexp) bool {
	parts := []*syntax.Regexp{b}
	if b.Op == syntax.OpConcat {
		parts = b.Sub
	}
	begin, end := false, false
	if len(parts) > 0 && parts[0].Op == syntax.OpBeginText {
		begin, parts = true, parts[1:]
	}
	if len(parts) > 0 && parts[len(parts)-1].Op == syntax.OpEndText {
		end, parts = true, parts[:len(parts)-1]
	}
	lits := []string{""}
	for _, p := range parts {
		set, ok := expand(p)
		if !ok {
			return false
		}
		var next []string
		for _, a := range lits {
			for _, s := range set {
				next = append(next, a+s)
			}
		}
		if len(next) > maxExpansion {
			return false
		}
		lits = next
	}
	for _, l := range lits {
		switch {
		case begin && end:
			m.exact[l] = true
		case begin:
			m.prefixes = append(m.prefixes, l)
		case end:
			m.suffixes = append(m.suffixes, l)
		case l == "":
			m.emptySub = true
		default:
			m.subsBy[l[0]] = append(m.subsBy[l[0]], l)
		}
	}
	return true
}

// expand returns the finite set of strings a syntax node matches, when it
// is one of literals, small character classes, captures, alternations,
// concatenations and optional parts; ok is false otherwise.
func expand(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return []string{""}, true
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return nil, false
		}
		return []string{string(re.Rune)}, true
	case syntax.OpCharClass:
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				out = append(out, string(r))
				if len(out) > maxExpansion {
					return nil, false
				}
			}
		}
		return out, true
	case syntax.OpCapture:
		return expand(re.Sub[0])
	case syntax.OpQuest:
		set, ok := expand(re.Sub[0])
		return append([]string{""}, set...), ok
	case syntax.OpAlternate:
		var out []string
		for _, s := range re.Sub {
			set, ok := expand(s)
			if !ok {
				return nil, false
			}
			out = append(out, set...)
		}
		return out, len(out) <= maxExpansion
	case syntax.OpConcat:
		out := []string{""}
		for _, s := range re.Sub {
			set, ok := expand(s)
			if !ok {
				return nil, false
			}
			var next []string
			for _, a := range out {
				for _, b := range set {
					next = append(next, a+b)
				}
			}
			if len(next) > maxExpansion {
				return nil, false
			}
			out = next
		}
		return out, true
	}
	return nil, false
}

// requiredLiteral returns the longest case-sensitive literal among the
// top-level parts of re, which every match contains; "" when none is known.
func requiredLiteral(re *syntax.Regexp) string {
	parts := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		parts = re.Sub
	}
	best := ""
	for _, p := range parts {
		if p.Op == syntax.OpLiteral && p.Flags&syntax.FoldCase == 0 && len(string(p.Rune)) > len(best) {
			best = string(p.Rune)
		}
	}
	return best
}

// match reports whether name matches any of the patterns.
func (m *skipMatcher) match(name string) bool {
	if m.emptySub || m.exact[name] {
		return true
	}
	for _, p := range m.prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	for _, s := range m.suffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	for i := 0; i < len(name); i++ {
		for _, l := range m.subsBy[name[i]] {
			if strings.HasPrefix(name[i:], l) {
				return true
			}
		}
	}
	for _, r := range m.res {
		if (r.needle == "" || strings.Contains(name, r.needle)) && r.re.MatchString(name) {
			return true
		}
	}
	return false
}

// skipSet is the skip test of one stack spec: the global skippedFrames
// and the spec's own patterns.
type skipSet struct {
	global, own *skipMatcher
}

var globalSkipMatcher = newSkipMatcher(skippedFrames)

func newSkipSet(own []string) *skipSet {
	s := &skipSet{global: globalSkipMatcher}
	if len(own) > 0 {
		s.own = newSkipMatcher(own)
	}
	return s
}

// skipped reports whether a frame of this name is never guilty.
func (s *skipSet) skipped(name string) bool {
	return s.global.match(name) || s.own != nil && s.own.match(name)
}

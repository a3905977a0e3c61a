package kconfig

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Dropped is a requested option that the final .config does not have.
type Dropped struct {
	// Option is what was asked for, with the fragment line that asked.
	Option Option
	// Got is the value in the final .config ("n" when not set).
	Got string
	// DependsOn is the symbol's full dependency as the Kconfig files state
	// it (enclosing if/menu conditions included), "" when it has none or
	// when the tree was not searched.
	DependsOn string
	// Unmet lists the terms of DependsOn that are false in the final
	// .config, e.g. "NFS_FS" or "!KASAN".
	Unmet []string
	// Reason says why in words when there is no unmet dependency to show:
	// the symbol does not exist, or has no prompt and is only selected.
	Reason string
}

// String renders the drop in one line, e.g.
// `CONFIG_NFS_V4=y (preset nfs-client:3) dropped, got n: depends on NETWORK_FILESYSTEMS && NFS_FS (unmet: NFS_FS)`.
func (d Dropped) String() string {
	s := fmt.Sprintf("%s (%s) dropped, got %s", d.Option.Line(), d.Option.Source, d.Got)
	if d.DependsOn != "" {
		s += ": depends on " + d.DependsOn
		if len(d.Unmet) > 0 {
			s += " (unmet: " + strings.Join(d.Unmet, ", ") + ")"
		}
	}
	if d.Reason != "" {
		s += ": " + d.Reason
	}
	return s
}

// Check compares the requested options with the final .config and returns
// the ones that did not survive. When srctree is not "", the Kconfig files
// under it (arch/ limited to arch) are read to name each dropped symbol's
// dependency and which of its terms are unmet.
func Check(final Config, requested []Option, srctree, arch string) ([]Dropped, error) {
	var dropped []Dropped
	for _, o := range requested {
		got := final.Value(o.Name)
		if got == o.Value || (o.Value == "n" && got == "n") {
			continue
		}
		dropped = append(dropped, Dropped{Option: o, Got: got})
	}
	if len(dropped) == 0 || srctree == "" {
		return dropped, nil
	}
	want := map[string]bool{}
	for _, d := range dropped {
		want[strings.TrimPrefix(d.Option.Name, "CONFIG_")] = true
	}
	defs, err := scanKconfig(srctree, arch, want)
	if err != nil {
		return dropped, err
	}
	for i := range dropped {
		d := &dropped[i]
		sym := strings.TrimPrefix(d.Option.Name, "CONFIG_")
		ds := defs[sym]
		if len(ds) == 0 {
			d.Reason = "no such symbol in this tree's Kconfig files"
			continue
		}
		// A symbol may be defined more than once; show the first
		// definition whose dependency is unmet, else the first.
		def := ds[0]
		for _, x := range ds {
			if len(unmetTerms(x.deps(), final)) > 0 {
				def = x
				break
			}
		}
		d.DependsOn = strings.Join(def.deps(), " && ")
		d.Unmet = unmetTerms(def.deps(), final)
		if len(d.Unmet) == 0 {
			switch {
			case !anyPrompt(ds):
				d.Reason = "it has no prompt: only a select can set it"
			case d.Option.Value == "m" && final.Value("CONFIG_MODULES") != "y":
				d.Reason = "modules are disabled (CONFIG_MODULES is not set)"
			default:
				d.Reason = fmt.Sprintf("Kconfig chose %s (a select, a choice or a range overrode the request; defined at %s)", d.Got, def.where)
			}
		}
	}
	return dropped, nil
}

// symbolDef is one "config SYM" entry in a Kconfig file.
type symbolDef struct {
	where     string   // file:line
	outer     []string // enclosing if / menu / choice conditions
	dependsOn []string // the entry's own "depends on" lines
	prompt    bool
}

// deps returns every condition the symbol depends on; ones with a
// top-level || are parenthesized so that joining them with && is right.
func (d symbolDef) deps() []string {
	var all []string
	for _, e := range append(append([]string{}, d.outer...), d.dependsOn...) {
		if len(splitOr(e)) > 1 {
			e = "(" + e + ")"
		}
		all = append(all, e)
	}
	return all
}

func anyPrompt(ds []symbolDef) bool {
	for _, d := range ds {
		if d.prompt {
			return true
		}
	}
	return false
}

var (
	kwRe     = regexp.MustCompile(`^(config|menuconfig|choice|endchoice|if|endif|menu|endmenu|source|rsource|osource|orsource|comment|mainmenu)\b\s*(.*)$`)
	dependRe = regexp.MustCompile(`^depends\s+on\s+(.*)$`)
	promptRe = regexp.MustCompile(`^(bool|tristate|string|int|hex|prompt)\s+"`)
)

// scanKconfig reads the Kconfig files of srctree the way Kconfig does,
// from the top Kconfig file through its source statements ($(SRCARCH) is
// arch), and returns the definitions of the wanted symbols with the if,
// menu and choice conditions they sit in, across files.
func scanKconfig(srctree, arch string, want map[string]bool) (map[string][]symbolDef, error) {
	s := &kconfigScanner{srctree: srctree, arch: arch, want: want, defs: map[string][]symbolDef{}, seen: map[string]bool{}}
	if err := s.file("Kconfig", nil); err != nil {
		return nil, fmt.Errorf("kconfig: reading Kconfig files under %s: %w", srctree, err)
	}
	return s.defs, nil
}

type kconfigScanner struct {
	srctree, arch string
	want          map[string]bool
	defs          map[string][]symbolDef
	seen          map[string]bool
}

// frame is an if, menu or choice block open in a file.
type frame struct {
	kind string // "if", "menu", "choice"
	cond []string
}

func (s *kconfigScanner) file(rel string, inherited []string) error {
	if s.seen[rel] {
		return nil
	}
	s.seen[rel] = true
	f, err := os.Open(filepath.Join(s.srctree, rel))
	if err != nil {
		if os.IsNotExist(err) {
			return nil // osource, or a tree without that file
		}
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var (
		stack   []frame
		cur     *symbolDef // entry being read, if wanted
		curSym  string
		inMenu  *frame // menu/choice header collecting its depends on
		lineNo  int
		pending string
		// help text: inHelp after a "help" line, until a line indented
		// less than the first line of the text.
		inHelp     bool
		helpIndent int
		keyIndent  int
	)
	flush := func() {
		if cur != nil {
			s.defs[curSym] = append(s.defs[curSym], *cur)
		}
		cur, curSym, inMenu = nil, "", nil
	}
	outer := func() []string {
		all := append([]string{}, inherited...)
		for _, fr := range stack {
			all = append(all, fr.cond...)
		}
		return all
	}
	for sc.Scan() {
		lineNo++
		raw := sc.Text()
		if strings.HasSuffix(raw, "\\") {
			pending += strings.TrimSuffix(raw, "\\") + " "
			continue
		}
		line := strings.TrimSpace(pending + raw)
		pending = ""
		if inHelp {
			if line == "" {
				continue
			}
			ind := indentOf(raw)
			if helpIndent < 0 {
				helpIndent = ind
			}
			if ind >= helpIndent && ind > keyIndent {
				continue
			}
			inHelp = false
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line == "help" || line == "---help---" {
			inHelp, helpIndent, keyIndent = true, -1, indentOf(raw)
			continue
		}
		if m := kwRe.FindStringSubmatch(line); m != nil {
			flush()
			arg := strings.TrimSpace(m[2])
			switch m[1] {
			case "config", "menuconfig":
				if s.want[arg] {
					cur = &symbolDef{where: fmt.Sprintf("%s:%d", rel, lineNo), outer: outer()}
					curSym = arg
				}
			case "if":
				stack = append(stack, frame{kind: "if", cond: []string{stripComment(arg)}})
			case "menu", "choice":
				stack = append(stack, frame{kind: m[1]})
				inMenu = &stack[len(stack)-1]
			case "endif", "endmenu", "endchoice":
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
				}
			case "source", "rsource", "osource", "orsource":
				if err := s.source(m[1], arg, rel, outer()); err != nil {
					return err
				}
			}
			continue
		}
		if m := dependRe.FindStringSubmatch(line); m != nil {
			expr := stripComment(m[1])
			switch {
			case cur != nil:
				cur.dependsOn = append(cur.dependsOn, expr)
			case inMenu != nil:
				inMenu.cond = append(inMenu.cond, expr)
			}
			continue
		}
		if cur != nil && promptRe.MatchString(line) {
			cur.prompt = true
		}
	}
	flush()
	return sc.Err()
}

// source follows a source statement: the path is quoted, may use
// $(SRCARCH) and globs, and is relative to the tree (source) or to the
// current file (rsource).
func (s *kconfigScanner) source(kind, arg, from string, outer []string) error {
	p := strings.Trim(stripComment(arg), `"`)
	for _, v := range []string{"$(SRCARCH)", "$(ARCH)", "$(HEADER_ARCH)"} {
		p = strings.ReplaceAll(p, v, s.arch)
	}
	if strings.Contains(p, "$(") {
		return nil // a macro this scanner does not know
	}
	if strings.HasPrefix(kind, "r") || kind == "orsource" {
		p = filepath.Join(filepath.Dir(from), p)
	}
	matches := []string{p}
	if strings.ContainsAny(p, "*?[") {
		abs, _ := filepath.Glob(filepath.Join(s.srctree, p))
		matches = matches[:0]
		for _, a := range abs {
			r, _ := filepath.Rel(s.srctree, a)
			matches = append(matches, r)
		}
	}
	for _, m := range matches {
		if err := s.file(filepath.Clean(m), outer); err != nil {
			return err
		}
	}
	return nil
}

func stripComment(s string) string {
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// unmetTerms splits each dependency on its top-level && and returns the
// terms that evaluate to n in final, in order, without duplicates.
func unmetTerms(deps []string, final Config) []string {
	var out []string
	seen := map[string]bool{}
	for _, dep := range deps {
		for _, term := range splitAnd(dep) {
			v, err := evalExpr(term, final)
			if err != nil || v > 0 || seen[term] {
				continue
			}
			seen[term] = true
			out = append(out, term)
		}
	}
	return out
}

// splitOr splits a Kconfig expression on its top-level || operators.
func splitOr(expr string) []string { return splitTop(expr, '|') }

// splitAnd splits a Kconfig expression on its top-level && operators.
func splitAnd(expr string) []string {
	terms := splitTop(expr, '&')
	// A term that is wholly parenthesized is split again inside.
	var out []string
	for _, t := range terms {
		if inner, ok := unparen(t); ok && len(splitOr(inner)) == 1 {
			out = append(out, splitAnd(inner)...)
			continue
		}
		out = append(out, t)
	}
	return out
}

// unparen strips one pair of parentheses enclosing all of s.
func unparen(s string) (string, bool) {
	if !strings.HasPrefix(s, "(") || !strings.HasSuffix(s, ")") {
		return s, false
	}
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 && i != len(s)-1 {
				return s, false
			}
		}
	}
	return strings.TrimSpace(s[1 : len(s)-1]), true
}

// splitTop splits expr on the doubled operator op (&& or ||) where it is
// not inside parentheses.
func splitTop(expr string, op byte) []string {
	var terms []string
	depth, start := 0, 0
	for i := 0; i < len(expr); i++ {
		switch expr[i] {
		case '(':
			depth++
		case ')':
			depth--
		case op:
			if depth == 0 && i+1 < len(expr) && expr[i+1] == op {
				terms = append(terms, strings.TrimSpace(expr[start:i]))
				start = i + 2
				i++
			}
		}
	}
	return append(terms, strings.TrimSpace(expr[start:]))
}

// indentOf returns the width of raw's leading white space, tabs counting 8.
func indentOf(raw string) int {
	n := 0
	for _, c := range raw {
		switch c {
		case ' ':
			n++
		case '\t':
			n = (n/8 + 1) * 8
		default:
			return n
		}
	}
	return n
}

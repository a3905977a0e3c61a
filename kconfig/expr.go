package kconfig

import (
	"fmt"
	"strconv"
	"strings"
)

// evalExpr evaluates a Kconfig expression (symbols without the CONFIG_
// prefix, y/m/n, quoted strings, numbers, !, &&, ||, =, !=, <, <=, >, >=,
// parentheses) against final, as a tristate: 0 (n), 1 (m) or 2 (y).
func evalExpr(expr string, final Config) (int, error) {
	toks, err := tokenize(expr)
	if err != nil {
		return 0, err
	}
	p := &exprParser{toks: toks, cfg: final}
	v, err := p.or()
	if err != nil {
		return 0, fmt.Errorf("kconfig: expression %q: %w", expr, err)
	}
	if p.pos != len(p.toks) {
		return 0, fmt.Errorf("kconfig: expression %q: unexpected %q", expr, p.toks[p.pos])
	}
	return v, nil
}

func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case strings.HasPrefix(s[i:], "&&"), strings.HasPrefix(s[i:], "||"),
			strings.HasPrefix(s[i:], "!="), strings.HasPrefix(s[i:], "<="), strings.HasPrefix(s[i:], ">="):
			toks = append(toks, s[i:i+2])
			i += 2
		case strings.ContainsRune("!()=<>", rune(c)):
			toks = append(toks, string(c))
			i++
		case c == '"' || c == '\'':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("kconfig: unterminated string in %q", s)
			}
			toks = append(toks, s[i:i+j+2])
			i += j + 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t!()=<>&|\"'", rune(s[j])) {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("kconfig: unexpected %q in %q", c, s)
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}

type exprParser struct {
	toks []string
	pos  int
	cfg  Config
}

func (p *exprParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *exprParser) or() (int, error) {
	v, err := p.and()
	for err == nil && p.peek() == "||" {
		p.pos++
		var w int
		if w, err = p.and(); w > v {
			v = w
		}
	}
	return v, err
}

func (p *exprParser) and() (int, error) {
	v, err := p.unary()
	for err == nil && p.peek() == "&&" {
		p.pos++
		var w int
		if w, err = p.unary(); w < v {
			v = w
		}
	}
	return v, err
}

func (p *exprParser) unary() (int, error) {
	switch p.peek() {
	case "!":
		p.pos++
		v, err := p.unary()
		return 2 - v, err
	case "(":
		p.pos++
		v, err := p.or()
		if err != nil {
			return 0, err
		}
		if p.peek() != ")" {
			return 0, fmt.Errorf("missing )")
		}
		p.pos++
		return v, nil
	case "":
		return 0, fmt.Errorf("unexpected end")
	}
	left := p.toks[p.pos]
	p.pos++
	switch op := p.peek(); op {
	case "=", "!=", "<", "<=", ">", ">=":
		p.pos++
		if p.peek() == "" {
			return 0, fmt.Errorf("missing operand after %s", op)
		}
		right := p.toks[p.pos]
		p.pos++
		return compare(p.value(left), op, p.value(right)), nil
	}
	return tristate(p.value(left)), nil
}

// value returns a term's string value: constants as written, symbols from
// the config ("n" when unset).
func (p *exprParser) value(tok string) string {
	if strings.HasPrefix(tok, "\"") || strings.HasPrefix(tok, "'") {
		return tok[1 : len(tok)-1]
	}
	switch tok {
	case "y", "m", "n":
		return tok
	}
	if _, err := strconv.ParseInt(tok, 0, 64); err == nil {
		return tok
	}
	v := p.cfg.Value("CONFIG_" + tok)
	return strings.Trim(v, "\"")
}

func tristate(v string) int {
	switch v {
	case "y":
		return 2
	case "m":
		return 1
	}
	return 0
}

func compare(a, op, b string) int {
	var c int
	ai, aerr := strconv.ParseInt(a, 0, 64)
	bi, berr := strconv.ParseInt(b, 0, 64)
	switch {
	case aerr == nil && berr == nil:
		c = map[bool]int{true: -1, false: 0}[ai < bi] + map[bool]int{true: 1, false: 0}[ai > bi]
	default:
		c = strings.Compare(a, b)
	}
	ok := false
	switch op {
	case "=":
		ok = c == 0
	case "!=":
		ok = c != 0
	case "<":
		ok = c < 0
	case "<=":
		ok = c <= 0
	case ">":
		ok = c > 0
	case ">=":
		ok = c >= 0
	}
	if ok {
		return 2
	}
	return 0
}

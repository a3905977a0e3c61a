package triage

import (
	"errors"
	"strings"
)

// demangleRust turns a Rust v0 symbol ("_RNvMs3_Nt...Process10update_ref")
// into the path a Rust kernel developer reads
// ("<rust_binder::process::Process>::update_ref"), without crate hashes;
// ok is false for anything it does not understand. Supported: crate roots,
// nested paths, inherent and trait impls, generic arguments, backrefs and
// the common types.
func demangleRust(sym string) (string, bool) {
	if !strings.HasPrefix(sym, "_R") {
		return "", false
	}
	d := &rustDemangler{s: sym[2:]}
	// An optional encoding version (decimal) precedes the path.
	for d.pos < len(d.s) && d.s[d.pos] >= '0' && d.s[d.pos] <= '9' {
		d.pos++
	}
	out, err := d.path()
	if err != nil {
		return "", false
	}
	return out, true
}

var errRust = errors.New("unsupported Rust symbol")

type rustDemangler struct {
	s     string
	pos   int
	depth int
}

func (d *rustDemangler) next() (byte, error) {
	if d.pos >= len(d.s) {
		return 0, errRust
	}
	c := d.s[d.pos]
	d.pos++
	return c, nil
}

func (d *rustDemangler) peek() byte {
	if d.pos >= len(d.s) {
		return 0
	}
	return d.s[d.pos]
}

// base62 reads a base-62 number terminated by '_' ("_" is 0, "N_" is N+1).
// Disambiguators are hashes and may wrap; only backrefs use the value.
func (d *rustDemangler) base62() (uint64, error) {
	if d.peek() == '_' {
		d.pos++
		return 0, nil
	}
	var n uint64
	for {
		c, err := d.next()
		if err != nil {
			return 0, err
		}
		var v uint64
		switch {
		case c == '_':
			return n + 1, nil
		case c >= '0' && c <= '9':
			v = uint64(c - '0')
		case c >= 'a' && c <= 'z':
			v = uint64(c-'a') + 10
		case c >= 'A' && c <= 'Z':
			v = uint64(c-'A') + 36
		default:
			return 0, errRust
		}
		n = n*62 + v
	}
}

func (d *rustDemangler) disambiguator() error {
	if d.peek() == 's' {
		d.pos++
		_, err := d.base62()
		return err
	}
	return nil
}

func (d *rustDemangler) ident() (string, error) {
	if err := d.disambiguator(); err != nil {
		return "", err
	}
	if d.peek() == 'u' {
		return "", errRust // punycode
	}
	n, start := 0, d.pos
	for d.pos < len(d.s) && d.s[d.pos] >= '0' && d.s[d.pos] <= '9' {
		n = n*10 + int(d.s[d.pos]-'0')
		d.pos++
		if n > len(d.s) {
			return "", errRust
		}
	}
	if d.pos == start {
		return "", errRust
	}
	if d.peek() == '_' {
		d.pos++
	}
	if d.pos+n > len(d.s) {
		return "", errRust
	}
	id := d.s[d.pos : d.pos+n]
	d.pos += n
	return id, nil
}

// backref parses at an earlier position, then resumes here.
func (d *rustDemangler) backref(parse func() (string, error)) (string, error) {
	at, err := d.base62()
	if err != nil || at >= uint64(d.pos) {
		return "", errRust
	}
	saved := d.pos
	d.pos = int(at)
	out, err := parse()
	d.pos = saved
	return out, err
}

func (d *rustDemangler) enter() error {
	d.depth++
	if d.depth > 64 {
		return errRust
	}
	return nil
}

func (d *rustDemangler) path() (string, error) {
	if err := d.enter(); err != nil {
		return "", err
	}
	defer func() { d.depth-- }()
	c, err := d.next()
	if err != nil {
		return "", err
	}
	switch c {
	case 'C':
		return d.ident()
	case 'N':
		ns, err := d.next()
		if err != nil {
			return "", err
		}
		parent, err := d.path()
		if err != nil {
			return "", err
		}
		id, err := d.ident()
		if err != nil {
			return "", err
		}
		switch {
		case ns == 'C':
			id = "{closure}"
		case ns >= 'A' && ns <= 'Z':
			id = "{shim:" + id + "}"
		}
		return parent + "::" + id, nil
	case 'M', 'X':
		if err := d.disambiguator(); err != nil {
			return "", err
		}
		if _, err := d.path(); err != nil { // the impl's parent, not printed
			return "", err
		}
		typ, err := d.typ()
		if err != nil {
			return "", err
		}
		if c == 'M' {
			return "<" + typ + ">", nil
		}
		trait, err := d.path()
		if err != nil {
			return "", err
		}
		return "<" + typ + " as " + trait + ">", nil
	case 'Y':
		typ, err := d.typ()
		if err != nil {
			return "", err
		}
		trait, err := d.path()
		if err != nil {
			return "", err
		}
		return "<" + typ + " as " + trait + ">", nil
	case 'I':
		base, err := d.path()
		if err != nil {
			return "", err
		}
		var args []string
		for d.peek() != 'E' {
			a, err := d.genericArg()
			if err != nil {
				return "", err
			}
			if a != "" {
				args = append(args, a)
			}
		}
		d.pos++
		if len(args) == 0 {
			return base, nil
		}
		return base + "::<" + strings.Join(args, ", ") + ">", nil
	case 'B':
		return d.backref(d.path)
	}
	return "", errRust
}

func (d *rustDemangler) genericArg() (string, error) {
	switch d.peek() {
	case 'L':
		d.pos++
		_, err := d.base62()
		return "", err // lifetimes are not printed
	case 'K':
		return "", errRust // const generics
	}
	return d.typ()
}

var rustBasicTypes = map[byte]string{
	'a': "i8", 'b': "bool", 'c': "char", 'd': "f64", 'e': "str", 'f': "f32",
	'h': "u8", 'i': "isize", 'j': "usize", 'l': "i32", 'm': "u32", 'n': "i128",
	'o': "u128", 's': "i16", 't': "u16", 'u': "()", 'v': "...", 'x': "i64",
	'y': "u64", 'z': "!", 'p': "_",
}

func (d *rustDemangler) typ() (string, error) {
	if err := d.enter(); err != nil {
		return "", err
	}
	defer func() { d.depth-- }()
	c := d.peek()
	if t, ok := rustBasicTypes[c]; ok {
		d.pos++
		return t, nil
	}
	switch c {
	case 'C', 'N', 'M', 'X', 'Y', 'I':
		return d.path()
	case 'B':
		d.pos++
		return d.backref(d.typ)
	case 'R', 'Q':
		d.pos++
		if d.peek() == 'L' {
			d.pos++
			if _, err := d.base62(); err != nil {
				return "", err
			}
		}
		t, err := d.typ()
		if c == 'Q' {
			return "&mut " + t, err
		}
		return "&" + t, err
	case 'P', 'O':
		d.pos++
		t, err := d.typ()
		if c == 'O' {
			return "*mut " + t, err
		}
		return "*const " + t, err
	case 'S':
		d.pos++
		t, err := d.typ()
		return "[" + t + "]", err
	case 'T':
		d.pos++
		var ts []string
		for d.peek() != 'E' {
			t, err := d.typ()
			if err != nil {
				return "", err
			}
			ts = append(ts, t)
		}
		d.pos++
		if len(ts) == 1 {
			return "(" + ts[0] + ",)", nil
		}
		return "(" + strings.Join(ts, ", ") + ")", nil
	}
	return "", errRust
}

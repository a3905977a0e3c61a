// Package kconfig merges kernel configuration fragments with the semantics
// of the kernel's scripts/kconfig/merge_config.sh (later fragments win, and
// "# CONFIG_X is not set" is a value like any other), ships the kregress
// presets as embedded fragment files, and checks a final .config against what
// was asked for, naming every option Kconfig dropped and, where the Kconfig
// files say it, the dependency that was not met.
package kconfig

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Option is one symbol assignment from a fragment or a .config.
type Option struct {
	// Name is the symbol with its CONFIG_ prefix, e.g. "CONFIG_PROVE_LOCKING".
	Name string
	// Value is what the line assigns: "y", "m", "n" (for "# CONFIG_X is not
	// set" and "CONFIG_X=n"), a number, or a quoted string as written.
	Value string
	// Source names where the assignment came from: "file:line".
	Source string
}

// Line returns the option as a .config line.
func (o Option) Line() string {
	if o.Value == "n" {
		return "# " + o.Name + " is not set"
	}
	return o.Name + "=" + o.Value
}

// Fragment is a parsed configuration fragment: its options in file order.
type Fragment struct {
	// Name is the preset name or the file path the fragment was read from.
	Name string
	// Options are the assignments in file order; a symbol assigned twice in
	// one fragment appears twice, and the later one wins when merging.
	Options []Option
}

var (
	setRe   = regexp.MustCompile(`^(CONFIG_[A-Za-z0-9_]+)=(.*)$`)
	unsetRe = regexp.MustCompile(`^# (CONFIG_[A-Za-z0-9_]+) is not set$`)
	valueRe = regexp.MustCompile(`^([ymn]|-?[0-9]+|0x[0-9a-fA-F]+|"([^"\\]|\\.)*")$`)
)

// ParseFragment parses a fragment or a whole .config. Blank lines and
// comments are skipped; any other line that is not "CONFIG_X=value" or
// "# CONFIG_X is not set" is an error naming the file and line.
func ParseFragment(name string, data []byte) (*Fragment, error) {
	f := &Fragment{Name: name}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		src := fmt.Sprintf("%s:%d", name, n)
		if m := unsetRe.FindStringSubmatch(line); m != nil {
			f.Options = append(f.Options, Option{Name: m[1], Value: "n", Source: src})
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := setRe.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("kconfig: %s: %q is neither CONFIG_X=value nor \"# CONFIG_X is not set\"", src, line)
		}
		if !valueRe.MatchString(m[2]) {
			return nil, fmt.Errorf("kconfig: %s: bad value %q for %s (want y, m, n, a number or a quoted string)", src, m[2], m[1])
		}
		f.Options = append(f.Options, Option{Name: m[1], Value: m[2], Source: src})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kconfig: reading %s: %w", name, err)
	}
	return f, nil
}

// ReadFragment reads and parses the fragment file at path.
func ReadFragment(path string) (*Fragment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kconfig: reading fragment: %w", err)
	}
	return ParseFragment(path, data)
}

// Load returns the preset called nameOrPath if there is one, and otherwise
// reads nameOrPath as a fragment file.
func Load(nameOrPath string) (*Fragment, error) {
	if f, err := Preset(nameOrPath); err == nil {
		return f, nil
	}
	if _, err := os.Stat(nameOrPath); err != nil {
		return nil, fmt.Errorf("kconfig: %q is neither a preset (%s) nor a readable file: %w",
			nameOrPath, strings.Join(Presets(), ", "), err)
	}
	return ReadFragment(nameOrPath)
}

// Merge applies the fragments to base in order with merge_config.sh
// semantics: each assignment replaces any earlier line for the same symbol
// (set or "is not set"), and new symbols are appended. It returns the merged
// .config text and the requested options: the last value each fragment
// symbol was given, in first-requested order.
func Merge(base []byte, frags ...*Fragment) (merged []byte, requested []Option) {
	lines := strings.Split(strings.TrimRight(string(base), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		lines = nil
	}
	// index of each symbol's line in lines; removed lines become "".
	at := map[string]int{}
	for i, l := range lines {
		if name := symbolOf(l); name != "" {
			at[name] = i
		}
	}
	reqAt := map[string]int{}
	for _, f := range frags {
		for _, o := range f.Options {
			if i, ok := at[o.Name]; ok {
				lines[i] = "\x00" // removed
			}
			at[o.Name] = len(lines)
			lines = append(lines, o.Line())
			if i, ok := reqAt[o.Name]; ok {
				requested[i] = o
			} else {
				reqAt[o.Name] = len(requested)
				requested = append(requested, o)
			}
		}
	}
	var b strings.Builder
	for _, l := range lines {
		if l == "\x00" {
			continue
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return []byte(b.String()), requested
}

// symbolOf returns the symbol a .config line sets or unsets, or "".
func symbolOf(line string) string {
	line = strings.TrimSpace(line)
	if m := unsetRe.FindStringSubmatch(line); m != nil {
		return m[1]
	}
	if m := setRe.FindStringSubmatch(line); m != nil {
		return m[1]
	}
	return ""
}

// Config is a final .config: symbol (with CONFIG_ prefix) to value. Symbols
// that are "not set" or absent are both read as "n" by Value.
type Config map[string]string

// ParseConfig parses a .config as written by Kconfig.
func ParseConfig(data []byte) (Config, error) {
	f, err := ParseFragment(".config", data)
	if err != nil {
		return nil, err
	}
	c := Config{}
	for _, o := range f.Options {
		c[o.Name] = o.Value
	}
	return c, nil
}

// Value returns the symbol's value, "n" when it is not set or absent.
func (c Config) Value(name string) string {
	if v, ok := c[name]; ok {
		return v
	}
	return "n"
}

// Package opdoc reads the opcode tables in the Lustre service packages'
// doc comments, so that their tests can hold each table to the package's
// dispatch map: a table line is a tab-indented comment line that starts
// with an opcode name and its number in parentheses, "NAME (N)".
package opdoc

import (
	"fmt"
	"go/parser"
	"go/token"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kregress/kregress/lustre/ptlrpc"
)

var line = regexp.MustCompile(`^\t([A-Z][A-Z0-9_]*) \((\d+)\)`)

// Listed returns the opcodes listed in the package doc comment of the Go
// file at path, in ascending order. A line whose number is not the
// opcode of its name is an error.
func Listed(path string) ([]uint32, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		return nil, fmt.Errorf("opdoc: %w", err)
	}
	if f.Doc == nil {
		return nil, fmt.Errorf("opdoc: %s has no package doc comment", path)
	}
	var out []uint32
	for _, l := range strings.Split(f.Doc.Text(), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n, err := strconv.ParseUint(m[2], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("opdoc: %s: %q: %w", path, l, err)
		}
		if opc, ok := ptlrpc.OpByName(m[1]); !ok || opc != uint32(n) {
			return nil, fmt.Errorf("opdoc: %s: %q: %s is opcode %d, not %d", path, l, m[1], opc, n)
		}
		out = append(out, uint32(n))
	}
	slices.Sort(out)
	return out, nil
}

// Names spells a list of opcodes by name, for test messages.
func Names(ops []uint32) string {
	s := make([]string, len(ops))
	for i, o := range ops {
		s[i] = ptlrpc.OpName(o)
	}
	return strings.Join(s, " ")
}

// Check fails t unless the doc comment of the Go file at path lists
// exactly the opcodes handled (a dispatch map's keys, in ascending order).
func Check(t testing.TB, path string, handled []uint32) {
	t.Helper()
	listed, err := Listed(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(listed, handled) {
		t.Errorf("the doc of %s lists %s\nthe dispatch map has %s", path, Names(listed), Names(handled))
	}
}

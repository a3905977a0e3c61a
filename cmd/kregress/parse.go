package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kregress/kregress/results/triage"
	"github.com/kregress/kregress/results/triage/symbolize"
)

func init() {
	register(command{
		name:    "parse",
		summary: "find, title and symbolize crash reports in console logs",
		run:     runParse,
	})
}

// pathList is a repeatable path flag.
type pathList []string

func (l *pathList) String() string     { return strings.Join(*l, ",") }
func (l *pathList) Set(v string) error { *l = append(*l, v); return nil }

// runParse prints the reports of each log: with --json one JSON array per
// file (an array of arrays for several files), else a readable summary.
// It exits 1 when any report was found, 0 when none, 2 on bad input.
func runParse(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("parse", "[--json] [--vmlinux PATH] [--modules DIR]... LOG...", stderr)
	asJSON := fs.Bool("json", false, "print reports as JSON: one array per log, an array of arrays for several logs")
	vmlinux := fs.String("vmlinux", "", "vmlinux with debug info, to turn frames into file:line")
	var modDirs pathList
	fs.Var(&modDirs, "modules", "directory searched for module .ko files with debug info (repeatable)")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "kregress parse: no log files given")
		fs.Usage()
		return exitInfra
	}
	var sym *symbolize.Symbolizer
	if *vmlinux != "" || len(modDirs) > 0 {
		var err error
		sym, err = symbolize.New(*vmlinux, modDirs...)
		if err != nil {
			fmt.Fprintf(stderr, "kregress parse: %v\n", err)
			return exitInfra
		}
		defer sym.Close()
	}
	// Read every input first, so bad input changes nothing on stdout.
	logs := make([][]byte, fs.NArg())
	for i, path := range fs.Args() {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "kregress parse: reading log: %v\n", err)
			return exitInfra
		}
		logs[i] = data
	}
	found := false
	all := make([][]triage.Report, len(logs))
	for i, data := range logs {
		reps := triage.Parse(data)
		if reps == nil {
			reps = []triage.Report{}
		}
		if sym != nil {
			for j := range reps {
				if err := sym.SymbolizeReport(&reps[j]); err != nil {
					fmt.Fprintf(stderr, "kregress parse: %s: symbolizing %q: %v\n", fs.Arg(i), reps[j].Title, err)
				}
			}
		}
		found = found || len(reps) > 0
		all[i] = reps
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		var err error
		if len(all) == 1 {
			err = enc.Encode(all[0])
		} else {
			err = enc.Encode(all)
		}
		if err != nil {
			fmt.Fprintf(stderr, "kregress parse: writing JSON: %v\n", err)
			return exitInfra
		}
	} else {
		for i, reps := range all {
			printSummary(stdout, fs.Arg(i), reps)
		}
	}
	if found {
		return exitFail
	}
	return exitOK
}

func printSummary(w io.Writer, path string, reps []triage.Report) {
	if len(reps) == 0 {
		fmt.Fprintf(w, "%s: no crash reports\n", path)
		return
	}
	bugs := triage.Dedup(reps)
	fmt.Fprintf(w, "%s: %d report(s), %d bug(s)\n", path, len(reps), len(bugs))
	for _, r := range reps {
		typ := r.Type
		if typ == "" {
			typ = "UNKNOWN"
		}
		fmt.Fprintf(w, "  lines %d-%d  %-24s %s", r.StartLine, r.EndLine, typ, r.Title)
		if r.Corrupted {
			fmt.Fprintf(w, "  [corrupted: %s]", r.CorruptedReason)
		}
		fmt.Fprintln(w)
		if r.Lockdep != nil {
			fmt.Fprintf(w, "      lockdep: %s\n", r.Lockdep.Summary)
		}
		n := 0
		for _, f := range r.Stack {
			if n == 8 {
				fmt.Fprintf(w, "      ...\n")
				break
			}
			for _, in := range f.Inlined {
				fmt.Fprintf(w, "      %s %s:%d [inline]\n", in.Func, in.File, in.Line)
			}
			loc := ""
			if f.File != "" {
				loc = fmt.Sprintf(" %s:%d", f.File, f.Line)
			}
			mod := ""
			if f.Module != "" {
				mod = " [" + f.Module + "]"
			}
			fmt.Fprintf(w, "      %s+%#x/%#x%s%s\n", f.Func, f.Offset, f.Size, mod, loc)
			n++
		}
	}
}

package main

import (
	"bufio"
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
// Each log is read line by line and each report is written as soon as it
// is complete, so memory stays bounded whatever the size of the logs.
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
		hint(stderr, "parse")
		return exitInfra
	}
	// Check every input first, so bad input changes nothing on stdout.
	for _, dir := range modDirs {
		if st, err := os.Stat(dir); err != nil {
			fmt.Fprintf(stderr, "kregress parse: --modules: %v\n", err)
			return exitInfra
		} else if !st.IsDir() {
			fmt.Fprintf(stderr, "kregress parse: --modules %s: not a directory\n", dir)
			return exitInfra
		}
	}
	for _, path := range fs.Args() {
		if err := checkReadable(path); err != nil {
			fmt.Fprintf(stderr, "kregress parse: reading log: %v\n", err)
			return exitInfra
		}
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
	w := bufio.NewWriter(stdout)
	found := false
	nested := fs.NArg() > 1
	if *asJSON && nested {
		w.WriteString("[")
	}
	for i, path := range fs.Args() {
		var out reportWriter
		if *asJSON {
			indent := ""
			if nested {
				if i > 0 {
					w.WriteString(",")
				}
				w.WriteString("\n  ")
				indent = "  "
			}
			out = &jsonArrayWriter{w: w, indent: indent}
		} else {
			out = &summaryWriter{w: w, path: path}
		}
		n, err := parseLog(path, sym, out, stderr)
		if err != nil {
			w.Flush()
			fmt.Fprintf(stderr, "kregress parse: %v\n", err)
			return exitInfra
		}
		found = found || n > 0
	}
	if *asJSON {
		if nested {
			w.WriteString("\n]")
		}
		w.WriteString("\n")
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(stderr, "kregress parse: writing output: %v\n", err)
		return exitInfra
	}
	if found {
		return exitFail
	}
	return exitOK
}

// checkReadable fails unless path is a file that can be opened for reading.
func checkReadable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s: is a directory", path)
	}
	return nil
}

// reportWriter writes the reports of one log as they complete.
type reportWriter interface {
	add(r *triage.Report) error
	end() error
}

// parseLog streams one log through the triage, symbolizes each report and
// hands it to out; it returns how many reports it found.
func parseLog(path string, sym *symbolize.Symbolizer, out reportWriter, stderr io.Writer) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("reading log: %w", err)
	}
	defer f.Close()
	n := 0
	err = triage.ParseReader(f, func(r triage.Report) error {
		n++
		if sym != nil {
			if err := sym.SymbolizeReport(&r); err != nil {
				fmt.Fprintf(stderr, "kregress parse: %s: symbolizing %q: %v\n", path, r.Title, err)
			}
		}
		return out.add(&r)
	})
	if err != nil {
		return n, fmt.Errorf("%s: %w", path, err)
	}
	return n, out.end()
}

// jsonArrayWriter writes reports as the elements of one JSON array, laid
// out as json.Encoder with a two-space indent lays out the whole array.
type jsonArrayWriter struct {
	w      *bufio.Writer
	indent string // of the array's own line
	n      int
}

func (j *jsonArrayWriter) add(r *triage.Report) error {
	data, err := json.MarshalIndent(r, j.indent+"  ", "  ")
	if err != nil {
		return fmt.Errorf("writing JSON of %q: %w", r.Title, err)
	}
	if j.n == 0 {
		j.w.WriteString("[")
	} else {
		j.w.WriteString(",")
	}
	j.n++
	j.w.WriteString("\n" + j.indent + "  ")
	_, err = j.w.Write(data)
	return err
}

func (j *jsonArrayWriter) end() error {
	if j.n == 0 {
		_, err := j.w.WriteString("[]")
		return err
	}
	_, err := j.w.WriteString("\n" + j.indent + "]")
	return err
}

// summaryWriter prints a readable line or few per report and, at the end,
// how many reports and distinct bugs the log held.
type summaryWriter struct {
	w     *bufio.Writer
	path  string
	n     int
	dedup triage.Deduper
}

func (s *summaryWriter) add(r *triage.Report) error {
	if s.n == 0 {
		fmt.Fprintf(s.w, "%s:\n", s.path)
	}
	s.n++
	s.dedup.Add(*r, triage.Sighting{Line: r.StartLine})
	printReport(s.w, r)
	return nil
}

func (s *summaryWriter) end() error {
	if s.n == 0 {
		_, err := fmt.Fprintf(s.w, "%s: no crash reports\n", s.path)
		return err
	}
	_, err := fmt.Fprintf(s.w, "%s: %d report(s), %d bug(s)\n", s.path, s.n, len(s.dedup.Bugs()))
	return err
}

// printReport prints one report's lines, type, title and first frames.
func printReport(w io.Writer, r *triage.Report) {
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
		if f.Lock {
			continue // a lockdep lock site; the summary above says which
		}
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

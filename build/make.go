package build

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/kregress/kregress/internal/proc"
)

// Diagnostic is one compiler or linker message from the build.
type Diagnostic struct {
	// File is relative to the source tree when it is inside it.
	File      string
	Line, Col int
	// Severity is "warning", "error" or "fatal error".
	Severity string
	Message  string
	// InSeries is true when File is one the patch series touches.
	InSeries bool
}

func (d Diagnostic) String() string {
	if d.File == "" {
		return fmt.Sprintf("%s: %s", d.Severity, d.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", d.File, d.Line, d.Col, d.Severity, d.Message)
}

// CompileError is a failed make. Errors are the compiler and linker errors
// it printed; Tail is the end of its output.
type CompileError struct {
	Target string
	Errors []Diagnostic
	Tail   []string
	Err    error
}

func (e *CompileError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "build: make %s failed: %v", e.Target, e.Err)
	for i, d := range e.Errors {
		if i == 10 {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Errors)-10)
			break
		}
		b.WriteString("\n  " + d.String())
	}
	if len(e.Errors) == 0 {
		for _, l := range e.Tail {
			b.WriteString("\n  " + l)
		}
	}
	return b.String()
}

func (e *CompileError) Unwrap() error { return e.Err }

var (
	ansiRe = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)
	diagRe = regexp.MustCompile(`^(\S+?):(\d+):(?:(\d+):)? (warning|error|fatal error): (.*)$`)
	ldRe   = regexp.MustCompile(`(undefined reference to .*|^ERROR: modpost: .*|multiple definition of .*)`)
	// kbuild's quiet command lines: "  CC      fs/stat.o".
	kbuildRe = regexp.MustCompile(`^  ([A-Z][A-Z0-9_ \[\]]{1,8}?) +(\S+)$`)
)

// parseDiagnostic reads a compiler or linker line; srctree is stripped
// from absolute paths.
func parseDiagnostic(line, srctree string) (Diagnostic, bool) {
	line = ansiRe.ReplaceAllString(line, "")
	// gcc quotes with ‘ ’ in UTF-8 locales and ' ' in others.
	line = strings.NewReplacer("\u2018", "'", "\u2019", "'").Replace(line)
	if m := diagRe.FindStringSubmatch(line); m != nil {
		d := Diagnostic{File: m[1], Severity: m[4], Message: m[5]}
		d.Line, _ = strconv.Atoi(m[2])
		d.Col, _ = strconv.Atoi(m[3])
		if srctree != "" {
			d.File = strings.TrimPrefix(d.File, strings.TrimSuffix(srctree, "/")+"/")
		}
		return d, true
	}
	if m := ldRe.FindString(line); m != "" {
		return Diagnostic{Severity: "error", Message: strings.TrimSpace(line)}, true
	}
	return Diagnostic{}, false
}

// makeRun is one make invocation and what it printed.
type makeRun struct {
	compiled int // kbuild "CC"/"AS"/... lines seen
	diags    []Diagnostic
	tail     []string
}

// runMake runs make with args in dir (through package proc, so that a
// cancelled ctx, or kregress dying, kills every compiler it started).
// Every output line goes to log (if not nil) and is parsed for progress and
// diagnostics.
func runMake(ctx context.Context, dir string, env []string, args []string, srctree string, log io.Writer, st *status) (*makeRun, error) {
	cmd := proc.Command(ctx, "make", args...)
	cmd.Dir = dir
	cmd.Env = env
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("build: starting make %s: %w", strings.Join(args, " "), err)
	}
	r := &makeRun{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		for sc.Scan() {
			line := sc.Text()
			if log != nil {
				io.WriteString(log, line+"\n")
			}
			r.tail = append(r.tail, line)
			if len(r.tail) > 40 {
				r.tail = r.tail[1:]
			}
			if m := kbuildRe.FindStringSubmatch(line); m != nil {
				switch strings.TrimSpace(m[1]) {
				case "CC", "AS", "CC [M]", "AS [M]", "HOSTCC", "LD", "LD [M]", "AR":
					r.compiled++
				}
				st.progress(fmt.Sprintf("%d steps, %s %s", r.compiled, strings.TrimSpace(m[1]), m[2]))
				continue
			}
			if d, ok := parseDiagnostic(line, srctree); ok {
				r.diags = append(r.diags, d)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	err := cmd.Wait()
	pw.Close()
	<-done
	if err != nil {
		if ctx.Err() != nil {
			return r, fmt.Errorf("build: make %s: %w", strings.Join(args, " "), ended(ctx))
		}
		var errs []Diagnostic
		for _, d := range r.diags {
			if d.Severity != "warning" {
				errs = append(errs, d)
			}
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return r, fmt.Errorf("build: make %s: %w", strings.Join(args, " "), err)
		}
		return r, &CompileError{Target: strings.Join(targets(args), " "), Errors: errs, Tail: r.tail, Err: err}
	}
	return r, nil
}

// targets returns the make arguments that are targets, not variables or
// options.
func targets(args []string) []string {
	var t []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-C" || a == "-f":
			i++ // its value
		case !strings.HasPrefix(a, "-") && !strings.Contains(a, "="):
			t = append(t, a)
		}
	}
	return t
}

// inSeries returns what a make run (r, which may be nil, and its error)
// says about the files a series touches: the kbuild steps it ran, the
// compiler warnings in those files, and err with its errors marked
// InSeries when they are in them.
func (r *makeRun) inSeries(err error, touched map[string]bool) (compiled int, warnings []Diagnostic, _ error) {
	if r != nil {
		compiled = r.compiled
		for _, d := range r.diags {
			if touched[d.File] {
				d.InSeries = true
				if d.Severity == "warning" {
					warnings = append(warnings, d)
				}
			}
		}
	}
	var ce *CompileError
	if errors.As(err, &ce) {
		for i := range ce.Errors {
			ce.Errors[i].InSeries = touched[ce.Errors[i].File]
		}
	}
	return compiled, warnings, err
}

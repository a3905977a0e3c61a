package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/report"
)

func init() {
	register(command{
		name:    "report",
		summary: "write a run or series directory as HTML, JUnit XML, KCIDB JSON or a mail reply",
		run:     runReport,
	})
}

// runReport renders one run directory in each format asked for. Every
// output is made before any is written, so a failure writes nothing.
func runReport(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("report", "[--html OUT] [--junit OUT] [--kcidb OUT] [--email OUT.eml] RUN_DIR", stderr)
	htmlOut := fs.String("html", "", "write a self-contained HTML page to OUT")
	junitOut := fs.String("junit", "", "write JUnit XML to OUT")
	kcidbOut := fs.String("kcidb", "", "write KCIDB JSON (schema v5.3) to OUT")
	emailOut := fs.String("email", "", "write a reply to the first bad patch's mail to OUT (for git send-email or mutt -H)")
	sourceURL := fs.String("source-url", "", "link source lines to the tree: a URL with {file} and {line}, e.g. https://git.kernel.org/.../tree/{file}?h=v6.1#n{line}")
	mbox := fs.String("mbox", "", "the patch thread (mbox) the series came from, for the reply's threading (default: the series the run recorded)")
	from := fs.String("from", "", "the reply's sender and Reported-by: (default \"kregress <kregress@localhost>\")")
	to := fs.String("to", "", "the reply's recipient (default: the patch's author)")
	var cc pathList
	fs.Var(&cc, "cc", "a Cc: recipient of the reply (repeatable)")
	lore := fs.String("lore", "", "URL prefix of the Closes: tag, before the reply's Message-ID (default https://lore.kernel.org/r/)")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "kregress report: give one run or series directory")
		hint(stderr, "report")
		return exitInfra
	}
	if *htmlOut == "" && *junitOut == "" && *kcidbOut == "" && *emailOut == "" {
		fmt.Fprintln(stderr, "kregress report: nothing to write: give --html, --junit, --kcidb or --email")
		return exitInfra
	}
	if *sourceURL != "" && !strings.Contains(*sourceURL, "{file}") {
		fmt.Fprintf(stderr, "kregress report: --source-url %q has no {file}\n", *sourceURL)
		return exitInfra
	}
	opt := report.Options{SourceURL: *sourceURL, Mbox: *mbox}
	m, err := report.Load(fs.Arg(0), opt)
	if err != nil {
		fmt.Fprintf(stderr, "kregress report: %v\n", err)
		return exitInfra
	}
	type out struct {
		path string
		data []byte
	}
	var outs []out
	render := func(path string, f func(io.Writer) error) bool {
		if path == "" {
			return true
		}
		var buf bytes.Buffer
		if err := f(&buf); err != nil {
			fmt.Fprintf(stderr, "kregress report: %v\n", err)
			return false
		}
		outs = append(outs, out{path, buf.Bytes()})
		return true
	}
	ok := render(*htmlOut, func(w io.Writer) error { return report.HTML(w, m, opt) }) &&
		render(*junitOut, func(w io.Writer) error { return report.JUnit(w, m) }) &&
		render(*kcidbOut, func(w io.Writer) error { return report.KCIDB(w, m) }) &&
		render(*emailOut, func(w io.Writer) error {
			return report.Email(w, m, opt, report.MailOptions{From: *from, To: *to, Cc: cc, Lore: *lore})
		})
	if !ok {
		return exitInfra
	}
	for _, o := range outs {
		if err := results.WriteAtomic(o.path, o.data); err != nil {
			fmt.Fprintf(stderr, "kregress report: %v\n", err)
			return exitInfra
		}
		fmt.Fprintf(stdout, "wrote %s\n", o.path)
	}
	return exitOK
}

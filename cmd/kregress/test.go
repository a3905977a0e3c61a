package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kregress/kregress/job"
	"github.com/kregress/kregress/runner"
)

func init() {
	register(command{
		name:    "test",
		summary: "build and test a base and a patch series, giving each patch a verdict",
		run:     testCmd,
	})
}

func testCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("test", "--source PATH [--base REF] --series PATH [--config PRESET|FILE ...] [--suite NAME|FILE ...] [--per-patch]", stderr)
	var bf buildFlags
	bf.register(fs)
	var suiteNames stringList
	fs.Var(&suiteNames, "suite", "suite `NAME|FILE` to run on every step; repeat or comma-separate (default smoke)")
	perPatch := fs.Bool("per-patch", false, "test every prefix of the series even when the tip passes")
	out := fs.String("out", "out", "`DIR` under which the series' run directory is made")
	timeout := fs.Duration("timeout", 3*time.Hour, "overall time limit")
	accel := fs.String("accel", "", "accelerator: kvm or tcg (default: probe, cached)")
	boot := fs.String("boot", "auto", "how QEMU enters the kernel: auto (the bzImage's vmlinux directly when it has a PVH entry) or bzimage")
	bootTimeout := fs.Duration("boot-timeout", 2*time.Minute, "time allowed until the guest agent answers")
	noOutput := fs.Duration("no-output-timeout", 0, "end a run when the console is silent this long (0: never)")
	verbose := fs.Bool("v", false, "print progress lines even when not on a terminal")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kregress test: unexpected argument %q\n", fs.Arg(0))
		return exitInfra
	}
	if bf.series == "" {
		fmt.Fprintln(stderr, "kregress test: --series is required")
		return exitInfra
	}
	if *boot != runner.BootAuto && *boot != runner.BootBzImage {
		fmt.Fprintf(stderr, "kregress test: --boot %q: want auto or bzimage\n", *boot)
		return exitInfra
	}
	prog := newProgress(stderr, *verbose)
	req, err := bf.request(progressWriter{prog})
	if err != nil {
		fmt.Fprintf(stderr, "kregress test: %v\n", err)
		return exitInfra
	}
	loaded, err := loadSuites(suiteNames)
	if err != nil {
		fmt.Fprintf(stderr, "kregress test: %v\n", err)
		return exitInfra
	}
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := withTimeout(ctx, *timeout)
	defer cancel()
	res, dir, err := job.TestSeries(ctx, job.SeriesSpec{
		Build: req, Suites: loaded, PerPatch: *perPatch, Out: *out,
		Command: "kregress test " + strings.Join(args, " "),
		Run: job.Spec{Accel: *accel, Boot: *boot, BootTimeout: *bootTimeout, NoOutputTimeout: *noOutput,
			Progress: prog.Printf},
		Progress: prog.Printf,
	})
	prog.Done()
	if err != nil {
		fmt.Fprintf(stderr, "kregress test: %v\n", err)
		return exitInfra
	}
	job.SeriesSummary(stdout, res, dir)
	switch res.Status {
	case "pass":
		return exitOK
	case "regression":
		return exitFail
	default:
		return exitInfra
	}
}

// progressWriter lets the build's line-oriented progress share the live line.
type progressWriter struct{ p *progress }

func (w progressWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\r\n"), "\n") {
		if l = strings.TrimSpace(strings.TrimLeft(l, "\r")); l != "" {
			w.p.Printf("%s", l)
		}
	}
	return len(b), nil
}

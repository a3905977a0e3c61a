package main

import (
	"io"
	"os"
	"strings"
	"time"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/internal/progress"
	"github.com/kregress/kregress/job"
	"github.com/kregress/kregress/results"
)

func init() {
	register(command{
		name:    "test",
		summary: "build and test a base and a patch series, giving each patch a verdict",
		run:     testCmd,
	})
}

// testSeries tests a series; tests replace it, as runJob.
var testSeries = job.TestSeries

func testCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("test", "(--source PATH [--base REF] | --kernel BZIMAGE) (--series PATH | --client TREE --client-series PATH) [--config PRESET|FILE ...] [--suite NAME|FILE ...] [--per-patch]", stderr)
	var bf buildFlags
	bf.register(fs)
	var vf vmFlags
	vf.register(fs, 3*time.Hour)
	perPatch := fs.Bool("per-patch", false, "test every prefix of the series even when the tip passes")
	kernel := fs.String("kernel", "", "distribution kernel `BZIMAGE` (e.g. /boot/vmlinuz-6.1.0-56-amd64, its headers installed) that every step boots instead of a kernel built from --source; needs --client-series")
	var ef execFlags
	ef.register(fs)
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	bad := func(format string, args ...any) int {
		failf(stderr, "test", format, args...)
		return exitInfra
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	if bf.series == "" && bf.clientSeries == "" {
		failf(stderr, "test", "a series is required: --series (kernel tree) or --client-series (client tree)")
		hint(stderr, "test")
		return exitInfra
	}
	if bf.series != "" && bf.clientSeries != "" {
		return bad("give one series under test: --series (kernel tree) or --client-series (client tree), not both")
	}
	client, err := bf.clientSpec()
	if err != nil {
		return bad("%v", err)
	}
	var req build.Request
	switch {
	case *kernel != "" && bf.source != "":
		return bad("give --kernel (a distribution kernel) or --source (a kernel to build), not both")
	case *kernel != "":
		if _, err := os.Stat(*kernel); err != nil {
			return bad("--kernel: %v", err)
		}
	default:
		if req, err = bf.request(); err != nil {
			return bad("%v", err)
		}
	}
	if bf.clientSeries != "" {
		req.Series = bf.clientSeries
	}
	run, loaded, err := vf.check()
	if err != nil {
		return bad("%v", err)
	}
	if err := ef.check(); err != nil {
		return bad("%v", err)
	}
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := withTimeout(ctx, vf.timeout)
	defer cancel()
	prog := progress.New(stderr, vf.verbose)
	req.Progress = prog
	run.Progress = prog.Printf
	ex, _, err := ef.executor(ctx, prog.Printf)
	if err != nil {
		prog.Done()
		return bad("%v", err)
	}
	res, dir, err := testSeries(ctx, job.SeriesSpec{
		Executor: ex,
		Build:    req, Suites: loaded, PerPatch: *perPatch, Out: vf.out,
		Command:  "kregress test " + strings.Join(args, " "),
		Run:      run,
		Progress: prog.Printf,
		Kernel:   *kernel, Client: client, ClientSeries: bf.clientSeries != "",
	})
	prog.Done()
	if res == nil {
		return bad("%v", err)
	}
	// The verdict first, even when its record could not be written.
	results.SeriesSummary(stdout, res, dir)
	if err != nil {
		return bad("the verdict above could not be recorded in %s: %v", dir, err)
	}
	switch res.Status {
	case results.StatusPass:
		return exitOK
	case results.StatusRegression:
		return exitFail
	default:
		return exitInfra
	}
}

package main

import (
	"io"
	"strings"
	"time"

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
	fs := newFlagSet("test", "--source PATH [--base REF] --series PATH [--config PRESET|FILE ...] [--suite NAME|FILE ...] [--per-patch]", stderr)
	var bf buildFlags
	bf.register(fs)
	var vf vmFlags
	vf.register(fs, 3*time.Hour)
	perPatch := fs.Bool("per-patch", false, "test every prefix of the series even when the tip passes")
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
	if bf.series == "" {
		failf(stderr, "test", "--series is required")
		hint(stderr, "test")
		return exitInfra
	}
	req, err := bf.request()
	if err != nil {
		return bad("%v", err)
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

package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kregress/kregress/internal/progress"
	"github.com/kregress/kregress/job"
	"github.com/kregress/kregress/results"
)

func init() {
	register(command{
		name:    "bisect",
		summary: "find the patch or commit that brings a crash (series prefixes or a git range)",
		run:     bisectCmd,
	})
}

// bisectCmd bisects a series' prefixes (--series) or a commit range of a
// git tree (--good/--bad). Exit status: 0 a culprit was found, 1 the
// result is inconclusive (only skipped steps were left), 2 the search
// could not run (bad input, the ends do not bracket the crash,
// infrastructure).
func bisectCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bisect", "--source PATH (--series PATH | --good REF --bad REF) [--config ...] [--suite ...] [--runs N] [--crash TITLE | --any-crash]", stderr)
	var bf buildFlags
	bf.register(fs)
	var vf vmFlags
	vf.register(fs, 6*time.Hour)
	good := fs.String("good", "", "a commit of --source (a git tree) where the crash does not happen")
	bad := fs.String("bad", "", "a later commit where it does")
	runs := fs.Int("runs", 10, "runs per step (20 once the crash is seen to be flaky)")
	jobs := fs.Int("jobs", 1, "VMs at once")
	crash := fs.String("crash", "", "the crash `TITLE` to bisect (default: the first crash of the bad end)")
	anyCrash := fs.Bool("any-crash", false, "count any crash, not only the bisected one")
	verifyGood := fs.Bool("verify-good", true, "test the good end too (a series' base always is)")
	jsonOut := fs.Bool("json", false, "print result.json to stdout instead of the summary")
	var ef execFlags
	ef.register(fs)
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	bad2 := func(format string, args ...any) int {
		failf(stderr, "bisect", format, args...)
		return exitInfra
	}
	switch {
	case fs.NArg() > 0:
		return bad2("unexpected argument %q", fs.Arg(0))
	case *runs < 1:
		return bad2("--runs %d: want at least 1", *runs)
	case *jobs < 1:
		return bad2("--jobs %d: want at least 1", *jobs)
	case *crash != "" && *anyCrash:
		return bad2("give --crash or --any-crash, not both")
	}
	req, err := bf.request()
	if err != nil {
		return bad2("%v", err)
	}
	run, loaded, err := vf.check()
	if err != nil {
		return bad2("%v", err)
	}
	if err := ef.check(); err != nil {
		return bad2("%v", err)
	}
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, vf.timeout)
	defer cancel()
	prog := progress.New(stderr, vf.verbose)
	req.Progress = prog
	ex, _, err := ef.executor(ctx, prog.Printf)
	if err != nil {
		prog.Done()
		return bad2("%v", err)
	}
	res, dir, err := job.Bisect(ctx, job.BisectSpec{
		Executor: ex,
		Build:    req, Good: *good, Bad: *bad, Suites: loaded, Runs: *runs, Jobs: *jobs,
		Crash: *crash, AnyCrash: *anyCrash, VerifyGood: *verifyGood, Out: vf.out,
		Command:  "kregress bisect " + strings.Join(args, " "),
		Run:      run,
		Progress: prog.Printf,
	})
	prog.Done()
	if err != nil {
		return bad2("%v", err)
	}
	if *jsonOut {
		data, err := os.ReadFile(filepath.Join(dir, "result.json"))
		if err != nil {
			return bad2("%v", err)
		}
		stdout.Write(data)
	} else {
		results.BisectSummary(stdout, res, dir)
	}
	switch res.Status {
	case results.StatusPass:
		return exitOK
	case results.StatusFail:
		return exitFail
	}
	return exitInfra
}

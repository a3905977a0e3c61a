package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kregress/kregress/job"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/runner"
)

func init() {
	register(command{
		name:    "bisect",
		summary: "find the patch or commit that brings a crash (series prefixes or a git range)",
		run:     bisectCmd,
	})
}

func bisectCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bisect", "--source PATH (--series PATH | --good REF --bad REF) [--config ...] [--suite ...] [--runs N] [--crash TITLE | --any-crash]", stderr)
	var bf buildFlags
	bf.register(fs)
	good := fs.String("good", "", "a commit of --source (a git tree) where the crash does not happen")
	bad := fs.String("bad", "", "a later commit where it does")
	var suiteNames stringList
	fs.Var(&suiteNames, "suite", "suite `NAME|FILE` run at every step; repeat or comma-separate (default smoke)")
	runs := fs.Int("runs", 10, "runs per step (20 once the crash is seen to be flaky)")
	jobs := fs.Int("jobs", 1, "VMs at once")
	crash := fs.String("crash", "", "the crash `TITLE` to bisect (default: the first crash of the bad end)")
	anyCrash := fs.Bool("any-crash", false, "count any crash, not only the bisected one")
	verifyGood := fs.Bool("verify-good", true, "test the good end too (a series' base always is)")
	out := fs.String("out", "out", "`DIR` under which the bisection's run directory is made")
	timeout := fs.Duration("timeout", 6*time.Hour, "overall time limit")
	accel := fs.String("accel", "", "accelerator: kvm or tcg (default: probe, cached)")
	boot := fs.String("boot", "auto", "how QEMU enters the kernel: auto or bzimage")
	bootTimeout := fs.Duration("boot-timeout", 2*time.Minute, "time allowed until the guest agent answers")
	verbose := fs.Bool("v", false, "print progress lines even when not on a terminal")
	jsonOut := fs.Bool("json", false, "print result.json to stdout instead of the summary")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "kregress bisect: "+format+"\n", a...)
		return exitInfra
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	if *runs < 1 {
		return fail("--runs %d: want at least 1", *runs)
	}
	if *jobs < 1 {
		return fail("--jobs %d: want at least 1", *jobs)
	}
	if *crash != "" && *anyCrash {
		return fail("give --crash or --any-crash, not both")
	}
	if *accel != "" && *accel != runner.AccelKVM && *accel != runner.AccelTCG {
		return fail("--accel %q: want kvm or tcg", *accel)
	}
	if *boot != runner.BootAuto && *boot != runner.BootBzImage {
		return fail("--boot %q: want auto or bzimage", *boot)
	}
	prog := newProgress(stderr, *verbose)
	req, err := bf.request(progressWriter{prog})
	if err != nil {
		return fail("%v", err)
	}
	loaded, err := loadSuites(suiteNames)
	if err != nil {
		return fail("%v", err)
	}
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, dir, err := job.Bisect(ctx, job.BisectSpec{
		Build: req, Good: *good, Bad: *bad, Suites: loaded, Runs: *runs, Jobs: *jobs,
		Crash: *crash, AnyCrash: *anyCrash, VerifyGood: *verifyGood, Out: *out,
		Command:  "kregress bisect " + strings.Join(args, " "),
		Run:      job.Spec{Accel: *accel, Boot: *boot, BootTimeout: *bootTimeout},
		Progress: prog.Printf,
	})
	prog.Done()
	if err != nil {
		// Bad input and an infrastructure failure both exit 2.
		return fail("%v", err)
	}
	if *jsonOut {
		data, err := os.ReadFile(filepath.Join(dir, "result.json"))
		if err != nil {
			return fail("%v", err)
		}
		stdout.Write(data)
	} else {
		results.BisectSummary(stdout, res, dir)
	}
	// 0: a culprit was found; 1: inconclusive; 2: the search could not run.
	switch res.Status {
	case results.StatusPass:
		return exitOK
	case results.StatusFail:
		return exitFail
	}
	return exitInfra
}

package main

import (
	"fmt"
	"io"

	"github.com/kregress/kregress/executor"
)

func init() {
	register(command{
		name:    "worker",
		summary: "execute one unit of work (UNIT.json) and write its outcome beside it",
		run:     workerCmd,
	})
}

// workerCmd is what a cluster job runs: it reads a unit written by an
// executor, performs it, and writes UNIT.outcome.json atomically. The
// unit's own result (a crash, a build failure) is in the outcome; the exit
// status says only whether an outcome was written (0) or the unit file
// was unusable (2).
func workerCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("worker", "UNIT.json", stderr)
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "kregress worker: want exactly one UNIT.json")
		return exitInfra
	}
	path := fs.Arg(0)
	u, err := executor.ReadUnit(path)
	if err != nil {
		fmt.Fprintf(stderr, "kregress worker: %v\n", err)
		return exitInfra
	}
	ctx, stop := signalContext()
	defer stop()
	o := executor.Execute(ctx, u)
	if ctx.Err() != nil {
		// Stopped by a signal (scancel, preemption, a time limit): no
		// outcome, so the executor sees the unit killed and may retry it.
		fmt.Fprintf(stderr, "kregress worker: unit %s interrupted by a signal; no outcome written\n", u.ID)
		return exitInfra
	}
	if err := executor.WriteOutcome(executor.OutcomePath(path), o); err != nil {
		fmt.Fprintf(stderr, "kregress worker: unit %s: %s; writing the outcome: %v\n", u.ID, o.Status, err)
		return exitInfra
	}
	fmt.Fprintf(stdout, "unit %s: %s on %s", u.ID, o.Status, o.Node)
	if o.RunDir != "" {
		fmt.Fprintf(stdout, " (%s)", o.RunDir)
	}
	fmt.Fprintln(stdout)
	return exitOK
}

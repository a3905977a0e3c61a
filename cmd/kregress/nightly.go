package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/kregress/kregress/internal/progress"
	"github.com/kregress/kregress/job"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/history"
)

func init() {
	register(command{
		name:    "nightly",
		summary: "run one night of a nightly job file: build, run, compare with the last night, bisect new crashes",
		run:     nightlyCmd,
	})
}

// nightlyCmd runs one night of a job file. kregress keeps no schedule:
// cron or a systemd timer calls it (see docs/nightly.md). Exit status: 0
// nothing new, 1 a new crash or a regressed test, 2 bad input or an
// infrastructure failure.
func nightlyCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("nightly", "[--no-bisect] [--db FILE] JOB.yaml", stderr)
	noBisect := fs.Bool("no-bisect", false, "do not bisect crashes that are new since the last night")
	dbPath := fs.String("db", "", "history database (default: $KREGRESS_DATA/"+history.FileName+", else ~/.local/share/kregress/"+history.FileName+")")
	timeout := fs.Duration("timeout", 12*time.Hour, "overall time limit")
	verbose := fs.Bool("v", false, "print progress lines even when not on a terminal")
	jsonOut := fs.Bool("json", false, "print nightly.json to stdout instead of the summary")
	var ef execFlags
	ef.register(fs)
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	bad := func(format string, args ...any) int {
		failf(stderr, "nightly", format, args...)
		return exitInfra
	}
	if fs.NArg() != 1 {
		return bad("want exactly one job file")
	}
	j, ss, err := job.LoadNightlyJob(fs.Arg(0))
	if err != nil {
		return bad("%v", err)
	}
	if err := ef.check(); err != nil {
		return bad("%v", err)
	}
	path := *dbPath
	if path == "" {
		dir, err := history.DataDir()
		if err != nil {
			return bad("%v", err)
		}
		path = filepath.Join(dir, history.FileName)
	}
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	db, err := history.Open(ctx, path)
	if err != nil {
		return bad("%v", err)
	}
	defer db.Close()
	prog := progress.New(stderr, *verbose)
	ex, _, err := ef.executor(ctx, prog.Printf)
	if err != nil {
		prog.Done()
		return bad("%v", err)
	}
	res, dir, err := job.Nightly(ctx, job.NightlySpec{Job: j, Suites: ss, History: db, NoBisect: *noBisect, Progress: prog.Printf, Executor: ex})
	prog.Done()
	if err != nil {
		return bad("%v", err)
	}
	if *jsonOut {
		data, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintf(stdout, "%s\n", data)
	} else {
		nightlySummary(stdout, res, dir)
	}
	switch res.Status {
	case results.StatusPass:
		return exitOK
	case results.StatusRegression:
		return exitFail
	}
	return exitInfra
}

func nightlySummary(w io.Writer, r *job.NightlyResult, dir string) {
	fmt.Fprintf(w, "nightly %s: %s %s %q\n", r.Job, r.Source, short12(r.Commit), r.Subject)
	if r.Previous != "" {
		fmt.Fprintf(w, "  since  %s (%s)\n", short12(r.PreviousCommit), r.Previous)
	} else {
		fmt.Fprintln(w, "  first night of this job")
	}
	for _, c := range r.Changes {
		line := fmt.Sprintf("  %-6s %-13s %s", c.Kind, c.Change, c.Name)
		if c.Note != "" {
			line += "  (bisect: " + c.Note + ")"
		}
		fmt.Fprintln(w, line)
	}
	if len(r.Changes) == 0 {
		fmt.Fprintln(w, "  nothing changed")
	}
	fmt.Fprintf(w, "\nstatus   %s", strings.ToUpper(string(r.Status)))
	if r.Reason != "" {
		fmt.Fprintf(w, ": %s", r.Reason)
	}
	fmt.Fprintf(w, "\nwall     %.0fs\nresults  %s\n", r.WallSeconds, dir)
}

func short12(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/kregress/kregress/results/history"
)

func init() {
	register(command{
		name:    "history",
		summary: "list recorded runs and bugs; record run dirs; rebuild the record",
		run:     runHistory,
	})
}

// runHistory lists the record's runs and bugs (filtered by job and bug
// title), records run directories given with --add, or rebuilds the
// database from run directories with --rebuild.
func runHistory(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("history", "[--job NAME] [--bug TITLE] [--json] | --add RUN_DIR... [--job NAME] | --rebuild [--runs DIR]...", stderr)
	dbPath := fs.String("db", "", "history database (default: $KREGRESS_DATA/"+history.FileName+", else ~/.local/share/kregress/"+history.FileName+")")
	jobName := fs.String("job", "", "only this job's runs and bugs; with --add, the job the runs belong to")
	bug := fs.String("bug", "", "only bugs whose title or alternative titles contain TITLE (and the runs that showed them)")
	asJSON := fs.Bool("json", false, "print {runs, bugs} as JSON")
	rebuild := fs.Bool("rebuild", false, "make the database again from the run directories it records and those under --runs")
	var roots, add pathList
	fs.Var(&roots, "runs", "with --rebuild: a folder of run directories to record too (repeatable)")
	fs.Var(&add, "add", "record this run or series directory (repeatable)")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kregress history: unexpected argument %q\n", fs.Arg(0))
		hint(stderr, "history")
		return exitInfra
	}
	if len(roots) > 0 && !*rebuild {
		fmt.Fprintln(stderr, "kregress history: --runs goes with --rebuild")
		return exitInfra
	}
	if *rebuild && len(add) > 0 {
		fmt.Fprintln(stderr, "kregress history: --rebuild and --add do not go together")
		return exitInfra
	}
	path := *dbPath
	if path == "" {
		dir, err := history.DataDir()
		if err != nil {
			fmt.Fprintf(stderr, "kregress history: %v\n", err)
			return exitInfra
		}
		path = filepath.Join(dir, history.FileName)
	}
	ctx := context.Background()
	if *rebuild {
		n, err := history.Rebuild(ctx, path, roots)
		if err != nil {
			fmt.Fprintf(stderr, "kregress history: %v\n", err)
			return exitInfra
		}
		fmt.Fprintf(stdout, "rebuilt %s from %d run directories\n", path, n)
		return exitOK
	}
	// Check every directory first, so bad input records nothing.
	for _, d := range add {
		if _, err := history.Load(d); err != nil {
			fmt.Fprintf(stderr, "kregress history: %v\n", err)
			return exitInfra
		}
	}
	db, err := history.Open(ctx, path)
	if err != nil {
		fmt.Fprintf(stderr, "kregress history: %v\n", err)
		return exitInfra
	}
	defer db.Close()
	if len(add) > 0 {
		for _, d := range add {
			if err := db.Record(ctx, *jobName, d); err != nil {
				fmt.Fprintf(stderr, "kregress history: %v\n", err)
				return exitInfra
			}
			fmt.Fprintf(stdout, "recorded %s\n", d)
		}
		return exitOK
	}
	runs, err := db.Runs(ctx, *jobName)
	if err == nil && *bug != "" {
		runs = runsWithBug(runs, *bug)
	}
	if err != nil {
		fmt.Fprintf(stderr, "kregress history: %v\n", err)
		return exitInfra
	}
	bugs, err := db.Bugs(ctx, *jobName, *bug)
	if err != nil {
		fmt.Fprintf(stderr, "kregress history: %v\n", err)
		return exitInfra
	}
	if *asJSON {
		data, _ := json.MarshalIndent(struct {
			Runs []history.RunRow `json:"runs"`
			Bugs []history.BugRow `json:"bugs"`
		}{runs, bugs}, "", "  ")
		fmt.Fprintf(stdout, "%s\n", data)
		return exitOK
	}
	writeHistory(stdout, runs, bugs)
	return exitOK
}

// runsWithBug keeps the runs that showed a bug whose title contains bug.
func runsWithBug(runs []history.RunRow, bug string) []history.RunRow {
	var out []history.RunRow
	for _, r := range runs {
		for _, c := range r.Crashes {
			if strings.Contains(strings.ToLower(c), strings.ToLower(bug)) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// writeHistory prints the runs and the bugs as two tables.
func writeHistory(w io.Writer, runs []history.RunRow, bugs []history.BugRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED\tJOB\tKIND\tSTATUS\tTESTS\tFAILED\tCRASHES\tDIR")
	for _, r := range runs {
		kind := r.Kind
		if r.Step != "" {
			kind += " " + r.Step
		}
		job := r.Job
		if job == "" {
			job = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", r.Started.UTC().Format("2006-01-02 15:04"), job, kind,
			strings.ToUpper(r.Status), r.Tests, r.Failed, orDash(strings.Join(r.Crashes, "; ")), r.Dir)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d runs, %d bugs\n\n", len(runs), len(bugs))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tCOUNT\tFIRST SEEN\tLAST SEEN\tTYPE\tTITLE")
	for _, b := range bugs {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", b.Status, b.Count, b.FirstSeen.UTC().Format("2006-01-02 15:04"),
			b.LastSeen.UTC().Format("2006-01-02 15:04"), orDash(b.Type), b.Title)
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

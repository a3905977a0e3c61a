// Command kregress builds, boots and tests kernels with candidate patch
// series applied, and reports the crashes and regressions it finds.
//
// Each subcommand lives in a file of its own in this directory and registers
// itself with register in an init function. Exit codes are shared by all
// subcommands: 0 success, 1 a test failed or a kernel crashed, 2 an
// infrastructure failure or bad input.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

// Exit codes shared by every subcommand.
const (
	exitOK    = 0
	exitFail  = 1
	exitInfra = 2
)

// command is one subcommand: its name, a one-line summary and the function
// that runs it with the arguments after the subcommand name.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

// register adds a subcommand; called from init functions.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("kregress: duplicate subcommand " + c.name)
	}
	commands[c.name] = c
}

// newFlagSet returns a flag set for a subcommand that prints usage to stderr
// with the given synopsis and returns errors instead of exiting.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: kregress %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs and maps the outcome to an exit code:
// ok is false when the caller should return code at once (-h gives 0,
// a bad flag gives 2).
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitInfra, false
	}
	return 0, true
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: kregress <command> [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'kregress <command> --help' for a command's flags.")
}

func main() {
	os.Exit(mainWithArgs(os.Args[1:], os.Stdout, os.Stderr))
}

func mainWithArgs(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitInfra
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "kregress: unknown command %q\n", args[0])
		usage(stderr)
		return exitInfra
	}
	return c.run(args[1:], stdout, stderr)
}

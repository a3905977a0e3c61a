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
	"strings"
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

// newFlagSet returns a flag set for a subcommand that returns errors
// instead of exiting; its Usage prints the synopsis and the flags to the
// flag set's output (see parseFlags).
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kregress %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs and maps the outcome to an exit code:
// ok is false when the caller should return code at once. -h or --help
// prints the usage to stdout and gives 0; a bad flag is one error line on
// the flag set's output (stderr) and gives 2.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) (code int, ok bool) {
	stderr, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		fs.SetOutput(stderr)
		return exitOK, false
	case err != nil:
		fmt.Fprintf(stderr, "kregress %s: %v\n", fs.Name(), err)
		hint(stderr, fs.Name())
		return exitInfra, false
	}
	return 0, true
}

// hint points at a subcommand's help after an error.
func hint(w io.Writer, name string) {
	fmt.Fprintf(w, "(run 'kregress %s --help' for its flags)\n", name)
}

// failf prints a subcommand's one error line, "kregress NAME: message",
// or "kregress: message" when the message already starts with "NAME: " (an
// error of the build package from "kregress build"), never doubled as
// "kregress build: build: ...". The message after the first ": " is the
// same whichever command met the error.
func failf(w io.Writer, name, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strings.HasPrefix(msg, name+": ") {
		fmt.Fprintf(w, "kregress: %s\n", msg)
		return
	}
	fmt.Fprintf(w, "kregress %s: %s\n", name, msg)
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
	case "help":
		if len(args) > 1 {
			c, ok := commands[args[1]]
			if !ok {
				fmt.Fprintf(stderr, "kregress help: unknown command %q\n", args[1])
				usage(stderr)
				return exitInfra
			}
			return c.run([]string{"--help"}, stdout, stderr)
		}
		usage(stdout)
		return exitOK
	case "-h", "-help", "--help":
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

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/internal/progress"
	"github.com/kregress/kregress/job"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/triage/symbolize"
	"github.com/kregress/kregress/suites"
)

func init() {
	register(command{
		name:    "run",
		summary: "boot a kernel in QEMU and run suites in it",
		run:     runCmd,
	})
}

// runJob runs one job; tests replace it to check what the command prints
// for results a real run rarely gives (a record that cannot be written).
var runJob = job.Run

// stringList is a repeatable, comma-separated flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}

// signalContext is canceled on SIGINT or SIGTERM, so that every VM,
// build and server is torn down before kregress exits.
//
// Its cause names the signal ("SIGINT received"), so that every record
// of what the signal ended says which one. After the first signal the
// default behaviour returns: a second Ctrl-C ends kregress at once (its
// children die with it).
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-ch:
			signal.Stop(ch)
			name := "SIGINT"
			if sig == syscall.SIGTERM {
				name = "SIGTERM"
			}
			cancel(fmt.Errorf("%s received", name))
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(context.Canceled)
	}
}

// withTimeout bounds ctx by the --timeout flag; when it expires, what ends
// (a VM, a test) says so instead of "context deadline exceeded".
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, d, fmt.Errorf("--timeout %v expired", d))
}

func runCmd(args []string, stdout, stderr io.Writer) (code int) {
	fs := newFlagSet("run", "--kernel PATH [--suite NAME|FILE ...] [flags]", stderr)
	kernel := fs.String("kernel", "", "kernel `bzImage` to boot (required unless --build)")
	doBuild := fs.Bool("build", false, "build first: the kernel from --source/--series/--config (see 'kregress build --help') and/or the Lustre client from --client/--client-series against it (or against --kernel's installed headers)")
	var bf buildFlags
	bf.register(fs)
	var vf vmFlags
	vf.register(fs, 30*time.Minute)
	var extraMods stringList
	jobs := fs.Int("jobs", 1, "how many VMs to run at once (one per suite)")
	fs.Var(&extraMods, "ko", "out-of-tree `.ko` file to pack and load at boot (repeatable)")
	jsonOut := fs.Bool("json", false, "print result.json to stdout instead of the summary")
	var ef execFlags
	ef.register(fs)
	bisectCodes := fs.Bool("bisect-exit-codes", false, "exit as `git bisect run` wants: 0 good, 1 bad (a crash or failed test), 125 skip (the kernel does not build or boot, infrastructure), 128 abort (bad input)")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	phase := phaseInput
	defer func() {
		if *bisectCodes {
			code = bisectExitCode(phase, code)
		}
	}()
	bad := func(format string, args ...any) int {
		failf(stderr, "run", format, args...)
		return exitInfra
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	if *kernel == "" && !*doBuild {
		failf(stderr, "run", "--kernel or --build is required")
		hint(stderr, "run")
		return exitInfra
	}
	if *kernel != "" && *doBuild && bf.source != "" {
		return bad("give --kernel or --build --source, not both")
	}
	if *doBuild && bf.source == "" && bf.client == "" {
		return bad("--build needs --source (a kernel to build) or --client (a Lustre client to build)")
	}
	if bf.client != "" && !*doBuild {
		return bad("--client is built with --build")
	}
	if *doBuild && bf.source == "" && *kernel == "" {
		return bad("--build --client without --source builds the client against a distribution kernel: give it with --kernel")
	}
	if _, err := bf.clientSpec(); err != nil {
		return bad("%v", err)
	}
	if *kernel != "" {
		if _, err := os.Stat(*kernel); err != nil {
			return bad("kernel: %v", err)
		}
	}
	if *jobs < 1 {
		return bad("--jobs %d: want at least 1", *jobs)
	}
	for _, ko := range extraMods {
		if st, err := os.Stat(ko); err != nil {
			return bad("--ko: %v", err)
		} else if !st.Mode().IsRegular() || !strings.HasSuffix(ko, ".ko") {
			return bad("--ko %s: not a .ko file", ko)
		}
	}
	base, loaded, err := vf.check()
	if err != nil {
		return bad("%v", err)
	}
	if err := ef.check(); err != nil {
		return bad("%v", err)
	}
	for _, s := range loaded {
		if s.Target == suites.TargetLustre && len(base.Lustre.Modules) == 0 && !*doBuild {
			return bad("suite %s targets lustre: give the Lustre client modules built for this kernel with --lustre-modules DIR, or build them with --build --client TREE", s.Name)
		}
	}
	if bf.client != "" {
		if vf.lustreMods != "" {
			return bad("give --client (build the client) or --lustre-modules (built modules), not both")
		}
		if !job.MountsLustre(loaded) {
			return bad("--client %s given but no suite among %s mounts Lustre (target: lustre): its modules would not be loaded", bf.client, vf.suiteNames.String())
		}
	}
	var req build.Request
	if *doBuild && bf.source != "" {
		if req, err = bf.request(); err != nil {
			return bad("%v", err)
		}
	}
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := withTimeout(ctx, vf.timeout)
	defer cancel()

	prog := progress.New(stderr, vf.verbose)
	defer prog.Done()
	ex, _, err := ef.executor(ctx, prog.Printf)
	if err != nil {
		return bad("%v", err)
	}
	buildKernel, runOne := build.Build, runJob
	if ex != nil {
		buildKernel, runOne = ex.Build, ex.Run
	}
	// built is the kernel's part of every run's spec when kregress built it.
	var built *job.Spec
	var builtTree build.KernelTree
	var builtVmlinux string
	phase = phaseBuild
	if *doBuild && bf.source != "" {
		req.Progress = prog
		br, err := buildKernel(ctx, req)
		if err != nil {
			prog.Done()
			failf(stderr, "run", "%v", err)
			return buildExit(err)
		}
		built = &job.Spec{Modules: base.Modules}
		defer built.UseBuild(br)()
		builtTree = build.KernelTree{Linux: br.Source, LinuxObj: br.Dir, Release: br.Release}
		builtVmlinux = br.Vmlinux
	}
	if bf.client != "" {
		kt := builtTree
		if built == nil {
			if kt, err = distroKernel(*kernel); err != nil {
				prog.Done()
				failf(stderr, "run", "%v", err)
				return exitInfra
			}
		}
		cr, mods, err := bf.buildClient(ctx, kt, prog)
		if err != nil {
			prog.Done()
			failf(stderr, "run", "%v", err)
			return buildExit(err)
		}
		base.Lustre.Modules, base.Lustre.SourceRoot = mods, cr.Dir
		if built != nil {
			// The kernel's symbolizer, with the client's modules too.
			var dirs []string
			if built.ModulesDir != "" {
				dirs = append(dirs, built.ModulesDir)
			}
			if s, err := symbolize.New(builtVmlinux, append(dirs, cr.Dir)...); err == nil {
				defer s.Close()
				built.Symbolizer = s
			}
		}
	}
	phase = phaseRun
	type outcome struct {
		res *results.Result
		dir string
		err error
	}
	outs := make([]outcome, len(loaded))
	specs := make([]job.Spec, len(loaded))
	for idx, s := range loaded {
		label := s.Name
		spec := base
		spec.Suite = s
		spec.Kernel, spec.ExtraModules = *kernel, extraMods
		spec.Progress = func(f string, a ...any) { prog.Printf("%s: "+f, append([]any{label}, a...)...) }
		if built != nil {
			spec.Kernel, spec.ModulesDir, spec.Modules = built.Kernel, built.ModulesDir, built.Modules
			spec.Symbolizer, spec.SourceRoot = built.Symbolizer, built.SourceRoot
		}
		specs[idx] = spec
	}
	if many, ok := ex.(interface {
		RunMany(context.Context, []job.Spec) ([]*results.Result, []string, []error)
	}); ok {
		// A cluster: every suite in one batch (one job array).
		rs, dirs, errs := many.RunMany(ctx, specs)
		for i := range specs {
			outs[i] = outcome{rs[i], dirs[i], errs[i]}
		}
	} else {
		sem := make(chan struct{}, *jobs)
		var wg sync.WaitGroup
		for idx := range specs {
			wg.Add(1)
			go func(idx int) {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				res, dir, err := runOne(ctx, specs[idx])
				outs[idx] = outcome{res, dir, err}
			}(idx)
		}
		wg.Wait()
	}
	prog.Done()
	code = exitOK
	for i, o := range outs {
		if o.res == nil {
			failf(stderr, "run", "%v", o.err)
			code = exitInfra
			continue
		}
		// The verdict first, even when its record could not be written.
		if *jsonOut {
			data, _ := json.MarshalIndent(o.res, "", "  ")
			stdout.Write(append(data, '\n'))
		} else {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			results.Summary(stdout, o.res, o.dir)
		}
		switch o.res.Status {
		case results.StatusPass:
		case results.StatusInfra:
			code = exitInfra
		default:
			if code == exitOK {
				code = exitFail
			}
		}
		if o.err != nil {
			failf(stderr, "run", "the verdict above could not be recorded in %s: %v", o.dir, o.err)
			code = exitInfra
		}
	}
	return code
}

// loadSuites loads the named suites (shipped names or files); none means
// the smoke suite.
func loadSuites(names []string) ([]*suites.Suite, error) {
	if len(names) == 0 {
		names = []string{"smoke"}
	}
	var loaded []*suites.Suite
	for _, n := range names {
		s, err := suites.Load(n)
		if err != nil {
			return nil, err
		}
		loaded = append(loaded, s)
	}
	return loaded, nil
}

// Phases of a run, for --bisect-exit-codes.
const (
	phaseInput = iota // checking flags and inputs
	phaseBuild        // building the kernel (--build)
	phaseRun          // booting and running suites
)

// bisectExitCode maps run's exit status to `git bisect run`'s: a kernel
// that does not build or boot and an infrastructure failure are skip
// (125), never good or bad; bad input aborts the bisection (128).
func bisectExitCode(phase, code int) int {
	switch {
	case code == exitOK:
		return 0
	case phase == phaseInput:
		return 128
	case phase == phaseBuild:
		return 125
	case code == exitFail:
		return 1
	}
	return 125
}

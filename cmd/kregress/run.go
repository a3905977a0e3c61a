package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/job"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/triage/symbolize"
	"github.com/kregress/kregress/runner"
	"github.com/kregress/kregress/suites"
)

func init() {
	register(command{
		name:    "run",
		summary: "boot a kernel in QEMU and run suites in it",
		run:     runCmd,
	})
}

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
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// withTimeout bounds ctx by the --timeout flag; when it expires, what ends
// (a VM, a test) says so instead of "context deadline exceeded".
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, d, fmt.Errorf("--timeout %v expired", d))
}

func runCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", "--kernel PATH [--suite NAME|FILE ...] [flags]", stderr)
	kernel := fs.String("kernel", "", "kernel `bzImage` to boot (required unless --build)")
	doBuild := fs.Bool("build", false, "build the kernel first from --source/--series/--config (see 'kregress build --help')")
	var bf buildFlags
	bf.register(fs)
	var suiteNames, modules, extraMods stringList
	fs.Var(&suiteNames, "suite", "suite `NAME|FILE` to run; repeat or comma-separate for several (shipped: "+strings.Join(suites.Builtin(), ", ")+"; default smoke)")
	initrdExtra := fs.String("initrd-extra", "", "host `DIR` copied into the guest's root")
	out := fs.String("out", "out", "`DIR` under which run directories are made")
	timeout := fs.Duration("timeout", 30*time.Minute, "overall time limit for the whole command")
	accel := fs.String("accel", "", "accelerator: kvm or tcg (default: probe, cached)")
	boot := fs.String("boot", "auto", "how QEMU enters the kernel: auto (the bzImage's vmlinux directly when it has a PVH entry; much faster under TCG) or bzimage")
	jobs := fs.Int("jobs", 1, "how many VMs to run at once (one per suite)")
	appendArgs := fs.String("append", "", "extra kernel command line")
	mem := fs.Int("memory", 1024, "guest memory in MiB")
	cpus := fs.Int("cpus", 2, "guest CPUs")
	bootTimeout := fs.Duration("boot-timeout", 2*time.Minute, "time allowed until the guest agent answers")
	noOutput := fs.Duration("no-output-timeout", 0, "end the run when the console is silent this long (0: never)")
	fs.Var(&modules, "load", "kernel `module` from the kernel's module tree to load at boot (repeatable)")
	fs.Var(&extraMods, "ko", "out-of-tree `.ko` file to pack and load at boot (repeatable)")
	lustreMods := fs.String("lustre-modules", "", "`DIR` of Lustre client .ko files built for this kernel (for suites whose target is lustre)")
	lustreTree := fs.String("lustre-tree", "", "YAML `FILE` describing the simulated Lustre server's namespace")
	lustreGen := fs.String("lustre-generate", "", "generate the simulated server's namespace: `SPEC` like dirs=10,files=100 (default "+job.DefaultLustreTree+")")
	lustreFaults := fs.String("lustre-faults", "", "YAML `FILE` of fault rules for the simulated server")
	verbose := fs.Bool("v", false, "print progress lines even when not on a terminal")
	jsonOut := fs.Bool("json", false, "print result.json to stdout instead of the summary")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kregress run: unexpected argument %q\n", fs.Arg(0))
		return exitInfra
	}
	if *kernel == "" && !*doBuild {
		fmt.Fprintln(stderr, "kregress run: --kernel or --build is required")
		fs.Usage()
		return exitInfra
	}
	if *kernel != "" && *doBuild {
		fmt.Fprintln(stderr, "kregress run: give --kernel or --build, not both")
		return exitInfra
	}
	if *kernel != "" {
		if _, err := os.Stat(*kernel); err != nil {
			fmt.Fprintf(stderr, "kregress run: kernel: %v\n", err)
			return exitInfra
		}
	}
	if *accel != "" && *accel != "kvm" && *accel != "tcg" {
		fmt.Fprintf(stderr, "kregress run: --accel %q: want kvm or tcg\n", *accel)
		return exitInfra
	}
	if *boot != runner.BootAuto && *boot != runner.BootBzImage {
		fmt.Fprintf(stderr, "kregress run: --boot %q: want auto or bzimage\n", *boot)
		return exitInfra
	}
	loaded, err := loadSuites(suiteNames)
	if err != nil {
		fmt.Fprintf(stderr, "kregress run: %v\n", err)
		return exitInfra
	}
	if *jobs < 1 {
		*jobs = 1
	}
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := withTimeout(ctx, *timeout)
	defer cancel()

	var lustre job.LustreSpec
	if *lustreMods != "" {
		kos, _ := filepath.Glob(filepath.Join(*lustreMods, "*.ko"))
		if len(kos) == 0 {
			fmt.Fprintf(stderr, "kregress run: --lustre-modules %s holds no .ko files\n", *lustreMods)
			return exitInfra
		}
		lustre = job.LustreSpec{Modules: kos, TreeFile: *lustreTree, Generate: *lustreGen, FaultsFile: *lustreFaults}
	}
	prog := newProgress(stderr, *verbose)
	var modDir string
	var sym *symbolize.Symbolizer
	var srcRoot string
	if *doBuild {
		req, err := bf.request(stderr)
		if err != nil {
			fmt.Fprintf(stderr, "kregress run: %v\n", err)
			return exitInfra
		}
		br, err := build.Build(ctx, req)
		if err != nil {
			fmt.Fprintf(stderr, "kregress run: %v\n", err)
			var ce *build.CompileError
			var ae *build.ApplyError
			if errors.As(err, &ce) || errors.As(err, &ae) {
				return exitFail
			}
			return exitInfra
		}
		*kernel, srcRoot = br.BzImage, br.Source
		if br.ModulesDir != "" {
			modDir = filepath.Join(br.ModulesDir, "lib", "modules", br.Release)
		}
		for _, e := range br.External {
			for _, m := range e.Modules {
				modules = append(modules, moduleName(m))
			}
		}
		if s, err := symbolize.New(br.Vmlinux, modDir); err == nil {
			sym = s
			defer s.Close()
		}
	}
	type outcome struct {
		res *results.Result
		dir string
		err error
	}
	outs := make([]outcome, len(loaded))
	sem := make(chan struct{}, *jobs)
	var wg sync.WaitGroup
	for idx, s := range loaded {
		wg.Add(1)
		go func(idx int, s *suites.Suite) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			label := s.Name
			res, dir, err := job.Run(ctx, job.Spec{
				Kernel: *kernel, Suite: s, Out: *out, InitrdExtra: *initrdExtra,
				Append: *appendArgs, Accel: *accel, Boot: *boot, MemoryMB: *mem, CPUs: *cpus,
				BootTimeout: *bootTimeout, NoOutputTimeout: *noOutput,
				Modules: modules, ExtraModules: extraMods, ModulesDir: modDir, Symbolizer: sym, SourceRoot: srcRoot, Lustre: lustre,
				Progress: func(f string, a ...any) { prog.Printf("%s: "+f, append([]any{label}, a...)...) },
			})
			outs[idx] = outcome{res, dir, err}
		}(idx, s)
	}
	wg.Wait()
	prog.Done()
	code := exitOK
	for i, o := range outs {
		if o.err != nil {
			fmt.Fprintf(stderr, "kregress run: %v\n", o.err)
			code = exitInfra
			continue
		}
		if *jsonOut {
			data, _ := os.ReadFile(o.dir + "/result.json")
			stdout.Write(data)
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
	}
	return code
}

// moduleName turns "extra/crashmod.ko" into "crashmod".
func moduleName(path string) string {
	b := filepath.Base(path)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return b
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

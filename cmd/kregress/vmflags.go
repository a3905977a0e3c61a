package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kregress/kregress/job"
	"github.com/kregress/kregress/lustre/faults"
	"github.com/kregress/kregress/lustre/namespace"
	"github.com/kregress/kregress/runner"
	"github.com/kregress/kregress/suites"
)

// Limits of the guest that --memory and --cpus accept.
const (
	minMemoryMB = 128 // below this the guest's kernel and agent do not come up
	maxCPUs     = 255 // QEMU's pc machine takes no more
)

// vmFlags are the flags of booting a kernel and running suites in it that
// "run" and "test" share: declared once here, validated by check before
// any work (and before any run directory is made).
type vmFlags struct {
	suiteNames              stringList
	out                     string
	timeout                 time.Duration
	accel, boot, appendArgs string
	memory, cpus            int
	bootTimeout, noOutput   time.Duration
	initrdExtra             string
	load                    stringList
	lustreMods, lustreTree  string
	lustreGen, lustreFaults string
	verbose                 bool
}

// register adds the shared flags to fs; timeout is the command's default
// overall time limit.
func (v *vmFlags) register(fs *flag.FlagSet, timeout time.Duration) {
	fs.Var(&v.suiteNames, "suite", "suite `NAME|FILE` to run; repeat or comma-separate for several (shipped: "+strings.Join(suites.Builtin(), ", ")+"; default smoke); an existing file is always a file")
	fs.StringVar(&v.out, "out", "out", "`DIR` under which run directories are made")
	fs.DurationVar(&v.timeout, "timeout", timeout, "overall time limit for the whole command")
	fs.StringVar(&v.accel, "accel", "", "accelerator: kvm or tcg (default: probe, cached)")
	fs.StringVar(&v.boot, "boot", runner.BootAuto, "how QEMU enters the kernel: auto (the bzImage's vmlinux directly when it has a PVH entry; much faster under TCG) or bzimage")
	fs.StringVar(&v.appendArgs, "append", "", "extra kernel command line")
	fs.IntVar(&v.memory, "memory", 1024, fmt.Sprintf("guest memory in MiB (at least %d)", minMemoryMB))
	fs.IntVar(&v.cpus, "cpus", 2, fmt.Sprintf("guest CPUs (1 to %d)", maxCPUs))
	fs.DurationVar(&v.bootTimeout, "boot-timeout", 2*time.Minute, "time allowed until the guest agent answers")
	fs.DurationVar(&v.noOutput, "no-output-timeout", 0, "end a run when the console is silent this long (0: never)")
	fs.StringVar(&v.initrdExtra, "initrd-extra", "", "host `DIR` copied into the guest's root")
	fs.Var(&v.load, "load", "kernel `module` from the kernel's module tree to load at boot (repeatable)")
	fs.StringVar(&v.lustreMods, "lustre-modules", "", "`DIR` of Lustre client .ko files built for this kernel (for suites whose target is lustre)")
	fs.StringVar(&v.lustreTree, "lustre-tree", "", "YAML `FILE` describing the simulated Lustre server's namespace")
	fs.StringVar(&v.lustreGen, "lustre-generate", "", "generate the simulated server's namespace: `SPEC` like dirs=10,files=100 (default "+job.DefaultLustreTree+")")
	fs.StringVar(&v.lustreFaults, "lustre-faults", "", "YAML `FILE` of fault rules for the simulated server")
	fs.BoolVar(&v.verbose, "v", false, "print progress lines even when not on a terminal")
}

// check validates the flags, loads the suites and returns the run
// settings every job of the command shares (Kernel, Suite, Out, Label and
// Progress are the caller's). It touches nothing.
func (v *vmFlags) check() (job.Spec, []*suites.Suite, error) {
	var spec job.Spec
	switch {
	case v.accel != "" && v.accel != "kvm" && v.accel != "tcg":
		return spec, nil, fmt.Errorf("--accel %q: want kvm or tcg", v.accel)
	case v.boot != runner.BootAuto && v.boot != runner.BootBzImage:
		return spec, nil, fmt.Errorf("--boot %q: want auto or bzimage", v.boot)
	case v.memory < minMemoryMB:
		return spec, nil, fmt.Errorf("--memory %d: want at least %d (MiB)", v.memory, minMemoryMB)
	case v.cpus < 1 || v.cpus > maxCPUs:
		return spec, nil, fmt.Errorf("--cpus %d: want 1 to %d", v.cpus, maxCPUs)
	case v.timeout <= 0:
		return spec, nil, fmt.Errorf("--timeout %v: want a positive duration", v.timeout)
	case v.bootTimeout <= 0:
		return spec, nil, fmt.Errorf("--boot-timeout %v: want a positive duration", v.bootTimeout)
	case v.noOutput < 0:
		return spec, nil, fmt.Errorf("--no-output-timeout %v: want 0 (never) or a positive duration", v.noOutput)
	case v.out == "":
		return spec, nil, errors.New("--out: want a directory")
	}
	if v.initrdExtra != "" {
		if st, err := os.Stat(v.initrdExtra); err != nil {
			return spec, nil, fmt.Errorf("--initrd-extra: %w", err)
		} else if !st.IsDir() {
			return spec, nil, fmt.Errorf("--initrd-extra %s: not a directory", v.initrdExtra)
		}
	}
	loaded, err := loadSuites(v.suiteNames)
	if err != nil {
		return spec, nil, err
	}
	lustre, err := v.lustre()
	if err != nil {
		return spec, nil, err
	}
	usesLustre := false
	for _, s := range loaded {
		usesLustre = usesLustre || s.Target == suites.TargetLustre
	}
	if !usesLustre && (v.lustreMods != "" || v.lustreTree != "" || v.lustreGen != "" || v.lustreFaults != "") {
		return spec, nil, errors.New("--lustre-* flags given but no suite has target lustre")
	}
	spec = job.Spec{
		Out: v.out, InitrdExtra: v.initrdExtra, Append: v.appendArgs, Accel: v.accel, Boot: v.boot,
		MemoryMB: v.memory, CPUs: v.cpus, BootTimeout: v.bootTimeout, NoOutputTimeout: v.noOutput,
		Modules: v.load, Lustre: lustre,
	}
	return spec, loaded, nil
}

// lustre checks the --lustre-* flags by loading what they name, as the
// simulated server will.
func (v *vmFlags) lustre() (job.LustreSpec, error) {
	ls := job.LustreSpec{TreeFile: v.lustreTree, Generate: v.lustreGen, FaultsFile: v.lustreFaults}
	if v.lustreMods != "" {
		if st, err := os.Stat(v.lustreMods); err != nil {
			return ls, fmt.Errorf("--lustre-modules: %w", err)
		} else if !st.IsDir() {
			return ls, fmt.Errorf("--lustre-modules %s: not a directory", v.lustreMods)
		}
		ls.Modules, _ = filepath.Glob(filepath.Join(v.lustreMods, "*.ko"))
		if len(ls.Modules) == 0 {
			return ls, fmt.Errorf("--lustre-modules %s holds no .ko files", v.lustreMods)
		}
	}
	if v.lustreTree != "" && v.lustreGen != "" {
		return ls, errors.New("give --lustre-tree or --lustre-generate, not both")
	}
	if v.lustreTree != "" {
		if _, err := namespace.Load(v.lustreTree); err != nil {
			return ls, fmt.Errorf("--lustre-tree: %w", err)
		}
	}
	if v.lustreGen != "" {
		if _, err := namespace.Generate(v.lustreGen); err != nil {
			return ls, fmt.Errorf("--lustre-generate: %w", err)
		}
	}
	if v.lustreFaults != "" {
		if _, err := faults.Load(v.lustreFaults); err != nil {
			return ls, fmt.Errorf("--lustre-faults: %w", err)
		}
	}
	return ls, nil
}

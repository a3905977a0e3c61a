package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/internal/progress"
	"github.com/kregress/kregress/kconfig"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// buildFlags are the flags that describe a kernel build; "kregress build"
// uses them, and "kregress run --build" can register the same set.
type buildFlags struct {
	source, base, series, baseConfig string
	configs, modules, configureArgs  listFlag
	jobs                             int
	// The Lustre client tree, its base and a series for it.
	client, clientBase, clientSeries string
}

// register adds the build flags to fs.
func (b *buildFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.source, "source", "", "kernel git tree or source tarball (e.g. /usr/src/linux-source-6.1.tar.xz)")
	fs.StringVar(&b.base, "base", "", "base ref in a git tree (default HEAD)")
	fs.StringVar(&b.series, "series", "", "patch series for the KERNEL tree (--source): mbox, folder of .patch files, or git range A..B in the source tree")
	fs.StringVar(&b.client, "client", "", "Lustre client `TREE` (lustre-release git checkout or source tarball) built against the kernel and loaded for lustre suites")
	fs.StringVar(&b.clientBase, "client-base", "", "base `REF` in a git --client tree (default HEAD)")
	fs.StringVar(&b.clientSeries, "client-series", "", "patch series for the CLIENT tree (--client): mbox, folder of .patch files, or git range A..B in the client tree")
	fs.StringVar(&b.baseConfig, "base-config", "tinyconfig", "base config: a make target (tinyconfig, defconfig) or a .config file")
	fs.Var(&b.configs, "config", "preset ("+strings.Join(kconfig.Presets(), ", ")+") or fragment file; repeatable, later wins")
	fs.Var(&b.modules, "module", "out-of-tree module tree (Kbuild or autotools) to build against the kernel; repeatable")
	fs.Var(&b.configureArgs, "configure-arg", "extra argument for autotools module trees' ./configure; repeatable")
	fs.IntVar(&b.jobs, "j", 0, "make -j (default: CPUs + 1)")
}

// request turns the flags into a build request (without Progress), after
// checking what can be checked without work: the source exists and every
// config names a preset or a readable fragment.
func (b *buildFlags) request() (build.Request, error) {
	if b.source == "" {
		return build.Request{}, errors.New("--source is required")
	}
	if _, err := os.Stat(b.source); err != nil {
		return build.Request{}, fmt.Errorf("--source: %w", err)
	}
	for _, c := range b.configs {
		if _, err := kconfig.Load(c); err != nil {
			return build.Request{}, fmt.Errorf("--config: %w", err)
		}
	}
	if b.jobs < 0 {
		return build.Request{}, fmt.Errorf("-j %d: want 0 (CPUs + 1) or more", b.jobs)
	}
	return build.Request{
		Source: b.source, Base: b.base, Series: b.series,
		BaseConfig: b.baseConfig, Configs: b.configs,
		ExternalModules: b.modules, ConfigureArgs: b.configureArgs,
		Jobs: b.jobs,
	}, nil
}

func init() {
	register(command{
		name:    "build",
		summary: "build a kernel with a patch series and config presets, cached",
		run:     runBuild,
	})
}

func runBuild(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("build", "--source PATH [--base REF] [--series PATH] [--config PRESET|FILE ...] [--out DIR]", stderr)
	var bf buildFlags
	bf.register(fs)
	out := fs.String("out", "", "also copy bzImage, vmlinux, .config, System.map and the modules into this folder")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if fs.NArg() > 0 {
		failf(stderr, "build", "unexpected arguments %q", fs.Args())
		return exitInfra
	}
	req, err := bf.request()
	if err != nil {
		failf(stderr, "build", "%v", err)
		hint(stderr, "build")
		return exitInfra
	}
	if _, err := bf.clientSpec(); err != nil {
		failf(stderr, "build", "%v", err)
		return exitInfra
	}
	ctx, cancel := signalContext()
	defer cancel()
	prog := progress.New(stderr, true)
	req.Progress = prog
	res, err := build.Build(ctx, req)
	prog.Done()
	if err != nil {
		failf(stderr, "build", "%v", err)
		return buildExit(err)
	}
	if *out != "" {
		if res, err = build.Export(ctx, res, *out); err != nil {
			failf(stderr, "build", "%v", err)
			return exitInfra
		}
	}
	printResult(stdout, res)
	if bf.client != "" {
		prog := progress.New(stderr, true)
		cr, mods, err := bf.buildClient(ctx, build.KernelTree{Linux: res.Source, LinuxObj: res.Dir, Release: res.Release}, prog)
		prog.Done()
		if err != nil {
			failf(stderr, "build", "%v", err)
			return buildExit(err)
		}
		fmt.Fprintf(stdout, "client:    %s (configure %.0fs, make %.0fs)\n", cr.Dir, cr.ConfigureSeconds, cr.MakeSeconds)
		fmt.Fprintf(stdout, "client modules for a mount: %s\n", strings.Join(mods, " "))
	}
	return exitOK
}

// buildExit is the exit code of a failed build (build.Classify): 1 when
// the patches do not apply or the kernel does not compile (a test result),
// 2 for bad input and infrastructure.
func buildExit(err error) int {
	switch build.Classify(err) {
	case build.ClassNoApply, build.ClassNoBuild:
		return exitFail
	}
	return exitInfra
}

func printResult(w io.Writer, res *build.Result) {
	fmt.Fprintf(w, "release:   %s\n", res.Release)
	fmt.Fprintf(w, "bzImage:   %s\n", res.BzImage)
	fmt.Fprintf(w, "vmlinux:   %s\n", res.Vmlinux)
	fmt.Fprintf(w, ".config:   %s\n", res.Config)
	if res.ModulesDir != "" {
		fmt.Fprintf(w, "modules:   %s\n", res.ModulesDir)
	}
	how := map[bool]string{true: "incremental", false: "clean"}[res.Incremental]
	if res.From != "" {
		how = fmt.Sprintf("incremental, started from %s: %d config symbols differ", res.From, res.FromDistance)
	}
	fmt.Fprintf(w, "build dir: %s (key %s, %s; %d kbuild steps)\n", res.Dir, res.Key, how, res.Compiled)
	for _, p := range res.Patches {
		fmt.Fprintf(w, "patch %d/%d %s: %q\n", p.Number, p.Total, p.Status, p.Subject)
	}
	for _, e := range res.External {
		fmt.Fprintf(w, "external:  %s (%s): %s\n", e.Tree, e.Kind, strings.Join(e.Modules, " "))
	}
	for _, d := range res.Dropped {
		fmt.Fprintf(w, "dropped:   %s\n", d)
	}
	for _, d := range res.Warnings {
		fmt.Fprintf(w, "warning:   %s\n", d)
	}
}

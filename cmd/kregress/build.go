package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kregress/kregress/internal/proc"

	"github.com/kregress/kregress/build"
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
}

// register adds the build flags to fs.
func (b *buildFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.source, "source", "", "kernel git tree or source tarball (e.g. /usr/src/linux-source-6.1.tar.xz)")
	fs.StringVar(&b.base, "base", "", "base ref in a git tree (default HEAD)")
	fs.StringVar(&b.series, "series", "", "patch series: mbox, folder of .patch files, or git range A..B in the source tree")
	fs.StringVar(&b.baseConfig, "base-config", "tinyconfig", "base config: a make target (tinyconfig, defconfig) or a .config file")
	fs.Var(&b.configs, "config", "preset ("+strings.Join(kconfig.Presets(), ", ")+") or fragment file; repeatable, later wins")
	fs.Var(&b.modules, "module", "out-of-tree module tree (Kbuild or autotools) to build against the kernel; repeatable")
	fs.Var(&b.configureArgs, "configure-arg", "extra argument for autotools module trees' ./configure; repeatable")
	fs.IntVar(&b.jobs, "j", 0, "make -j (default: CPUs + 1)")
}

// request turns the flags into a build request.
func (b *buildFlags) request(progress io.Writer) (build.Request, error) {
	if b.source == "" {
		return build.Request{}, errors.New("--source is required")
	}
	return build.Request{
		Source: b.source, Base: b.base, Series: b.series,
		BaseConfig: b.baseConfig, Configs: b.configs,
		ExternalModules: b.modules, ConfigureArgs: b.configureArgs,
		Jobs: b.jobs, Progress: progress,
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
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kregress build: unexpected arguments %q\n", fs.Args())
		return exitInfra
	}
	req, err := bf.request(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "kregress build: %v\n", err)
		fs.Usage()
		return exitInfra
	}
	ctx, cancel := signalContext()
	defer cancel()
	res, err := build.Build(ctx, req)
	if err != nil {
		fmt.Fprintf(stderr, "kregress build: %v\n", err)
		var ce *build.CompileError
		var ae *build.ApplyError
		if errors.As(err, &ce) || errors.As(err, &ae) {
			return exitFail // the patches do not apply or compile: a test result
		}
		return exitInfra
	}
	if *out != "" {
		if err := copyOutputs(ctx, res, *out); err != nil {
			fmt.Fprintf(stderr, "kregress build: %v\n", err)
			return exitInfra
		}
	}
	printResult(stdout, res)
	return exitOK
}

func printResult(w io.Writer, res *build.Result) {
	fmt.Fprintf(w, "release:   %s\n", res.Release)
	fmt.Fprintf(w, "bzImage:   %s\n", res.BzImage)
	fmt.Fprintf(w, "vmlinux:   %s\n", res.Vmlinux)
	fmt.Fprintf(w, ".config:   %s\n", res.Config)
	if res.ModulesDir != "" {
		fmt.Fprintf(w, "modules:   %s\n", res.ModulesDir)
	}
	fmt.Fprintf(w, "build dir: %s (key %s, %s)\n", res.Dir, res.Key, map[bool]string{true: "incremental", false: "clean"}[res.Incremental])
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

// copyOutputs copies the build's outputs into dir.
func copyOutputs(ctx context.Context, res *build.Result, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	files := map[string]string{res.BzImage: "bzImage", res.Vmlinux: "vmlinux", res.Config: "config", res.SystemMap: "System.map"}
	for from, to := range files {
		if err := copyFile(from, filepath.Join(dir, to)); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	res.BzImage, res.Vmlinux, res.Config, res.SystemMap = filepath.Join(dir, "bzImage"), filepath.Join(dir, "vmlinux"), filepath.Join(dir, "config"), filepath.Join(dir, "System.map")
	if res.ModulesDir != "" {
		dst := filepath.Join(dir, "modules")
		os.RemoveAll(dst)
		// cp -a: the staging folder holds symlinks (build, source).
		if out, err := proc.Command(ctx, "cp", "-a", res.ModulesDir, dst).CombinedOutput(); err != nil {
			return fmt.Errorf("--out: copying modules: %w: %s", err, out)
		}
		res.ModulesDir = dst
	}
	return ctx.Err()
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o644)
}

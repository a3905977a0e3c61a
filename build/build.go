// Package build builds a Linux kernel from a source tree or tarball, a base
// ref and a patch series, with configuration fragments merged on a base
// config, and out-of-tree modules built against it.
//
// Sources are never touched: a git tree is used through a private clone in
// the cache that borrows its objects, a tarball is extracted once into the
// cache and committed to a private repository there. Patches are applied in that
// private tree and removed again before the next build. Build directories
// (make O=) are cached by (base commit or tarball digest, final .config
// digest), so building the next patch of a series is an incremental build;
// a config without a folder yet starts from a copy of the cached folder of
// the same base with the nearest config, so a config change rebuilds only
// what depends on the symbols that changed; ccache is used when installed.
package build

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kregress/kregress/internal/cache"
	"github.com/kregress/kregress/kconfig"
	"github.com/kregress/kregress/results"
)

// Request says what to build.
type Request struct {
	// Source is a kernel git tree (a folder) or a source tarball.
	Source string
	// Base is the ref to build in a git tree; "" means HEAD. Must be ""
	// for a tarball.
	Base string
	// Series is an mbox file, a folder of *.patch files, or (for a git
	// tree, when no such path exists) a git range in Source, e.g.
	// "v6.1..topic". "" means no series.
	Series string
	// Patches is an already-read series, applied after Series; a series
	// step passes a prefix of a series here.
	Patches []Patch
	// BaseConfig is a make target (tinyconfig, defconfig, allnoconfig, ...)
	// or a .config file; "" means tinyconfig.
	BaseConfig string
	// Configs are presets (see kconfig.Presets) or fragment files, merged
	// on BaseConfig in order, later winning.
	Configs []string
	// ExternalModules are out-of-tree module trees to build against the
	// kernel: Kbuild trees (make M=) or autotools trees (autogen.sh,
	// configure, make), such as lustre-release.
	ExternalModules []string
	// ConfigureArgs are extra arguments for autotools module trees'
	// configure, after --with-linux, --with-linux-obj and --disable-server.
	ConfigureArgs []string
	// CacheDir is the cache root; "" means cache.Root().
	CacheDir string
	// Jobs is make's -j; 0 means the number of CPUs plus one.
	Jobs int
	// Progress receives a live line per phase (on a terminal) or a line per
	// phase; nil prints nothing.
	Progress io.Writer
	// Log receives every line make prints; nil keeps only build.log in the
	// build folder.
	Log io.Writer
}

// Result says what was built and where it went.
type Result struct {
	// Key names the build folder: (base, final config) digest.
	Key string `json:"key"`
	// Dir is the build folder (make O=).
	Dir string `json:"dir"`
	// Source is the private work tree that was built (make's srctree).
	Source string `json:"source"`
	// Base is the base commit (git tree) or "sha256:..." (tarball).
	Base string `json:"base"`
	// Release is the kernel release string (uname -r in the guest).
	Release string `json:"release"`
	// BzImage, Vmlinux, SystemMap and Config are paths of the outputs.
	BzImage   string `json:"bzImage"`
	Vmlinux   string `json:"vmlinux"`
	SystemMap string `json:"systemMap"`
	Config    string `json:"config"`
	// ModulesDir is the staging root of modules_install: it holds
	// lib/modules/<Release>/ with modules.dep. "" when CONFIG_MODULES is off.
	ModulesDir string `json:"modulesDir,omitempty"`
	// Patches lists the series' patches and what became of each.
	Patches []PatchResult `json:"patches,omitempty"`
	// Dropped are requested config options the final .config lacks.
	Dropped []kconfig.Dropped `json:"dropped,omitempty"`
	// KconfigWarnings are the warnings make olddefconfig printed.
	KconfigWarnings []string `json:"kconfigWarnings,omitempty"`
	// Warnings are compiler warnings in files the series touches.
	Warnings []Diagnostic `json:"warnings,omitempty"`
	// External lists the out-of-tree module builds.
	External []ExternalResult `json:"external,omitempty"`
	// Incremental is true when the build folder already held a build,
	// its own or (From) a copy of another config's.
	Incremental bool `json:"incremental"`
	// From is set when this config had no build folder yet: the key of
	// the cached build folder (same base, nearest config) it was started
	// from as a copy, so that make rebuilt only what the config change
	// touches. FromDistance is how many config symbols differ.
	From         string `json:"from,omitempty"`
	FromDistance int    `json:"fromDistance,omitempty"`
	// Compiled counts kbuild steps (CC, AS, LD, ...) this build ran.
	Compiled int `json:"compiled"`
	// Duration is the wall time of Build.
	Duration time.Duration `json:"duration"`
	// Log is the build folder's log of this build's make output.
	Log string `json:"log"`
}

// Build builds req: prepares the private source tree, applies the series,
// merges and checks the config, runs make (bzImage, modules,
// modules_install) in the cached build folder, and builds the external
// modules. Bad input gives an *InputError before anything is changed; a patch
// that does not apply gives an *ApplyError and leaves the cache as it was;
// a failed compile gives a *CompileError.
func Build(ctx context.Context, req Request) (*Result, error) {
	start := time.Now()
	st := newStatus(req.Progress)
	defer st.done()
	jobs := req.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU() + 1
	}
	tree, err := applyRequest(ctx, &req, st)
	if err != nil {
		return nil, err
	}
	root, src, patches, applied := tree.root, tree.src, tree.patches, tree.applied
	defer src.release()
	ctx = src.lk.held(ctx)
	touched := map[string]bool{}
	for _, p := range applied {
		if p.Status == Applied {
			for _, f := range p.Files {
				touched[f] = true
			}
		}
	}

	env := makeEnv(root)
	vars := makeVars()
	cfg, err := makeConfig(ctx, root, src, &req, env, vars, st)
	if err != nil {
		src.reset(ctx)
		return nil, err
	}

	key := digest(src.baseID, cfg.digest)[:20]
	dir := filepath.Join(root, "builds", key)
	blk, err := lock(ctx, dir+".lock", st)
	if err != nil {
		return nil, err
	}
	defer blk.unlock()
	ctx = blk.held(ctx)
	res := &Result{
		Key: key, Dir: dir, Source: src.dir, Base: src.baseID,
		Patches: applied, Dropped: cfg.dropped, KconfigWarnings: cfg.warnings,
		BzImage:   filepath.Join(dir, "arch", "x86", "boot", "bzImage"),
		Vmlinux:   filepath.Join(dir, "vmlinux"),
		SystemMap: filepath.Join(dir, "System.map"),
		Config:    filepath.Join(dir, ".config"),
		Log:       filepath.Join(dir, "build.log"),
	}
	for _, d := range cfg.dropped {
		st.note("config: " + d.String())
	}
	old, oerr := os.ReadFile(res.Config)
	if oerr != nil {
		n, err := startFromNearest(ctx, root, src, key, dir, cfg.config, st)
		if err != nil {
			return nil, err
		}
		if n != nil {
			res.From, res.FromDistance = n.key, n.distance
			old, oerr = os.ReadFile(res.Config)
		}
	}
	res.Incremental = oerr == nil
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("build: creating build folder: %w", err)
	}
	os.Remove(filepath.Join(dir, completeMarker))
	if !bytes.Equal(old, cfg.final) {
		if err := results.WriteAtomic(res.Config, cfg.final); err != nil {
			return nil, fmt.Errorf("build: writing %s: %w", res.Config, err)
		}
	}
	logf, err := os.Create(res.Log)
	if err != nil {
		return nil, fmt.Errorf("build: creating build log: %w", err)
	}
	defer logf.Close()
	var log io.Writer = logf
	if req.Log != nil {
		log = io.MultiWriter(logf, req.Log)
	}

	modules := cfg.config.Value("CONFIG_MODULES") == "y"
	tgts := []string{"bzImage"}
	if modules {
		tgts = append(tgts, "modules")
	}
	how := "clean build"
	if res.From != "" {
		how = "incremental build from " + res.From + "'s copy"
	} else if res.Incremental {
		how = "incremental build"
	}
	st.phase("make", fmt.Sprintf("%s of %s in %s", how, strings.Join(tgts, " "), dir))
	args := append([]string{"-C", src.dir, "O=" + dir, fmt.Sprintf("-j%d", jobs)}, vars...)
	mr, err := runMake(ctx, src.dir, env, append(args, tgts...), src.dir, log, st)
	var warnings []Diagnostic
	res.Compiled, warnings, err = mr.inSeries(err, touched)
	res.Warnings = append(res.Warnings, warnings...)
	if err != nil {
		return nil, err
	}
	for _, w := range res.Warnings {
		st.note("warning in a patched file: " + w.String())
	}
	rel, err := os.ReadFile(filepath.Join(dir, "include", "config", "kernel.release"))
	if err != nil {
		return nil, fmt.Errorf("build: reading kernel release after make: %w", err)
	}
	res.Release = strings.TrimSpace(string(rel))

	if modules {
		st.phase("modules_install", "staging modules")
		staging := filepath.Join(dir, "staging")
		if err := os.RemoveAll(staging); err != nil {
			return nil, fmt.Errorf("build: clearing module staging: %w", err)
		}
		margs := append(append([]string{}, args...), "INSTALL_MOD_PATH="+staging, "DEPMOD="+depmodPath(), "modules_install")
		if _, err := runMake(ctx, src.dir, env, margs, src.dir, log, st); err != nil {
			return nil, err
		}
		res.ModulesDir = staging
	}
	for _, m := range req.ExternalModules {
		if !modules {
			return nil, badInput("build: external module tree %s needs CONFIG_MODULES=y in the final config", m)
		}
		er, err := buildExternal(ctx, m, src, res, &req, env, vars, jobs, log, st)
		if err != nil {
			return nil, err
		}
		res.External = append(res.External, *er)
	}
	res.Duration = time.Since(start)
	if err := os.WriteFile(filepath.Join(dir, completeMarker), []byte(seriesDigest(patches)+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("build: writing completion marker: %w", err)
	}
	st.phase("done", fmt.Sprintf("%s in %s (%d steps)", res.Release, res.Duration.Truncate(time.Second), res.Compiled))
	return res, nil
}

// CheckApply applies req's series (Series, then Patches) to a clean private
// tree of its source and resets the tree, building nothing: it tells in
// seconds whether the series applies. A patch that does not apply gives an
// *ApplyError, bad input an *InputError; the cache keeps only the
// prepared source tree.
func CheckApply(ctx context.Context, req Request) ([]PatchResult, error) {
	st := newStatus(req.Progress)
	defer st.done()
	tree, err := applyRequest(ctx, &req, st)
	if err != nil {
		return nil, err
	}
	defer tree.src.release()
	if err := tree.src.reset(ctx); err != nil {
		return nil, err
	}
	return tree.applied, nil
}

// appliedTree is a locked private source tree with a request's series
// applied.
type appliedTree struct {
	root    string // the cache root
	src     *source
	patches []Patch
	applied []PatchResult
}

// applyRequest checks req (bad input before anything is touched), reads
// its series, prepares the private source tree and applies the series to
// it. The caller releases tree.src.
func applyRequest(ctx context.Context, req *Request, st *status) (*appliedTree, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	root, err := cacheRoot(req)
	if err != nil {
		return nil, err
	}
	patches, err := readRequestSeries(ctx, req)
	if err != nil {
		return nil, err
	}
	src, err := prepareSource(ctx, root, req, st)
	if err != nil {
		return nil, err
	}
	applied, err := applySeries(src.lk.held(ctx), src, filepath.Join(root, "tmp"), patches, st)
	if err != nil {
		src.release()
		return nil, err
	}
	return &appliedTree{root: root, src: src, patches: patches, applied: applied}, nil
}

// checkRequest finds what makes req unworkable before anything is done:
// every such error is an *InputError.
func checkRequest(req *Request) error {
	if req.Source == "" {
		return badInput("build: no source given")
	}
	if _, err := os.Stat(req.Source); err != nil {
		return badInput("build: source: %w", err)
	}
	for _, c := range req.Configs {
		if _, err := kconfig.Load(c); err != nil {
			return badInput("build: config %q: %w", c, err)
		}
	}
	for _, m := range req.ExternalModules {
		if fi, err := os.Stat(m); err != nil || !fi.IsDir() {
			return badInput("build: external module tree %q is not a folder", m)
		}
	}
	return nil
}

// cacheRoot returns req's cache root (cache.Root when unset), absolute,
// with its tmp folder made.
func cacheRoot(req *Request) (string, error) {
	root := req.CacheDir
	if root == "" {
		var err error
		if root, err = cache.Root(); err != nil {
			return "", fmt.Errorf("build: %w", err)
		}
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("build: cache folder: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o755); err != nil {
		return "", fmt.Errorf("build: creating cache folder: %w", err)
	}
	return root, nil
}

func readRequestSeries(ctx context.Context, req *Request) ([]Patch, error) {
	patches, err := LoadSeries(ctx, req.Source, req.Series)
	if err != nil {
		return nil, err
	}
	patches = append(patches, req.Patches...)
	// A prefix of a series handed over as Patches keeps its numbers
	// ("patch 3/4"), so progress and errors name patches as the whole
	// series does; anything else is numbered as the list given.
	keep := req.Series == "" && len(patches) > 0
	for _, p := range patches {
		if p.Number < 1 || p.Number > p.Total {
			keep = false
		}
	}
	if !keep {
		for i := range patches {
			patches[i].Number, patches[i].Total = i+1, len(patches)
		}
	}
	return patches, nil
}

func seriesDigest(patches []Patch) string {
	var parts []string
	for _, p := range patches {
		parts = append(parts, string(p.Data))
	}
	return digest(parts...)
}

// makeEnv is the environment of every make: ccache's folder in the cache,
// and untranslated compiler messages (the kernel's Makefile unexports
// LC_ALL, so LC_MESSAGES it is).
func makeEnv(root string) []string {
	env := append(os.Environ(), "LC_MESSAGES=C")
	if _, err := exec.LookPath("ccache"); err == nil {
		env = append(env, "CCACHE_DIR="+filepath.Join(root, "ccache"))
	}
	return env
}

// makeVars are the variables every make gets, so that configs and objects
// agree: the architecture, the compiler (through ccache when installed),
// and fixed build identity strings.
func makeVars() []string {
	cc := "CC=gcc"
	if _, err := exec.LookPath("ccache"); err == nil {
		cc = "CC=ccache gcc"
	}
	return []string{"ARCH=x86_64", cc,
		"KBUILD_BUILD_USER=kregress", "KBUILD_BUILD_HOST=kregress"}
}

func depmodPath() string { return toolPath("depmod") }

// toolPath finds a program in PATH or, for kmod's tools that a user's PATH
// may lack, in /sbin and /usr/sbin.
func toolPath(name string) string {
	for _, p := range []string{name, "/sbin/" + name, "/usr/sbin/" + name} {
		if q, err := exec.LookPath(p); err == nil {
			return q
		}
	}
	return name
}

// configResult is the final config of a build.
type configResult struct {
	final    []byte
	config   kconfig.Config
	digest   string
	dropped  []kconfig.Dropped
	warnings []string
}

// makeConfig makes the base config in a scratch folder, merges the
// fragments on it, runs make olddefconfig, and checks what was dropped.
func makeConfig(ctx context.Context, root string, src *source, req *Request, env, vars []string, st *status) (*configResult, error) {
	scratch := filepath.Join(root, "kconfig", src.id)
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return nil, fmt.Errorf("build: creating config scratch folder: %w", err)
	}
	base := req.BaseConfig
	if base == "" {
		base = "tinyconfig"
	}
	args := append([]string{"-C", src.dir, "O=" + scratch}, vars...)
	dotConfig := filepath.Join(scratch, ".config")
	if fi, err := os.Stat(base); err == nil && !fi.IsDir() {
		data, err := os.ReadFile(base)
		if err != nil {
			return nil, fmt.Errorf("build: base config: %w", err)
		}
		if _, err := kconfig.ParseFragment(base, data); err != nil {
			return nil, badInput("build: base config: %w", err)
		}
		if err := os.WriteFile(dotConfig, data, 0o644); err != nil {
			return nil, fmt.Errorf("build: writing base config: %w", err)
		}
	} else {
		if !strings.HasSuffix(base, "config") || strings.ContainsAny(base, "/= ") {
			return nil, badInput("build: base config %q is neither a file nor a make *config target", base)
		}
		st.phase("config", "make "+base)
		if _, err := runMake(ctx, src.dir, env, append(args, base), "", nil, nil); err != nil {
			return nil, fmt.Errorf("build: base config %q: %w", base, err)
		}
	}
	baseData, err := os.ReadFile(dotConfig)
	if err != nil {
		return nil, fmt.Errorf("build: reading base config: %w", err)
	}
	var frags []*kconfig.Fragment
	for _, c := range req.Configs {
		f, err := kconfig.Load(c)
		if err != nil {
			return nil, err
		}
		frags = append(frags, f)
	}
	merged, requested := kconfig.Merge(baseData, frags...)
	if err := os.WriteFile(dotConfig, merged, 0o644); err != nil {
		return nil, fmt.Errorf("build: writing merged config: %w", err)
	}
	st.phase("config", "make olddefconfig ("+configLabel(base, req.Configs)+")")
	var out bytes.Buffer
	if _, err := runMake(ctx, src.dir, env, append(args, "olddefconfig"), "", &out, nil); err != nil {
		return nil, fmt.Errorf("build: make olddefconfig: %w\n%s", err, out.String())
	}
	res := &configResult{}
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(strings.ToLower(l), "warning") {
			res.warnings = append(res.warnings, strings.TrimSpace(l))
		}
	}
	if res.final, err = os.ReadFile(dotConfig); err != nil {
		return nil, fmt.Errorf("build: reading final config: %w", err)
	}
	if res.config, err = kconfig.ParseConfig(res.final); err != nil {
		return nil, fmt.Errorf("build: final config: %w", err)
	}
	res.digest = digest(string(res.final))
	res.dropped, err = kconfig.Check(res.config, requested, src.dir, "x86")
	if err != nil {
		return nil, err
	}
	return res, nil
}

// configLabel names a config for a person: the base and the fragments
// merged into it, "tinyconfig + lockdep"; the base alone without any.
func configLabel(base string, fragments []string) string {
	return strings.Join(append([]string{base}, fragments...), " + ")
}

package build

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kregress/kregress/internal/proc"

	"github.com/kregress/kregress/internal/cache"
)

// ExternalResult is one out-of-tree module tree built against the kernel.
type ExternalResult struct {
	// Tree is the user's module tree; Work is the private copy built.
	Tree string `json:"tree"`
	Work string `json:"work"`
	// Kind is "kbuild" or "autotools".
	Kind string `json:"kind"`
	// Modules are the installed .ko files, relative to
	// Result.ModulesDir/lib/modules/<release>/ as modules.dep names them.
	Modules []string `json:"modules"`
}

// buildExternal copies the module tree into the build folder (the user's
// tree gets no objects), builds it against the kernel, installs its .ko
// files under extra/ in the staging folder and reruns depmod.
func buildExternal(ctx context.Context, tree string, src *source, res *Result, req *Request, env, vars []string, jobs int, log io.Writer, st *status) (*ExternalResult, error) {
	abs, err := filepath.Abs(tree)
	if err != nil {
		return nil, fmt.Errorf("build: external module tree %s: %w", tree, err)
	}
	name := filepath.Base(abs) + "-" + digest(abs)[:8]
	work := filepath.Join(res.Dir, "ext", name)
	er := &ExternalResult{Tree: abs, Work: work, Kind: "kbuild"}
	if exists(filepath.Join(abs, "autogen.sh")) || exists(filepath.Join(abs, "configure.ac")) || exists(filepath.Join(abs, "configure")) {
		er.Kind = "autotools"
	}
	st.phase("external", fmt.Sprintf("copying %s", abs))
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("build: creating %s: %w", work, err)
	}
	// cp -a keeps the tree's times, so make rebuilds only what changed.
	if _, err := run(ctx, "", nil, "cp", "-a", abs+"/.", work+"/"); err != nil {
		return nil, fmt.Errorf("build: copying external module tree %s: %w", abs, err)
	}
	relDir := filepath.Join(res.ModulesDir, "lib", "modules", res.Release)
	extra := filepath.Join(relDir, "extra", name)
	kargs := append([]string{"-C", src.dir, "O=" + res.Dir, fmt.Sprintf("-j%d", jobs)}, vars...)
	switch er.Kind {
	case "kbuild":
		st.phase("external", "make M="+work)
		if _, err := runMake(ctx, src.dir, env, append(append([]string{}, kargs...), "M="+work, "modules"), work, log, st); err != nil {
			return nil, fmt.Errorf("build: external modules %s: %w", abs, err)
		}
	case "autotools":
		// The copy stays in the build folder, configured: configure runs
		// again only for another kernel configuration or other arguments,
		// and make builds the modules only, with PWD the copy (lustre's
		// Makefile builds M=$(PWD)).
		kt := KernelTree{Linux: src.dir, LinuxObj: res.Dir, Release: res.Release}
		creq := ClientRequest{Tree: abs, Kernel: kt, ConfigureArgs: req.ConfigureArgs}
		kid, err := kt.id()
		if err != nil {
			return nil, err
		}
		want := kid + "\n" + digest(req.ConfigureArgs...) + "\n"
		if have, _ := os.ReadFile(filepath.Join(work, clientMarker)); string(have) != want {
			os.Remove(filepath.Join(work, clientMarker))
			if err := configureClient(ctx, work, creq, "", clientEnv(work), log, st); err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(work, clientMarker), []byte(want), 0o644); err != nil {
				return nil, fmt.Errorf("build: writing %s: %w", clientMarker, err)
			}
		}
		st.phase("external", "make modules in "+work)
		if _, err := runMake(ctx, work, clientEnv(work), []string{fmt.Sprintf("-j%d", jobs), "modules"}, work, log, st); err != nil {
			return nil, fmt.Errorf("build: external modules %s: %w", abs, err)
		}
	}
	// What kbuild built (modules.order), not every .ko in the tree:
	// configure's probe modules (conftest.ko) are left out.
	kos, err := builtModules(work)
	if err != nil {
		return nil, fmt.Errorf("build: external module tree %s: %w", abs, err)
	}
	os.RemoveAll(extra)
	if err := os.MkdirAll(extra, 0o755); err != nil {
		return nil, fmt.Errorf("build: creating %s: %w", extra, err)
	}
	for _, ko := range kos {
		dst := filepath.Join(extra, filepath.Base(ko))
		if exists(dst) {
			return nil, fmt.Errorf("build: external module tree %s has two modules named %s", abs, filepath.Base(ko))
		}
		if _, err := run(ctx, "", nil, "cp", ko, dst); err != nil {
			return nil, fmt.Errorf("build: installing %s: %w", ko, err)
		}
		er.Modules = append(er.Modules, filepath.Join("extra", name, filepath.Base(ko)))
	}
	st.phase("external", "depmod")
	if _, err := run(ctx, "", nil, depmodPath(), "-b", res.ModulesDir, "-F", res.SystemMap, res.Release); err != nil {
		return nil, fmt.Errorf("build: depmod after installing %s: %w", abs, err)
	}
	return er, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// LoadOrder returns the modules to load, dependencies first, so that
// loading them in order with insmod works: modules.dep in modulesDir
// (lib/modules/<release>) is read and each wanted module (a path as
// modules.dep names it, or a module name like "crashmod") is preceded by
// what it depends on.
func LoadOrder(modulesDir string, wanted []string) ([]string, error) {
	f, err := os.Open(filepath.Join(modulesDir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("build: module load order: %w", err)
	}
	defer f.Close()
	deps := map[string][]string{}
	byName := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		byName[modName(mod)] = mod
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("build: reading modules.dep: %w", err)
	}
	var order []string
	seen := map[string]bool{}
	var visit func(m string)
	visit = func(m string) {
		if seen[m] {
			return
		}
		seen[m] = true
		// modules.dep lists every (transitive) dependency, nearest first;
		// load them deepest first.
		for i := len(deps[m]) - 1; i >= 0; i-- {
			visit(deps[m][i])
		}
		order = append(order, m)
	}
	for _, w := range wanted {
		m := w
		if _, ok := deps[m]; !ok {
			if m, ok = byName[strings.ReplaceAll(w, "-", "_")]; !ok {
				return nil, fmt.Errorf("build: module %q is not in %s/modules.dep", w, modulesDir)
			}
		}
		visit(m)
	}
	return order, nil
}

// modName is the module name of a modules.dep path: "kernel/fs/x-y.ko.xz"
// is "x_y".
func modName(p string) string {
	b := filepath.Base(p)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

// KernelTree is a kernel that out-of-tree modules build against: its
// source (configure's --with-linux) and its configured build folder
// holding .config and Module.symvers (--with-linux-obj, make's O=).
type KernelTree struct {
	Linux    string `json:"linux"`
	LinuxObj string `json:"linux_obj"`
	// Release is the kernel's release string (uname -r).
	Release string `json:"release"`
}

// DistroKernel returns the kernel tree of an installed distribution
// kernel: /lib/modules/<release>/build, the headers package's folder. When
// the headers are missing the error names the package to install.
func DistroKernel(release string) (KernelTree, error) {
	build := filepath.Join("/lib/modules", release, "build")
	obj, err := filepath.EvalSymlinks(build)
	if err == nil {
		if _, serr := os.Stat(filepath.Join(obj, "Module.symvers")); serr != nil {
			err = serr
		}
	}
	if err != nil {
		return KernelTree{}, fmt.Errorf("build: no headers for kernel %s (%s/Module.symvers: %v): install the package linux-headers-%s (apt-get install linux-headers-%s)", release, build, err, release, release)
	}
	return KernelTree{Linux: obj, LinuxObj: obj, Release: release}, nil
}

// id names the kernel in the client cache: its folders and its .config,
// so a kernel rebuilt with the same configuration (the next patch of a
// kernel series) keeps the configured client.
func (k KernelTree) id() (string, error) {
	cfg, err := os.ReadFile(filepath.Join(k.LinuxObj, ".config"))
	if err != nil {
		return "", fmt.Errorf("build: kernel build folder %s: %w", k.LinuxObj, err)
	}
	return digest(k.Linux, k.LinuxObj, k.Release, string(cfg))[:12], nil
}

// ClientRequest is an out-of-tree client tree (lustre-release) to build
// against a kernel, with a patch series applied to it.
type ClientRequest struct {
	// Tree is the client: a git checkout or a source tarball. It is never
	// changed: the build uses a private copy in the cache.
	Tree string
	// Base is the ref to build in a git checkout ("" means HEAD); it must
	// be "" for a tarball.
	Base string
	// Patches are applied to the client tree, in order.
	Patches []Patch
	// Kernel is the kernel to build against.
	Kernel KernelTree
	// ConfigureArgs are added to configure's arguments (after ClientConfigureArgs).
	ConfigureArgs []string
	// CacheDir is the cache root; "" means cache.Root().
	CacheDir string
	// Jobs is make's -j; 0 means the number of CPUs plus one.
	Jobs int
	// Progress receives a line per phase; nil prints nothing.
	Progress io.Writer
	// Log receives every line configure and make print (nil: only the
	// logs in the cache).
	Log io.Writer
}

// ClientConfigureArgs are the arguments kregress gives lustre-release's
// configure: a client-only build of the kernel modules, nothing else.
var ClientConfigureArgs = []string{
	"--disable-server", "--disable-tests", "--disable-utils", "--disable-doc",
	"--disable-manpages", "--disable-iokit", "--disable-gss", "--with-o2ib=no",
	"--disable-maintainer-mode",
}

// ClientResult is a built client tree.
type ClientResult struct {
	// Dir is the configured private copy that was built, in the cache:
	// one per (client base, kernel), patched in place.
	Dir string `json:"dir"`
	// Base is the client base: "sha256:..." of a tarball or a commit.
	Base   string     `json:"base"`
	Kernel KernelTree `json:"kernel"`
	// Configured is true when configure ran in this build (a cold build,
	// or a series that changes the build system); ConfigureSeconds is its
	// time, MakeSeconds that of make.
	Configured       bool    `json:"configured"`
	ConfigureSeconds float64 `json:"configure_seconds"`
	MakeSeconds      float64 `json:"make_seconds"`
	// Compiled counts the kbuild steps make ran.
	Compiled int `json:"compiled"`
	// Modules are every .ko the build made (absolute paths in Dir), as
	// modules.order lists them.
	Modules []string `json:"modules"`
	// Patches lists the series' patches and what became of each.
	Patches []PatchResult `json:"patches,omitempty"`
	// Warnings are compiler warnings in files the series touches.
	Warnings []Diagnostic `json:"warnings,omitempty"`
	// Log is the log of this build's configure and make output.
	Log string `json:"log"`
}

// ConfigureError is a client tree whose configure failed against the
// kernel. Reason is configure's own error from config.log.
type ConfigureError struct {
	Tree, Kernel string
	Reason       string
	Log          string // config.log
	Err          error
}

func (e *ConfigureError) Error() string {
	return fmt.Sprintf("build: client tree %s does not configure against kernel %s: %s (see %s)", e.Tree, e.Kernel, e.Reason, e.Log)
}

func (e *ConfigureError) Unwrap() error { return e.Err }

// configureReason returns configure's error from config.log: the last
// "configure:NNN: error: ..." line and the lines that continue it.
func configureReason(configLog []byte) string {
	lines := strings.Split(string(configLog), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		_, msg, ok := strings.Cut(lines[i], ": error: ")
		if !ok || !strings.HasPrefix(lines[i], "configure:") {
			continue
		}
		// Lustre's messages often start on the next line, after blank ones.
		var parts []string
		if m := strings.TrimSpace(msg); m != "" {
			parts = append(parts, m)
		}
		for _, l := range lines[i+1:] {
			l = strings.TrimSpace(l)
			if strings.HasPrefix(l, "##") || strings.HasPrefix(l, "configure:") || (l == "" && len(parts) > 0) {
				break
			}
			if l != "" {
				parts = append(parts, l)
			}
		}
		return strings.Join(parts, " ")
	}
	return ""
}

// clientMarker, in a configured client copy, holds the configuration it
// was configured with: the kernel and the series' build-system changes.
const clientMarker = ".kregress-configured"

// BuildClient builds the client tree's kernel modules against the kernel
// with the patches applied. The private copy is kept configured in the
// cache per (client base, kernel): configure runs once, and each later
// build (the next patch of a series) is an incremental make of the modules.
// A patch that does not apply gives an *ApplyError, configure failing a
// *ConfigureError, make failing a *CompileError.
func BuildClient(ctx context.Context, req ClientRequest) (*ClientResult, error) {
	st := newStatus(req.Progress)
	defer st.done()
	jobs := req.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU() + 1
	}
	src, applied, err := applyClient(ctx, &req, st)
	if err != nil {
		return nil, err
	}
	defer src.release()
	res := &ClientResult{Dir: src.dir, Base: src.baseID, Kernel: req.Kernel, Log: filepath.Join(src.dir, "kregress-build.log"), Patches: applied}
	touched := map[string]bool{}
	var buildSys []string
	for _, p := range applied {
		if p.Status != Applied {
			continue
		}
		for _, f := range p.Files {
			touched[f] = true
			if changesBuildSystem(f) {
				buildSys = append(buildSys, f)
			}
		}
	}
	logf, err := os.Create(res.Log)
	if err != nil {
		return nil, fmt.Errorf("build: creating client build log: %w", err)
	}
	defer logf.Close()
	var log io.Writer = logf
	if req.Log != nil {
		log = io.MultiWriter(logf, req.Log)
	}
	env := clientEnv(src.dir)

	// Configure once per (base, kernel, build-system changes of the series).
	kid, err := req.Kernel.id()
	if err != nil {
		return nil, err
	}
	bsys := digest(seriesBuildSystem(req.Patches, buildSys)...)
	want := kid + "\n" + digest(req.ConfigureArgs...) + "\n" + bsys + "\n"
	have, _ := os.ReadFile(filepath.Join(src.dir, clientMarker))
	if string(have) != want {
		os.Remove(filepath.Join(src.dir, clientMarker))
		t0 := time.Now()
		if err := configureClient(ctx, src.dir, req, bsys, env, log, st); err != nil {
			return nil, err
		}
		res.Configured = true
		res.ConfigureSeconds = time.Since(t0).Seconds()
		if err := os.WriteFile(filepath.Join(src.dir, clientMarker), []byte(want), 0o644); err != nil {
			return nil, fmt.Errorf("build: writing %s: %w", clientMarker, err)
		}
	}
	how := "incremental make"
	if res.Configured {
		how = "make"
	}
	st.phase("client", fmt.Sprintf("%s modules in %s", how, src.dir))
	t0 := time.Now()
	mr, err := runMake(ctx, src.dir, env, []string{fmt.Sprintf("-j%d", jobs), "modules"}, src.dir, log, st)
	res.MakeSeconds = time.Since(t0).Seconds()
	var warnings []Diagnostic
	res.Compiled, warnings, err = mr.inSeries(err, touched)
	res.Warnings = append(res.Warnings, warnings...)
	if err != nil {
		return nil, err
	}
	if res.Modules, err = builtModules(src.dir); err != nil {
		return nil, err
	}
	st.phase("client", fmt.Sprintf("%d modules built (configure %.0fs, make %.0fs, %d steps)", len(res.Modules), res.ConfigureSeconds, res.MakeSeconds, res.Compiled))
	return res, nil
}

// CheckClientApply tells whether req's patches apply to the client tree,
// building nothing (an *ApplyError when one does not); the copy is left at
// its base.
func CheckClientApply(ctx context.Context, req ClientRequest) error {
	st := newStatus(req.Progress)
	defer st.done()
	src, _, err := applyClient(ctx, &req, st)
	if err != nil {
		return err
	}
	defer src.release()
	return src.reset(ctx)
}

// applyClient checks req, prepares the locked private copy of the client
// tree for its kernel and applies the patches. The caller releases the
// copy. Bad input (no such tree, a base with a tarball, a kernel folder
// without .config) is an *InputError.
func applyClient(ctx context.Context, req *ClientRequest, st *status) (*source, []PatchResult, error) {
	fi, err := os.Stat(req.Tree)
	if err != nil {
		return nil, nil, badInput("build: client tree: %w", err)
	}
	if !fi.IsDir() && req.Base != "" {
		return nil, nil, badInput("build: client base %q given with tarball %s: a tarball is its own base", req.Base, req.Tree)
	}
	kid, err := req.Kernel.id()
	if err != nil {
		return nil, nil, &InputError{Err: err}
	}
	root := req.CacheDir
	if root == "" {
		if root, err = cache.Root(); err != nil {
			return nil, nil, fmt.Errorf("build: %w", err)
		}
	}
	if root, err = filepath.Abs(root); err != nil {
		return nil, nil, fmt.Errorf("build: cache folder: %w", err)
	}
	for _, d := range []string{"client", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, nil, fmt.Errorf("build: creating cache folder: %w", err)
		}
	}
	src, err := prepareClient(ctx, root, req.Tree, req.Base, kid, st)
	if err != nil {
		return nil, nil, err
	}
	applied, err := applySeries(ctx, src, filepath.Join(root, "tmp"), req.Patches, st)
	if err != nil {
		src.release()
		return nil, nil, err
	}
	return src, applied, nil
}

// clientEnv is the environment of configure and make in the client copy:
// PWD is the copy, because lustre-release's Makefile builds M=$(PWD) and
// make takes PWD from its caller's environment, not from its folder.
func clientEnv(dir string) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PWD=") {
			env = append(env, e)
		}
	}
	return append(env, "PWD="+dir, "LC_ALL=C")
}

// changesBuildSystem says whether a patched file is an input of autogen.sh
// or configure, so that the series needs its own configure run.
func changesBuildSystem(f string) bool {
	b := filepath.Base(f)
	return strings.HasSuffix(b, ".m4") || strings.HasSuffix(b, ".ac") || strings.HasSuffix(b, ".am") ||
		strings.HasSuffix(b, ".in") || strings.HasPrefix(b, "autoMakefile") || b == "autogen.sh" || b == "LUSTRE-VERSION-GEN"
}

// seriesBuildSystem is what the configured copy depends on in the series:
// the patches that change build-system files.
func seriesBuildSystem(patches []Patch, files []string) []string {
	if len(files) == 0 {
		return nil
	}
	var out []string
	for _, p := range patches {
		for _, f := range p.Files {
			if changesBuildSystem(f) {
				out = append(out, string(p.Data))
				break
			}
		}
	}
	return out
}

// configureClient runs autogen.sh (when there is no configure script) and
// configure in the copy; a failure is a *ConfigureError quoting config.log.
func configureClient(ctx context.Context, dir string, req ClientRequest, buildSys string, env []string, log io.Writer, st *status) error {
	// autogen.sh again when the series' build-system changes differ from
	// those it last ran with.
	am := filepath.Join(dir, clientMarker+".autogen")
	last, aerr := os.ReadFile(am)
	if !exists(filepath.Join(dir, "configure")) || aerr != nil || string(last) != buildSys {
		os.Remove(am)
		st.phase("client", "sh autogen.sh in "+dir)
		if err := runLogged(ctx, dir, env, log, "sh", "autogen.sh"); err != nil {
			return fmt.Errorf("build: client tree %s: autogen.sh: %w", req.Tree, err)
		}
		if err := os.WriteFile(am, []byte(buildSys), 0o644); err != nil {
			return fmt.Errorf("build: writing %s: %w", am, err)
		}
	}
	args := append([]string{"./configure", "--with-linux=" + req.Kernel.Linux, "--with-linux-obj=" + req.Kernel.LinuxObj}, ClientConfigureArgs...)
	args = append(args, req.ConfigureArgs...)
	st.phase("client", fmt.Sprintf("configure against %s (%s)", req.Kernel.Release, req.Kernel.LinuxObj))
	if err := runLogged(ctx, dir, env, log, args...); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("build: configuring client tree %s: %w", req.Tree, ended(ctx))
		}
		cl := filepath.Join(dir, "config.log")
		data, _ := os.ReadFile(cl)
		reason := configureReason(data)
		if reason == "" {
			reason = err.Error()
		}
		return &ConfigureError{Tree: req.Tree, Kernel: req.Kernel.Release, Reason: reason, Log: cl, Err: err}
	}
	return nil
}

// runLogged runs a command in dir with its output in log; it and all it
// started die when ctx ends or kregress dies (package proc).
func runLogged(ctx context.Context, dir string, env []string, log io.Writer, args ...string) error {
	cmd := proc.Command(ctx, args[0], args[1:]...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// builtModules lists the .ko files the last make built, from the
// modules.order kbuild writes in the copy: configure's probe modules
// (conftest.ko and the like) are not in it.
func builtModules(dir string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "modules.order"))
	if err != nil {
		return nil, fmt.Errorf("build: client modules: %w", err)
	}
	var kos []string
	seen := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimPrefix(strings.TrimSpace(l), "kernel/")
		if l == "" {
			continue
		}
		if strings.HasSuffix(l, ".o") {
			l = strings.TrimSuffix(l, ".o") + ".ko"
		}
		// kbuild writes absolute paths for M= builds, relative ones for
		// in-tree builds.
		p := l
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, l)
		}
		if !exists(p) {
			return nil, fmt.Errorf("build: client module %s is in modules.order but was not built", l)
		}
		name := filepath.Base(p)
		if seen[name] {
			return nil, fmt.Errorf("build: client tree %s built two modules named %s", dir, name)
		}
		seen[name] = true
		kos = append(kos, p)
	}
	if len(kos) == 0 {
		return nil, fmt.Errorf("build: client tree %s built no modules (modules.order is empty)", dir)
	}
	return kos, nil
}

// prepareClient returns the locked private copy of the client tree for
// the kernel kid, at its base with no patch applied: a tarball extracted
// and committed to a private repository, or a git worktree of the user's
// checkout at the base commit. The copy is never cleaned: what configure
// and make left in it is what makes the next build incremental.
func prepareClient(ctx context.Context, root, tree, base, kid string, st *status) (*source, error) {
	abs, err := filepath.Abs(tree)
	if err != nil {
		return nil, fmt.Errorf("build: client tree %s: %w", tree, err)
	}
	s := &source{keep: true}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		common, err := run(ctx, abs, nil, "git", "rev-parse", "--path-format=absolute", "--git-common-dir")
		if err != nil {
			return nil, badInput("build: client tree %s is neither a tarball nor a git checkout: %w", abs, err)
		}
		if base == "" {
			base = "HEAD"
		}
		if strings.HasPrefix(base, "-") {
			return nil, badInput("build: bad client base ref %q", base)
		}
		commit, err := run(ctx, abs, nil, "git", "rev-parse", "--verify", "--quiet", base+"^{commit}")
		if err != nil {
			return nil, badInput("build: client base %q is not a commit in %s", base, abs)
		}
		s.base = strings.TrimSpace(commit)
		s.baseID, s.repo = s.base, abs
		s.id = "git-" + digest(strings.TrimSpace(common))[:12] + "-" + s.base[:12] + "-" + kid
		s.dir = filepath.Join(root, "client", s.id)
		if s.lk, err = lock(ctx, s.dir+".lock", st); err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(s.dir, ".git", completeMarker)); err != nil {
			st.phase("client", "creating a private clone of "+abs)
			if err := cloneShared(ctx, abs, s.dir); err != nil {
				s.lk.unlock()
				return nil, err
			}
		}
	} else {
		st.phase("client", "hashing "+filepath.Base(abs))
		sum, err := fileDigest(abs)
		if err != nil {
			return nil, fmt.Errorf("build: client tarball: %w", err)
		}
		s.baseID = "sha256:" + sum
		s.id = "tar-" + sum[:16] + "-" + kid
		s.dir = filepath.Join(root, "client", s.id)
		if s.lk, err = lock(ctx, s.dir+".lock", st); err != nil {
			return nil, err
		}
		marker := filepath.Join(s.dir, ".git", completeMarker)
		if _, err := os.Stat(marker); err != nil {
			if err := extractTarball(ctx, abs, sum, s.dir, false, st); err != nil {
				s.lk.unlock()
				return nil, err
			}
		}
		data, err := os.ReadFile(marker)
		if err != nil {
			s.lk.unlock()
			return nil, fmt.Errorf("build: extracted %s but its marker is missing: %w", abs, err)
		}
		s.base = strings.TrimSpace(string(data))
	}
	if err := s.reset(ctx); err != nil {
		s.lk.unlock()
		return nil, err
	}
	if !exists(filepath.Join(s.dir, "autogen.sh")) && !exists(filepath.Join(s.dir, "configure")) {
		s.lk.unlock()
		return nil, badInput("build: client tree %s is not an autotools tree like lustre-release (no autogen.sh or configure at its top)", abs)
	}
	return s, nil
}

package job

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/images"
	"github.com/kregress/kregress/lustre/server"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/triage/symbolize"
	"github.com/kregress/kregress/suites"
)

// DefaultLustreTree is the namespace the simulated server serves when the
// job names none: the shipped lustre-sanity suite expects its names
// (d0000.., f000000..).
const DefaultLustreTree = "dirs=4,files=16"

// guestHostAddr is the host as a guest under QEMU user networking sees it.
const guestHostAddr = "10.0.2.2"

// startLustre starts the simulated server on a free loopback port and
// adds the client modules, with lnet told that port, to the image.
func (r *run) startLustre(ctx context.Context, img *images.Spec) error {
	ls := r.spec.Lustre
	if len(ls.Modules) == 0 {
		return errors.New("the lustre target needs the Lustre client modules for this kernel (kregress test/run --client TREE, or kregress run --lustre-modules DIR)")
	}
	mods, err := ClientModules(ls.Modules)
	if err != nil {
		return err
	}
	if ls.SourceRoot == "" {
		// Modules a step kept (InstallClient) say where they were built.
		if data, err := os.ReadFile(filepath.Join(filepath.Dir(mods[0]), sourceRootFile)); err == nil {
			r.spec.Lustre.SourceRoot = strings.TrimSpace(string(data))
		}
	}
	var sym *symbolize.Symbolizer
	if r.spec.Symbolizer == nil {
		// Resolve the client's frames from the modules' DWARF even when
		// the kernel has no symbolizer (a distribution kernel).
		var dirs []string
		seen := map[string]bool{}
		for _, m := range mods {
			if d := filepath.Dir(m); !seen[d] {
				seen[d] = true
				dirs = append(dirs, d)
			}
		}
		if s, err := symbolize.New("", dirs...); err == nil {
			r.spec.Symbolizer = s
			sym = s
		}
	}
	fsname := ls.FSName
	if fsname == "" {
		fsname = "testfs"
	}
	rpcLog, err := os.Create(r.dir.File("lustre-rpcs.log"))
	if err != nil {
		return err
	}
	srvLog, err := os.Create(r.dir.File("lustre-server.log"))
	if err != nil {
		rpcLog.Close()
		return err
	}
	// The user's tree, else the one the suite expects, else the default.
	gen := ls.Generate
	if gen == "" && ls.TreeFile == "" {
		gen = r.spec.Suite.LustreTree
	}
	if gen == "" && ls.TreeFile == "" {
		gen = DefaultLustreTree
	}
	srv, err := server.Start(ctx, server.Config{
		Listen: "127.0.0.1:0", FSName: fsname, TreeFile: ls.TreeFile, Generate: gen,
		FaultsFile: ls.FaultsFile, LogRPCs: rpcLog, Log: srvLog, OSTs: 1,
	})
	if err != nil {
		rpcLog.Close()
		srvLog.Close()
		return fmt.Errorf("start the simulated Lustre server: %w", err)
	}
	r.lustre = &lustreRun{Server: srv, fsname: fsname, logs: []*os.File{rpcLog, srvLog}, sym: sym}
	port := srv.Addr().(*net.TCPAddr).Port
	r.spec.Progress("lustre: simulated server %s on 127.0.0.1:%d (guest: %s@tcp:/%s)", fsname, port, guestHostAddr, fsname)
	img.ExtraModules = append(img.ExtraModules, mods...)
	if img.ModuleParams == nil {
		img.ModuleParams = map[string]string{}
	}
	// Current clients open their bulk connections to accept_port_bulk, a
	// separate setting; older ones ignore the unknown parameter.
	img.ModuleParams["lnet"] = fmt.Sprintf("networks=tcp0(eth0) accept_port=%d accept_port_bulk=%d", port, port)
	return nil
}

// lustreMount is the guest command that mounts the simulated server.
func (r *run) lustreMount() string {
	dev := fmt.Sprintf("%s@tcp:/%s", guestHostAddr, r.lustre.fsname)
	return fmt.Sprintf("mkdir -p %s && mount -t lustre -o device=%s %s %s", suites.Mount, dev, dev, suites.Mount)
}

// lustreRun is a running simulated server and its log files.
type lustreRun struct {
	*server.Server
	fsname string
	logs   []*os.File
	// sym is the symbolizer made for the client modules, if any.
	sym *symbolize.Symbolizer
}

// Close stops the server and closes its logs.
func (l *lustreRun) Close() error {
	err := l.Server.Close()
	for _, f := range l.logs {
		f.Close()
	}
	if l.sym != nil {
		l.sym.Close()
	}
	return err
}

// ClientSpec is a Lustre client tree (lustre-release) that a series test
// builds against every step's kernel and loads for lustre-target suites.
type ClientSpec struct {
	// Tree is a lustre-release git checkout or source tarball.
	Tree string
	// Base is the ref to build in a git checkout ("" means HEAD).
	Base string
	// ConfigureArgs are added to configure's arguments.
	ConfigureArgs []string
}

// mountModules are the modules a client mount needs that nothing declares
// a dependency on: lustre requests the LND, the MGC and the metadata and
// data stacks by name at mount time.
var mountModules = []string{"lustre", "mgc", "lmv", "mdc", "lov", "osc", "ksocklnd"}

// ClientModules returns the modules among kos that a client mount needs:
// mountModules and what their .modinfo says they depend on, in kos's
// order. Test and tool modules (obdecho, lnet_selftest, llog_test, ...)
// are left out. It fails when one of mountModules is missing.
func ClientModules(kos []string) ([]string, error) {
	byName := map[string]string{}
	for _, ko := range kos {
		byName[moduleName(ko)] = ko
	}
	need := map[string]bool{}
	var visit func(n string) error
	visit = func(n string) error {
		if need[n] {
			return nil
		}
		ko, ok := byName[n]
		if !ok {
			return nil // a kernel module; images resolves it
		}
		need[n] = true
		deps, err := images.ModuleDepends(ko)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		return nil
	}
	var absent []string
	for _, m := range mountModules {
		if _, ok := byName[m]; !ok {
			absent = append(absent, m+".ko")
			continue
		}
		if err := visit(m); err != nil {
			return nil, err
		}
	}
	if len(absent) > 0 {
		return nil, fmt.Errorf("the Lustre client modules lack %s (a client mount needs %s)", strings.Join(absent, ", "), strings.Join(mountModules, ", "))
	}
	var out []string
	for _, ko := range kos {
		if need[moduleName(ko)] {
			out = append(out, ko)
		}
	}
	return out, nil
}

// MountsLustre says whether any of the suites mounts Lustre.
func MountsLustre(ss []*suites.Suite) bool {
	for _, s := range ss {
		if s.Target == suites.TargetLustre {
			return true
		}
	}
	return false
}

// sourceRootFile, in a folder of client modules InstallClient made, names
// the client tree they were built in, so that a later run with
// --lustre-modules cuts it from their source paths too.
const sourceRootFile = ".kregress-source-root"

// InstallClient copies the modules a client mount needs from a client
// build into dir (made afresh), so that a step keeps the modules it ran
// with after the cached copy moves on to the next patch, and returns their
// paths there.
func InstallClient(cr *build.ClientResult, dir string) ([]string, error) {
	need, err := ClientModules(cr.Modules)
	if err != nil {
		return nil, err
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var out []string
	for _, ko := range need {
		dst := filepath.Join(dir, filepath.Base(ko))
		if err := results.CopyFile(ko, dst); err != nil {
			return nil, fmt.Errorf("install client module %s: %w", ko, err)
		}
		out = append(out, dst)
	}
	if err := os.WriteFile(filepath.Join(dir, sourceRootFile), []byte(cr.Dir+"\n"), 0o644); err != nil {
		return nil, err
	}
	return out, nil
}

// stepKernel is the kernel a series step boots: one kregress built (br)
// or a distribution kernel (keep, br nil), and the tree the client builds
// against.
type stepKernel struct {
	br   *build.Result
	tree build.KernelTree
	// keep is the kernel file the step boots when it is not copied into
	// the step's folder: the distribution kernel, or the base's copy of
	// a kernel built once for a client series (shared).
	keep   string
	shared bool
}

// keepAt copies the built kernel to dst, unless the kernel is kept
// elsewhere; a shared kernel is kept at its first copy from then on.
func (k *stepKernel) keepAt(dst string) error {
	if k.keep != "" {
		return nil
	}
	if err := results.CopyFile(k.br.BzImage, dst); err != nil {
		return err
	}
	if k.shared {
		k.keep = dst
	}
	return nil
}

// stepClient is the client a step built, and the modules a mount needs,
// kept in the step's folder.
type stepClient struct {
	res     *build.ClientResult
	dir     string
	modules []string
}

// note records the client build in the step; for a client series it is
// the step's build.
func (c *stepClient) note(st *results.Step, series bool) {
	if c == nil {
		return
	}
	st.ClientModules, st.ClientConfigured = c.dir, c.res.Configured
	if series {
		st.BuildKey, st.Incremental, st.Compiled = filepath.Base(c.res.Dir), !c.res.Configured, c.res.Compiled
		for _, w := range c.res.Warnings {
			st.Warnings = append(st.Warnings, w.String())
		}
	}
}

// ClientBuilder is an Executor that builds client trees too; with an
// Executor that is not one, TestSeries builds them on this machine.
type ClientBuilder interface {
	BuildClient(ctx context.Context, req build.ClientRequest) (*build.ClientResult, error)
}

// BuildClient calls build.BuildClient.
func (Local) BuildClient(ctx context.Context, req build.ClientRequest) (*build.ClientResult, error) {
	return build.BuildClient(ctx, req)
}

// checkClientSpec rejects client settings that cannot work together.
func checkClientSpec(spec SeriesSpec) error {
	var err error
	switch {
	case spec.ClientSeries && spec.Client == nil:
		err = errors.New("a client series needs the client tree (--client TREE)")
	case spec.Kernel != "" && spec.Build.Source != "":
		err = errors.New("give a distribution kernel (--kernel) or a kernel source (--source), not both")
	case spec.Kernel != "" && !spec.ClientSeries:
		err = errors.New("with a distribution kernel (--kernel) the series must target the client tree (--client-series)")
	case spec.Kernel == "" && spec.Build.Source == "":
		err = errors.New("no kernel: give --source (a kernel to build) or --kernel (a distribution kernel)")
	case spec.Client != nil && !MountsLustre(spec.Suites):
		err = fmt.Errorf("the client tree %s is given but no suite mounts Lustre (target: lustre)", spec.Client.Tree)
	}
	if err != nil {
		return &build.InputError{Err: err}
	}
	return nil
}

// distroKernel is the kernel tree of a distribution kernel's bzImage,
// from its installed headers; missing headers are bad input.
func distroKernel(bzImage string) (build.KernelTree, error) {
	rel, err := images.KernelRelease(bzImage)
	if err != nil {
		return build.KernelTree{}, &build.InputError{Err: err}
	}
	kt, err := build.DistroKernel(rel)
	if err != nil {
		return kt, &build.InputError{Err: err}
	}
	return kt, nil
}

// checkApply checks, building nothing, that the whole series applies to
// its tree. A client series on a kernel kregress builds is checked by
// its steps: the client copy belongs to a kernel not built yet.
func (t *seriesTester) checkApply(ctx context.Context) error {
	if !t.spec.ClientSeries {
		return t.spec.Executor.CheckApply(ctx, t.request(len(t.patches)))
	}
	if t.spec.Kernel == "" {
		return nil
	}
	kt, err := distroKernel(t.spec.Kernel)
	if err != nil {
		return err
	}
	c := t.spec.Client
	return build.CheckClientApply(ctx, build.ClientRequest{Tree: c.Tree, Base: c.Base, Patches: t.patches, Kernel: kt})
}

// otherTree is the error of a series whose first patch does not apply: it
// names the tree it was applied to and, when the patch's file is not in
// that tree, says how to give the series for the other one.
func (t *seriesTester) otherTree(ae *build.ApplyError, err error) error {
	target, tree, other := "kernel", t.spec.Build.Source, "if it is a Lustre client series, give it with --client-series and the client tree with --client"
	if t.spec.ClientSeries {
		target, tree, other = "client", t.spec.Client.Tree, "if it is a kernel series, give it with --series and the kernel with --source"
	}
	msg := fmt.Errorf("series %s does not apply to the %s tree %s from its first patch (is it meant for another tree?): %w", t.spec.Build.Series, target, tree, err)
	if ae.File != "" && (strings.Contains(ae.Detail, "No such file") || strings.Contains(ae.Detail, "does not exist in index")) {
		msg = fmt.Errorf("%w; %s is not in the %s tree: %s", msg, ae.File, target, other)
	}
	return msg
}

// kernel returns the kernel of step k: the distribution kernel, the kernel
// built once for a client series, or the kernel with the series' first k
// patches.
func (t *seriesTester) kernel(ctx context.Context, k int) (*stepKernel, error) {
	if t.kern != nil {
		return t.kern, nil
	}
	if t.spec.Kernel != "" {
		kt, err := distroKernel(t.spec.Kernel)
		if err != nil {
			return nil, err
		}
		t.kern = &stepKernel{keep: t.spec.Kernel, tree: kt}
		return t.kern, nil
	}
	br, err := t.spec.Executor.Build(ctx, t.request(k))
	if err != nil {
		return nil, err
	}
	kern := &stepKernel{br: br, tree: build.KernelTree{Linux: br.Source, LinuxObj: br.Dir, Release: br.Release}, shared: t.spec.ClientSeries}
	if t.spec.ClientSeries {
		t.kern = kern
	}
	return kern, nil
}

// buildClient builds the client tree against the step's kernel (with the
// series' first k patches when the series targets the client) and keeps
// the modules a mount needs in the step's folder.
func (t *seriesTester) buildClient(ctx context.Context, k int, kern *stepKernel, stepDir string) (*stepClient, error) {
	c := t.spec.Client
	req := build.ClientRequest{Tree: c.Tree, Base: c.Base, ConfigureArgs: c.ConfigureArgs, Kernel: kern.tree,
		Progress: progressLines{t.spec.Progress}}
	if t.spec.ClientSeries {
		req.Patches = append([]build.Patch(nil), t.patches[:k]...)
	}
	builder, ok := t.spec.Executor.(ClientBuilder)
	if !ok {
		builder = Local{}
	}
	cr, err := builder.BuildClient(ctx, req)
	if err != nil {
		return nil, err
	}
	sc := &stepClient{res: cr, dir: filepath.Join(stepDir, "lustre-modules")}
	if sc.modules, err = InstallClient(cr, sc.dir); err != nil {
		return nil, err
	}
	return sc, nil
}

// useKernel points the spec at the step's kernel (UseBuild for one
// kregress built; the distribution kernel needs nothing more) and client:
// its modules for lustre-target suites, and a symbolizer that reads their
// DWARF too. The returned function closes the symbolizer.
func (s *Spec) useKernel(k *stepKernel, c *stepClient) (closeSymbolizer func()) {
	closeSym := func() {}
	if k.br != nil {
		closeSym = s.UseBuild(k.br)
	}
	if c == nil {
		return closeSym
	}
	closeSym()
	s.Lustre.Modules, s.Lustre.SourceRoot = c.modules, c.res.Dir
	var vmlinux string
	var dirs []string
	if k.br != nil {
		vmlinux = k.br.Vmlinux
		if s.ModulesDir != "" {
			dirs = append(dirs, s.ModulesDir)
		}
	}
	s.Symbolizer = nil
	if sym, err := symbolize.New(vmlinux, append(dirs, c.dir)...); err == nil {
		s.Symbolizer = sym
		return func() { sym.Close() }
	}
	return func() {}
}

// progressLines turns the client build's progress lines into Progress calls.
type progressLines struct {
	f func(format string, args ...any)
}

func (p progressLines) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimSpace(strings.ReplaceAll(string(b), "\r", "\n")), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "\x1b") {
			p.f("%s", l)
		}
	}
	return len(b), nil
}

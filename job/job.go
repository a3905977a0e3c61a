// Package job runs one kregress job end to end: it builds the guest image,
// boots the kernel with the runner, prepares the suite's target filesystem,
// runs the suite's tests over SSH, and writes the run directory (result.json,
// console.log, one output file per test). It is the only package that knows
// all the others; cmd/kregress turns flags into a Spec and calls Run.
package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kregress/kregress/agent/protocol"

	"github.com/kregress/kregress/images"
	"github.com/kregress/kregress/internal/cache"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/triage"
	"github.com/kregress/kregress/results/triage/symbolize"
	"github.com/kregress/kregress/runner"
	"github.com/kregress/kregress/runner/qemu"
	"github.com/kregress/kregress/suites"
)

// Spec is one run: a kernel, a suite, and where results go.
type Spec struct {
	Kernel string // bzImage
	// ModulesDir is the kernel's module tree; "" means /lib/modules/<release>
	// when it exists (a distribution kernel), else none.
	ModulesDir string
	// Modules are loaded at boot in addition to those networking needs.
	Modules []string
	// ExtraModules are out-of-tree .ko files packed and loaded at boot.
	ExtraModules []string
	InitrdExtra  string // a host tree copied into the guest's root
	Suite        *suites.Suite
	Out          string // root of run directories
	Append       string // extra kernel command line
	Accel        string // "", kvm, tcg
	Boot         string // "", auto, bzimage: see runner.Config.Boot
	MemoryMB     int
	CPUs         int
	BootTimeout  time.Duration
	// NoOutputTimeout ends the run when the console is silent this long
	// while nothing else shows progress (default 0: none).
	NoOutputTimeout time.Duration
	CacheDir        string
	// Label names the run directory (default: the suite's name).
	Label string
	// Progress receives one line per step (nil: none).
	Progress func(format string, args ...any)
	// OnLine receives every console line (nil: none).
	OnLine func(runner.Line)
	// Symbolizer, if set, turns crash stack frames into file:line.
	Symbolizer *symbolize.Symbolizer
	// SourceRoot is the kernel tree the Symbolizer's binaries were built
	// from; it is cut from source paths so they read fs/namei.c:1698.
	SourceRoot string
	// Lustre configures the simulated server for suites whose target is
	// lustre.
	Lustre LustreSpec
	// Backend boots the machine (nil: QEMU on this host).
	Backend runner.Backend
}

// LustreSpec is what a lustre-target run needs: the client's modules for
// the guest kernel and the namespace the simulated server serves.
type LustreSpec struct {
	// Modules are the Lustre client's .ko files (libcfs, lnet, ksocklnd,
	// obdclass, ptlrpc, ..., lustre), built for the guest kernel; they are
	// loaded in .modinfo dependency order.
	Modules []string
	// FSName is the filesystem name; default "testfs".
	FSName string
	// TreeFile (YAML) or Generate ("dirs=10,files=100") builds the
	// namespace; neither gives an empty root.
	TreeFile string
	Generate string
	// FaultsFile holds initial fault rules (YAML).
	FaultsFile string
	// SourceRoot is the client tree the modules were built in; it is cut
	// from their source paths so they read lustre/llite/namei.c:NNN.
	SourceRoot string
}

// guestLink decides how the host reaches the guest agent and which modules
// that takes, for a kernel whose module tree is modDir ("" when it has
// none: everything it has is built in) and a suite that does or does not
// need a network. The agent is reached over a virtio-serial port when the
// kernel has virtio_console (as module or built in); then the guest gets a
// NIC only when the suite needs one, and a suite without has no network at
// all. Otherwise, and for a kernel without a module tree (nothing says
// what is built in), over SSH on the NIC, as virtio_net.
//
// The serial port is also the faster way: no NIC driver to load and set
// up, and no TCP/IP on either side of each command (runner/NOTES.md).
func guestLink(modDir string, network bool) (modules []string, serial bool) {
	if modDir == "" {
		return nil, false
	}
	modules = []string{"virtio_pci"}
	if _, err := images.ResolveModules(modDir, []string{"virtio_console"}); err == nil {
		modules, serial = append(modules, "virtio_console"), true
	}
	if network || !serial {
		modules = append(modules, "virtio_net")
	}
	return modules, serial
}

// Run performs the job and returns its result and run directory. The
// error is non-nil only when no run directory could be made; everything
// else (a crash, a boot failure) is in the result.
func Run(ctx context.Context, spec Spec) (*results.Result, string, error) {
	if spec.Suite == nil {
		return nil, "", suites.ErrNoSuite
	}
	if err := spec.check(); err != nil {
		return nil, "", err
	}
	if spec.CacheDir == "" {
		root, err := cache.Root()
		if err != nil {
			return nil, "", fmt.Errorf("job: %w", err)
		}
		spec.CacheDir = root
	}
	if spec.Progress == nil {
		spec.Progress = func(string, ...any) {}
	}
	label := spec.Label
	if label == "" {
		label = spec.Suite.Name
	}
	if spec.Out == "" {
		spec.Out = "out"
	}
	dir, err := results.NewDir(spec.Out, label)
	if err != nil {
		return nil, "", err
	}
	host, _ := os.Hostname()
	res := &results.Result{
		Status:     results.StatusInfra,
		Host:       host,
		Kernel:     spec.Kernel,
		Suite:      spec.Suite.Name,
		Started:    time.Now().UTC(),
		ConsoleLog: "console.log",
		Tests:      []results.Test{},
		Crashes:    []results.Crash{},
	}
	// A run whose kregress is killed (SIGKILL, the machine stopping)
	// keeps this record: the run directory always has a result.json that
	// says what became of it.
	res.Reason = fmt.Sprintf("the run did not finish: kregress (pid %d) ended before it could record the result", os.Getpid())
	// A record that cannot be written now (a full disk) does not stop the
	// run: its verdict is still worth printing; the final write reports
	// the failure.
	dir.WriteResult(res)
	res.Reason = ""
	start := time.Now()
	r := &run{spec: spec, dir: dir, res: res}
	err = r.do(ctx)
	res.WallSeconds = time.Since(start).Seconds()
	if err != nil && res.Reason == "" {
		res.Status = results.StatusInfra
		res.Reason = err.Error()
		if ctx.Err() != nil {
			res.Reason = "interrupted: " + runner.Cause(ctx) + " (" + err.Error() + ")"
		}
	}
	if werr := dir.WriteResult(res); werr != nil {
		return res, dir.Path, werr
	}
	return res, dir.Path, nil
}

type run struct {
	spec Spec
	dir  *results.Dir
	res  *results.Result
	inst *runner.Instance
	// lustre is the simulated server of a lustre-target run.
	lustre *lustreRun
	// setupFailed says why the suite's tests could not run.
	setupFailed string
}

func (r *run) do(ctx context.Context) error {
	spec := r.spec
	if _, err := os.Stat(spec.Kernel); err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	rel, err := images.KernelRelease(spec.Kernel)
	if err != nil {
		return err
	}
	r.res.Release = rel
	img := images.Spec{ExtraModules: spec.ExtraModules, ExtraDir: spec.InitrdExtra, Files: map[string]string{}, KernelRelease: rel}
	modDir := spec.ModulesDir
	if modDir == "" {
		if _, err := os.Stat(filepath.Join("/lib/modules", rel, "modules.dep")); err == nil {
			modDir = filepath.Join("/lib/modules", rel)
		}
	}
	linkModules, serial := guestLink(modDir, spec.Suite.Network)
	if modDir != "" {
		img.ModulesDir = modDir
		img.Modules = append(linkModules, spec.Modules...)
	} else if len(spec.Modules) > 0 {
		return fmt.Errorf("modules %v requested but kernel %s has no module tree", spec.Modules, rel)
	}
	if spec.Suite.Target == suites.TargetLustre {
		if err := r.startLustre(ctx, &img); err != nil {
			return err
		}
		defer r.lustre.Close()
	}
	spec.Progress("image: packing agent, busybox and modules")
	agentBin, err := images.AgentBinary(ctx, filepath.Join(spec.CacheDir, "agent"))
	if err != nil {
		return err
	}
	img.Agent = agentBin
	initrd, err := images.Build(ctx, img, filepath.Join(spec.CacheDir, "images"))
	if err != nil {
		return err
	}
	spec.Progress("boot: %s", filepath.Base(spec.Kernel))
	backend := spec.Backend
	if backend == nil {
		backend = qemu.Backend{}
	}
	inst, err := runner.Start(ctx, runner.Config{
		Backend: backend,
		Kernel:  spec.Kernel, Initrd: initrd, Append: spec.Append, Accel: spec.Accel, Boot: spec.Boot,
		MemoryMB: spec.MemoryMB, CPUs: spec.CPUs, Dir: r.dir.Path, Agent: true,
		Serial: serial, Network: spec.Suite.Network,
		BootTimeout: spec.BootTimeout, NoOutputTimeout: spec.NoOutputTimeout,
		OnLine: spec.OnLine, StopOnCrash: true, CacheDir: spec.CacheDir,
		Log: spec.Progress,
	})
	if err != nil {
		var ve *runner.VMError
		if !errors.As(err, &ve) {
			return err
		}
		// The machine ran and ended before the agent answered: what
		// it ran under and the crashes its console showed come with
		// the error.
		r.setInfo(ve.Info)
		r.res.Outcome = string(ve.Outcome)
		r.res.ConsoleTail = ve.Tail
		r.res.Crashes = results.CrashesFrom(r.symbolized(ve.Crashes))
		switch {
		case len(r.res.Crashes) > 0:
			r.res.Status = results.StatusCrash
			r.res.Reason = "kernel crashed during boot: " + r.res.Crashes[0].Title
		case ve.Outcome == runner.OutcomeCanceled:
			r.res.Reason = "interrupted during boot: " + ve.Reason
		default:
			r.res.Reason = "boot failed: " + string(ve.Outcome) + ": " + ve.Reason
		}
		return nil
	}
	r.inst = inst
	defer inst.Close()
	r.setInfo(inst.Info())
	r.res.BootSeconds = inst.BootTime().Seconds()
	spec.Progress("booted in %.1fs (%s, %s)", r.res.BootSeconds, r.res.Accel, r.res.Boot)
	r.runSuite(ctx)
	inst.Close()
	r.finish()
	return nil
}

// setInfo records what the machine ran under.
func (r *run) setInfo(info runner.Info) {
	r.res.Accel, r.res.AccelReason, r.res.Boot = info.Accel, info.AccelReason, info.Boot
}

// symbolized fills in source positions of the reports' frames when the
// job has a symbolizer; a frame it cannot resolve stays as it was.
func (r *run) symbolized(reps []triage.Report) []triage.Report {
	if r.spec.Symbolizer == nil {
		return reps
	}
	for i := range reps {
		r.spec.Symbolizer.SymbolizeReport(&reps[i])
		for j := range reps[i].Stack {
			f := &reps[i].Stack[j]
			f.File = r.sourcePath(f.File)
			for k := range f.Inlined {
				f.Inlined[k].File = r.sourcePath(f.Inlined[k].File)
			}
		}
	}
	return reps
}

// sourcePath cuts the kernel tree (SourceRoot) or the Lustre client tree
// (Lustre.SourceRoot) from a source path, so that it reads fs/namei.c or
// lustre/llite/namei.c.
func (r *run) sourcePath(file string) string {
	for _, root := range []string{r.spec.SourceRoot, r.spec.Lustre.SourceRoot} {
		if root == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(file, strings.TrimSuffix(root, "/")+"/"); ok {
			return rest
		}
	}
	return file
}

// finish decides the run's status once the VM is gone: a crash the console
// showed wins; then the run's end by a signal or the time limit, or a VM
// that died unexplained, are infrastructure; then a VM stopped for silence
// and failed tests are failures.
func (r *run) finish() {
	res := r.res
	res.Crashes = results.CrashesFrom(r.symbolized(r.inst.Crashes()))
	outcome, reason := r.inst.Outcome()
	res.Outcome = string(outcome)
	failed, interrupted := 0, ""
	for _, t := range res.Tests {
		switch t.Status {
		case results.StatusPass, results.StatusSkip:
		case results.StatusInterrupted:
			if interrupted == "" {
				interrupted = t.Name + ": " + t.Message
			}
		default:
			failed++
		}
	}
	switch {
	case len(res.Crashes) > 0:
		res.Status = results.StatusCrash
		res.Reason = "kernel crashed: " + res.Crashes[0].Title
	case outcome == runner.OutcomeCanceled:
		res.Status = results.StatusInfra
		res.Reason = "interrupted: " + reason
	case outcome == runner.OutcomeExited:
		res.Status = results.StatusInfra
		res.Reason = "the VM died and the console shows no kernel crash: " + reason
		res.ConsoleTail = r.inst.ConsoleTail()
	case interrupted != "":
		res.Status = results.StatusInfra
		res.Reason = "test " + interrupted
	case outcome == runner.OutcomeNoOutput:
		res.Status = results.StatusFail
		res.Reason = reason
		res.ConsoleTail = r.inst.ConsoleTail()
	case r.setupFailed != "":
		res.Status = results.StatusFail
		res.Reason = r.setupFailed
	case failed > 0:
		res.Status = results.StatusFail
		res.Reason = fmt.Sprintf("%d of %d tests failed", failed, len(res.Tests))
	default:
		res.Status = results.StatusPass
		res.Reason = ""
	}
}

// guestEnv is prefixed to every suite command.
func (r *run) guestEnv() string {
	env := fmt.Sprintf("export KREGRESS_MNT=%s; ", suites.Mount)
	if r.lustre != nil {
		env += fmt.Sprintf("export KREGRESS_LUSTRE_CTL=http://%s:%d; ", guestHostAddr, r.lustre.ControlAddr().(*net.TCPAddr).Port)
	}
	return env + fmt.Sprintf("cd %s || exit 125; ", suites.Mount)
}

func (r *run) runSuite(ctx context.Context) {
	s := r.spec.Suite
	inst := r.inst
	os.MkdirAll(r.dir.File("tests"), 0o755)
	prep := ""
	switch s.Target {
	case suites.TargetTmpfs:
		prep = fmt.Sprintf("mkdir -p %s && mount -t tmpfs kregress %s", suites.Mount, suites.Mount)
	case suites.TargetNone:
		prep = fmt.Sprintf("mkdir -p %s", suites.Mount)
	case suites.TargetLustre:
		prep = r.lustreMount()
	}
	if out, err := inst.Run(ctx, prep, nil, 3*time.Minute); err != nil || out.ExitCode != 0 {
		r.skipAll(fmt.Sprintf("target %s set-up failed: %s", s.Target, failure(out, err)))
		return
	}
	if s.Setup != "" {
		out, err := inst.Run(ctx, r.guestEnv()+s.Setup, nil, s.Timeout)
		if err != nil || out.ExitCode != 0 {
			r.skipAll("suite setup failed: " + failure(out, err))
			return
		}
	}
	for idx, t := range s.Tests {
		if why := r.stopped(ctx); why != "" {
			r.res.Tests = append(r.res.Tests, results.Test{Name: t.Name, Status: results.StatusSkip, Expected: t.Expect, Message: "not run: " + why})
			continue
		}
		r.spec.Progress("test %d/%d: %s", idx+1, len(s.Tests), t.Name)
		r.res.Tests = append(r.res.Tests, r.runTest(ctx, t))
	}
	if s.Teardown != "" && r.stopped(ctx) == "" {
		inst.Run(ctx, r.guestEnv()+s.Teardown, nil, s.Timeout)
	}
}

// failure describes a set-up command that failed.
func failure(out runner.Result, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("exit %d: %s", out.ExitCode, strings.TrimSpace(string(out.Stderr)))
}

// stopped says why no further guest command can run ("" if one can): the
// VM's end or the context's.
func (r *run) stopped(ctx context.Context) string {
	if o, why := r.inst.Outcome(); o != runner.OutcomeRunning {
		return "the VM had ended: " + string(o) + ": " + why
	}
	if ctx.Err() != nil {
		return "interrupted: " + runner.Cause(ctx)
	}
	return ""
}

// skipAll records every test as not run, and the run as failed at set-up
// unless the VM's end explains it.
func (r *run) skipAll(why string) {
	r.setupFailed = why
	for _, t := range r.spec.Suite.Tests {
		r.res.Tests = append(r.res.Tests, results.Test{Name: t.Name, Status: results.StatusSkip, Expected: t.Expect, Message: "not run: " + why})
	}
}

// command is the guest shell command of one test.
func (r *run) command(t suites.Test) string {
	var b strings.Builder
	b.WriteString(r.guestEnv())
	if t.Setup != "" {
		fmt.Fprintf(&b, "( %s ) || exit 124; ", t.Setup)
	}
	body := t.Run
	if t.Workload != "" {
		body = workloadCommand(t)
	}
	if t.Repeat > 1 {
		fmt.Fprintf(&b, "i=0; while [ $i -lt %d ]; do ( %s ) || exit $?; i=$((i+1)); done", t.Repeat, body)
	} else {
		fmt.Fprintf(&b, "( %s )", body)
	}
	if t.Teardown != "" {
		fmt.Fprintf(&b, "; rc=$?; ( %s ); exit $rc", t.Teardown)
	}
	return b.String()
}

// workloadCommand invokes the agent's built-in workload.
func workloadCommand(t suites.Test) string {
	args := []string{protocol.AgentPath, t.Workload, "-threads", fmt.Sprint(t.Threads)}
	if t.Duration > 0 {
		args = append(args, "-duration", t.Duration.String())
	}
	keys := make([]string, 0, len(t.Args))
	for k := range t.Args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// -k=v, not -k v: a boolean flag takes no separate value.
		args = append(args, "-"+k+"="+shellQuote(t.Args[k]))
	}
	return strings.Join(args, " ")
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (r *run) runTest(ctx context.Context, t suites.Test) results.Test {
	out := results.Test{Name: t.Name, Expected: t.Expect, Output: filepath.Join("tests", t.Name+".log")}
	f, err := os.Create(r.dir.File(out.Output))
	if err != nil {
		out.Status, out.Message = results.StatusFail, err.Error()
		return out
	}
	defer f.Close()
	fmt.Fprintf(f, "$ %s\n", t.Run+t.Workload)
	var w io.Writer = f
	metrics := &metricsCapture{}
	if t.Workload != "" {
		w = io.MultiWriter(f, metrics)
	}
	res, err := r.inst.RunStream(ctx, r.command(t), nil, w, f, t.Timeout)
	out.Seconds = res.Duration.Seconds()
	out.ExitCode = res.ExitCode
	if t.Workload != "" {
		out.Metrics = metrics.parse()
	}
	out.Status, out.Message = testVerdict(t, res, err, runner.Cause(ctx))
	fmt.Fprintf(f, "\n[kregress: %s, exit %d, %.2fs", out.Status, out.ExitCode, out.Seconds)
	if out.Message != "" {
		fmt.Fprintf(f, ": %s", out.Message)
	}
	fmt.Fprintf(f, "]\n")
	return out
}

// testVerdict decides one test's status, once, from what running it
// returned: pass, fail, timeout, crash, skip (it never started: the VM had
// ended) or interrupted (something outside the test ended it: the VM died
// unexplained, a signal, the overall time limit: cause says which). Every
// status but pass comes with a message.
func testVerdict(t suites.Test, res runner.Result, err error, cause string) (status results.Status, message string) {
	var ve *runner.VMError
	switch {
	case err == nil && res.ExitCode == t.Expect:
		return results.StatusPass, ""
	case err == nil:
		return results.StatusFail, fmt.Sprintf("exit %d, want %d", res.ExitCode, t.Expect)
	case errors.Is(err, runner.ErrTimeout):
		return results.StatusTimeout, fmt.Sprintf("ran past its %v timeout", t.Timeout)
	case errors.As(err, &ve):
		why := string(ve.Outcome) + ": " + ve.Reason
		switch {
		case ve.NotStarted:
			return results.StatusSkip, "not run: the VM had ended: " + why
		case ve.Outcome == runner.OutcomeCrash:
			return results.StatusCrash, "the kernel crashed during the test: " + ve.Reason
		case ve.Outcome == runner.OutcomeNoOutput:
			return results.StatusTimeout, "the VM was stopped during the test: " + ve.Reason
		case ve.Outcome == runner.OutcomeCanceled:
			return results.StatusInterrupted, "interrupted: " + ve.Reason
		}
		return results.StatusInterrupted, "the VM died during the test: " + why
	case errors.Is(err, runner.ErrInterrupted):
		return results.StatusInterrupted, "interrupted: " + cause
	}
	return results.StatusInterrupted, "lost the guest agent during the test: " + err.Error()
}

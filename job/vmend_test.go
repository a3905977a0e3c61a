package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kregress/kregress/internal/proc"
	"github.com/kregress/kregress/internal/proc/proctest"
	"github.com/kregress/kregress/internal/testkernel"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/runner"
	"github.com/kregress/kregress/runner/fake"
	"github.com/kregress/kregress/runner/qemu"
	"github.com/kregress/kregress/suites"
)

// TestTestVerdict: every way a test can end gives exactly one status, and
// every status but pass a message.
func TestTestVerdict(t *testing.T) {
	st := suites.Test{Name: "t", Expect: 0, Timeout: time.Minute}
	vm := func(o runner.Outcome, reason string, notStarted bool) error {
		return &runner.VMError{Op: "run", Outcome: o, Reason: reason, NotStarted: notStarted}
	}
	for _, c := range []struct {
		name   string
		res    runner.Result
		err    error
		status results.Status
		msg    string
	}{
		{"pass", runner.Result{ExitCode: 0}, nil, results.StatusPass, ""},
		{"wrong exit", runner.Result{ExitCode: 3}, nil, results.StatusFail, "exit 3, want 0"},
		{"own timeout", runner.Result{ExitCode: -1, TimedOut: true}, fmt.Errorf("x: %w", runner.ErrTimeout), results.StatusTimeout, "ran past its 1m0s timeout"},
		{"crash", runner.Result{ExitCode: -1}, vm(runner.OutcomeCrash, "BUG: unable to handle page fault in foo", false), results.StatusCrash, "the kernel crashed during the test: BUG: unable to handle page fault in foo"},
		{"silence", runner.Result{ExitCode: -1}, vm(runner.OutcomeNoOutput, "no console output for 30s (the no-output timeout)", false), results.StatusTimeout, "the VM was stopped during the test: no console output for 30s (the no-output timeout)"},
		{"QEMU killed", runner.Result{ExitCode: -1}, vm(runner.OutcomeExited, "QEMU was killed by SIGKILL (killed)", false), results.StatusInterrupted, "the VM died during the test: exited: QEMU was killed by SIGKILL (killed)"},
		{"signal, VM first", runner.Result{ExitCode: -1}, vm(runner.OutcomeCanceled, "interrupt signal received", false), results.StatusInterrupted, "interrupted: interrupt signal received"},
		{"signal, command first", runner.Result{ExitCode: -1}, fmt.Errorf("runner: x: %w: --timeout 30m0s expired", runner.ErrInterrupted), results.StatusInterrupted, "interrupted: --timeout 30m0s expired"},
		{"never started", runner.Result{ExitCode: -1}, vm(runner.OutcomeExited, "QEMU was killed by SIGKILL (killed)", true), results.StatusSkip, "not run: the VM had ended: exited: QEMU was killed by SIGKILL (killed)"},
		{"lost agent", runner.Result{ExitCode: -1}, errors.New("qemu: SSH session: EOF"), results.StatusInterrupted, "lost the guest agent during the test: qemu: SSH session: EOF"},
	} {
		cause := ""
		if errors.Is(c.err, runner.ErrInterrupted) {
			cause = "--timeout 30m0s expired"
		}
		status, msg := testVerdict(st, c.res, c.err, cause)
		if status != c.status || msg != c.msg {
			t.Errorf("%s: %s %q, want %s %q", c.name, status, msg, c.status, c.msg)
		}
	}
}

// threeTests is a suite whose second test is where the VM ends.
func threeTests(t *testing.T) *suites.Suite {
	s, err := suites.Parse("three.yaml", []byte("name: three\ntarget: none\ntests:\n  - name: first\n    run: 'true'\n  - name: second\n    run: sleep 600\n  - name: third\n    run: 'true'\n"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkVMEnd checks a run whose VM ended during the second test of
// threeTests: first passed, second interrupted, third not run, the run
// infrastructure, and every message and the reason say why.
func checkVMEnd(t *testing.T, res *results.Result, why string) {
	t.Helper()
	t.Logf("status %s: %s", res.Status, res.Reason)
	for _, tt := range res.Tests {
		t.Logf("  %-7s %-12s %s", tt.Name, tt.Status, tt.Message)
	}
	if res.Status != results.StatusInfra || !strings.Contains(res.Reason, why) {
		t.Errorf("run %s (%s), want infra saying %q", res.Status, res.Reason, why)
	}
	if len(res.Tests) != 3 {
		t.Fatalf("%d tests recorded, want 3", len(res.Tests))
	}
	want := []results.Status{results.StatusPass, results.StatusInterrupted, results.StatusSkip}
	for i, tt := range res.Tests {
		if tt.Status != want[i] {
			t.Errorf("%s: %s, want %s", tt.Name, tt.Status, want[i])
		}
		if i > 0 && !strings.Contains(tt.Message, why) {
			t.Errorf("%s: message %q does not say %q", tt.Name, tt.Message, why)
		}
	}
	if res.Accel == "" {
		t.Error("result.json's accel is blank")
	}
}

// TestVMDeathMidTestFake: the machine ending by itself during a test
// (fake backend) is infrastructure, not a test failure.
func TestVMDeathMidTestFake(t *testing.T) {
	kernel := testkernel.Debian(t)
	m := fake.New()
	m.RunFunc = func(ctx context.Context, cmd string, _, _ io.Writer) (int, error) {
		if strings.Contains(cmd, "sleep 600") {
			go m.Die("QEMU was killed by SIGKILL (killed)")
			<-ctx.Done()
			return -1, ctx.Err()
		}
		return 0, nil
	}
	res, _, err := Run(context.Background(), Spec{Kernel: kernel, Suite: threeTests(t), Out: t.TempDir(),
		CacheDir: filepath.Join(t.TempDir(), "cache"), Accel: runner.AccelTCG, Backend: fake.Backend{Machine: m}})
	if err != nil {
		t.Fatal(err)
	}
	checkVMEnd(t, res, "QEMU was killed by SIGKILL")
}

// qemuOf returns the QEMU process of the only kregress VM started with
// this test's scratch directory, waiting for it.
func qemuOf(t *testing.T, tmp string) int {
	t.Helper()
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		for _, p := range proc.Descendants(os.Getpid()) {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
			if strings.HasPrefix(string(cmd), "qemu-system-x86_64\x00") && strings.Contains(string(cmd), tmp) {
				return p
			}
		}
	}
	t.Fatal("no QEMU started")
	return 0
}

// TestQEMUKilledMidTest: real QEMU, killed from outside with SIGTERM
// while the second test runs: the run is infrastructure and says how QEMU
// ended; the test is interrupted, the next not run.
func TestQEMUKilledMidTest(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; not with -short")
	}
	kernel := testkernel.Debian(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	started := make(chan struct{})
	var once bool
	progress := func(f string, a ...any) {
		if strings.HasPrefix(fmt.Sprintf(f, a...), "test 2/3") && !once {
			once = true
			close(started)
		}
	}
	go func() {
		<-started
		time.Sleep(500 * time.Millisecond)
		syscall.Kill(qemuOf(t, tmp), syscall.SIGTERM)
	}()
	res, _, err := Run(context.Background(), Spec{Kernel: kernel, Suite: threeTests(t), Out: t.TempDir(),
		CacheDir: filepath.Join(t.TempDir(), "cache"), Accel: runner.AccelTCG, Progress: progress, Backend: qemu.Backend{}})
	if err != nil {
		t.Fatal(err)
	}
	checkVMEnd(t, res, "terminating on signal 15")
}

// TestInterruptMidTest: real QEMU, the context canceled with a cause (as
// kregress's signal handler and --timeout do) while the second test runs.
func TestInterruptMidTest(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; not with -short")
	}
	kernel := testkernel.Debian(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	progress := func(f string, a ...any) {
		if strings.HasPrefix(fmt.Sprintf(f, a...), "test 2/3") {
			time.AfterFunc(500*time.Millisecond, func() { cancel(errors.New("terminated signal received")) })
		}
	}
	res, _, err := Run(ctx, Spec{Kernel: kernel, Suite: threeTests(t), Out: t.TempDir(),
		CacheDir: filepath.Join(t.TempDir(), "cache"), Accel: runner.AccelTCG, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	checkVMEnd(t, res, "terminated signal received")
}

// TestHelperKilledRun is not a test: TestSIGKILLLeavesARecord runs it as
// the kregress that is killed mid-test.
func TestHelperKilledRun(t *testing.T) {
	out := os.Getenv("KREGRESS_JOB_TEST_OUT")
	if out == "" {
		t.Skip("helper process for TestSIGKILLLeavesARecord")
	}
	m := fake.New()
	m.RunFunc = func(ctx context.Context, cmd string, _, _ io.Writer) (int, error) {
		if strings.Contains(cmd, "sleep 600") {
			fmt.Println("testing")
			<-ctx.Done()
			return -1, ctx.Err()
		}
		return 0, nil
	}
	Run(context.Background(), Spec{Kernel: os.Getenv("KREGRESS_JOB_TEST_KERNEL"), Suite: threeTests(t), Out: out,
		CacheDir: os.Getenv("KREGRESS_JOB_TEST_CACHE"), Accel: runner.AccelTCG, Backend: fake.Backend{Machine: m}})
	fmt.Println("finished")
}

// TestSIGKILLLeavesARecord: a kregress SIGKILLed mid-test leaves a
// result.json that says the run did not finish.
func TestSIGKILLLeavesARecord(t *testing.T) {
	kernel := testkernel.Debian(t)
	out := t.TempDir()
	parent := proctest.Start(t, "TestHelperKilledRun", "KREGRESS_JOB_TEST_OUT="+out,
		"KREGRESS_JOB_TEST_KERNEL="+kernel, "KREGRESS_JOB_TEST_CACHE="+filepath.Join(t.TempDir(), "cache"))
	if parent.First != "testing" {
		t.Fatalf("helper: %q", parent.First)
	}
	parent.KillAndCheck(t, 5*time.Second)
	dirs, _ := filepath.Glob(filepath.Join(out, "*"))
	if len(dirs) != 1 {
		t.Fatalf("run directories %q, want one", dirs)
	}
	r, err := results.ReadResult(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != results.StatusInfra || !strings.Contains(r.Reason, "the run did not finish") {
		t.Errorf("result.json of a killed run: %s (%s)", r.Status, r.Reason)
	}
}

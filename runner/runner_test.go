package runner_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kregress/kregress/runner"
	"github.com/kregress/kregress/runner/fake"
)

// crashLog is a real console log of Debian's 6.1 kernel ending in a
// sysrq-triggered panic.
const crashLog = "../results/triage/testdata/kernel/sysrq-crash-debian-6.1.log"

// start boots m through the monitor.
func start(t *testing.T, ctx context.Context, m *fake.Machine, cfg runner.Config) (*runner.Instance, error) {
	t.Helper()
	cfg.Backend, cfg.Dir, cfg.Agent, cfg.StopOnCrash = fake.Backend{Machine: m}, t.TempDir(), true, true
	if cfg.BootTimeout == 0 {
		cfg.BootTimeout = 10 * time.Second
	}
	inst, err := runner.Start(ctx, cfg)
	if inst != nil {
		t.Cleanup(func() { inst.Close() })
	}
	return inst, err
}

// blockingRun is a guest command that runs until its context ends.
func blockingRun(ctx context.Context, _ string, _, _ io.Writer) (int, error) {
	<-ctx.Done()
	return -1, ctx.Err()
}

// TestCrashDuringCommand: a crash report on the console stops the machine;
// the running command ends with a crash VMError carrying the report.
func TestCrashDuringCommand(t *testing.T) {
	log, err := os.ReadFile(crashLog)
	if err != nil {
		t.Fatal(err)
	}
	m := fake.New()
	m.RunFunc = func(ctx context.Context, cmd string, o, e io.Writer) (int, error) {
		go m.Print(strings.TrimRight(string(log), "\n"))
		return blockingRun(ctx, cmd, o, e)
	}
	inst, err := start(t, context.Background(), m, runner.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = inst.Run(context.Background(), "echo c > /proc/sysrq-trigger", nil, time.Minute)
	var ve *runner.VMError
	if !errors.As(err, &ve) || ve.Outcome != runner.OutcomeCrash || ve.NotStarted {
		t.Fatalf("want a crash VMError, got %v", err)
	}
	if ve.Reason != "kernel panic: sysrq triggered crash" || len(ve.Crashes) != 1 || ve.Crashes[0].Title != ve.Reason {
		t.Errorf("reason %q, crashes %d", ve.Reason, len(ve.Crashes))
	}
	if m.Exit() != "stopped" {
		t.Errorf("the machine was not stopped: %q", m.Exit())
	}
}

// TestMachineDiesDuringCommand: a machine that ends by itself ends the
// command with an exited VMError saying how; the next command never
// starts, and says so.
func TestMachineDiesDuringCommand(t *testing.T) {
	m := fake.New()
	m.RunFunc = func(ctx context.Context, cmd string, o, e io.Writer) (int, error) {
		go m.Die("QEMU was killed by SIGKILL (killed)")
		return blockingRun(ctx, cmd, o, e)
	}
	inst, err := start(t, context.Background(), m, runner.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = inst.Run(context.Background(), "sleep 600", nil, time.Minute)
	var ve *runner.VMError
	if !errors.As(err, &ve) || ve.Outcome != runner.OutcomeExited || ve.Reason != "QEMU was killed by SIGKILL (killed)" || ve.NotStarted {
		t.Fatalf("want an exited VMError with the signal, got %v", err)
	}
	_, err = inst.Run(context.Background(), "true", nil, time.Minute)
	if !errors.As(err, &ve) || !ve.NotStarted {
		t.Errorf("the next command: %v, want a not-started VMError", err)
	}
}

// TestInterruptSaysWhy: the caller's context ending (a signal, the
// overall limit) ends the command with ErrInterrupted and the VM with the
// canceled outcome, both saying the cause; a command's own timeout is
// ErrTimeout.
func TestInterruptSaysWhy(t *testing.T) {
	m := fake.New()
	m.RunFunc = blockingRun
	ctx, cancel := context.WithCancelCause(context.Background())
	inst, err := start(t, ctx, m, runner.Config{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := inst.Run(ctx, "sleep 600", nil, 100*time.Millisecond)
	if !errors.Is(err, runner.ErrTimeout) || !r.TimedOut {
		t.Errorf("past its timeout: %v", err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		cancel(errors.New("interrupt signal received"))
	}()
	_, err = inst.Run(ctx, "sleep 600", nil, time.Minute)
	if err == nil || !strings.HasSuffix(err.Error(), "interrupt signal received") {
		t.Errorf("interrupted command: %v", err)
	}
	var ve *runner.VMError
	if !errors.Is(err, runner.ErrInterrupted) && !(errors.As(err, &ve) && ve.Outcome == runner.OutcomeCanceled) {
		t.Errorf("interrupted command: %v, want ErrInterrupted or a canceled VMError", err)
	}
	<-inst.Done()
	if o, why := inst.Outcome(); o != runner.OutcomeCanceled || why != "interrupt signal received" {
		t.Errorf("outcome %s (%s)", o, why)
	}
}

// TestKVMSilenceEndsBoot: a machine under KVM that prints nothing is
// ended early, saying KVM looks broken; the error says what it ran under.
func TestKVMSilenceEndsBoot(t *testing.T) {
	saved := runner.KVMSilence
	runner.KVMSilence = 300 * time.Millisecond
	defer func() { runner.KVMSilence = saved }()
	m := fake.New()
	m.NoAgent = true
	m.Under = runner.Info{Accel: runner.AccelKVM, AccelReason: "requested", Boot: "pvh"}
	startAt := time.Now()
	_, err := start(t, context.Background(), m, runner.Config{Accel: runner.AccelKVM})
	var ve *runner.VMError
	if !errors.As(err, &ve) || ve.Outcome != runner.OutcomeNoOutput || !strings.Contains(ve.Reason, "KVM looks broken") {
		t.Fatalf("want no-output saying KVM looks broken, got %v", err)
	}
	if ve.Info.Accel != runner.AccelKVM || ve.Info.Boot != "pvh" {
		t.Errorf("error's info %+v", ve.Info)
	}
	if took := time.Since(startAt); took > 5*time.Second {
		t.Errorf("took %v", took)
	}
	// Under TCG the same silence waits for the boot timeout.
	m = fake.New()
	m.NoAgent = true
	_, err = start(t, context.Background(), m, runner.Config{Accel: runner.AccelTCG, BootTimeout: time.Second})
	if !errors.As(err, &ve) || ve.Outcome != runner.OutcomeBootTimeout {
		t.Errorf("silent under TCG: %v, want boot-timeout", err)
	}
}

// TestCrashDuringBoot: a crash before the agent answers comes back with
// the error, already parsed.
func TestCrashDuringBoot(t *testing.T) {
	log, err := os.ReadFile(crashLog)
	if err != nil {
		t.Fatal(err)
	}
	m := fake.New()
	m.NoAgent = true
	go m.Print(strings.TrimRight(string(log), "\n"))
	_, err = start(t, context.Background(), m, runner.Config{})
	var ve *runner.VMError
	if !errors.As(err, &ve) || ve.Outcome != runner.OutcomeCrash || len(ve.Crashes) != 1 || ve.Crashes[0].StartLine != 360 {
		t.Fatalf("want a crash VMError with the report at line 360, got %v", err)
	}
	if len(ve.Tail) == 0 {
		t.Error("no console tail")
	}
}

// TestStallAfterQuietPeriod: an RCU stall detected by another CPU (real
// Debian 6.1 output) has no end marker; once the console is quiet after
// its trace, the monitor reports it without waiting for more output.
func TestStallAfterQuietPeriod(t *testing.T) {
	data, err := os.ReadFile("../results/triage/testdata/kernel/module-stall-debian-6.1.log")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	m := fake.New()
	m.NoAgent = true
	go m.Print(lines[:423]...) // through the stall's </TASK>; the next report starts at 425
	t0 := time.Now()
	_, err = start(t, context.Background(), m, runner.Config{BootTimeout: 60 * time.Second})
	var ve *runner.VMError
	if !errors.As(err, &ve) || ve.Outcome != runner.OutcomeCrash || len(ve.Crashes) != 1 ||
		ve.Crashes[0].Title != "INFO: rcu detected stall in crashmod_spin" {
		t.Fatalf("want a crash VMError with the stall, got %v", err)
	}
	if d := time.Since(t0); d > 20*time.Second {
		t.Errorf("the stall was reported after %v", d)
	}
}

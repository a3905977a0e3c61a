package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kregress/kregress/agent/protocol"
	"github.com/kregress/kregress/images"
	"github.com/kregress/kregress/internal/proc"
	"github.com/kregress/kregress/internal/testkernel"
	"github.com/kregress/kregress/runner"
)

// agentImage builds an initramfs with the agent, the network modules and
// an optional extra tree (which may replace /init).
func agentImage(t *testing.T, modDir, extra string) string {
	t.Helper()
	return agentImageWith(t, modDir, extra, "virtio_pci", "virtio_net")
}

// agentImageWith is agentImage with the given modules.
func agentImageWith(t *testing.T, modDir, extra string, modules ...string) string {
	t.Helper()
	ctx := context.Background()
	cache := filepath.Join(os.TempDir(), "kregress-test-cache")
	agent, err := images.AgentBinary(ctx, filepath.Join(cache, "agent-"+filepath.Base(t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	img, err := images.Build(ctx, images.Spec{
		Agent: agent, ModulesDir: modDir, Modules: modules, ExtraDir: extra,
	}, filepath.Join(cache, "images"))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestProbeAccelIsQuick(t *testing.T) {
	kernel, _ := testkernel.DebianWithModules(t)
	cache := t.TempDir()
	start := time.Now()
	r := ProbeAccel(context.Background(), kernel, cache)
	took := time.Since(start)
	t.Logf("probe chose %s in %v: %s", r.Accel, took.Round(time.Millisecond), r.Reason)
	if r.Accel != runner.AccelKVM && r.Accel != runner.AccelTCG {
		t.Fatalf("probe chose %q", r.Accel)
	}
	if r.Reason == "" {
		t.Error("probe gave no reason")
	}
	// The probe's own timeout bounds it, whatever KVM does here.
	if took > probeTimeout+3*time.Second {
		t.Errorf("probe took %v, its timeout is %v", took, probeTimeout)
	}
}

func TestBootRunCommandsAndTimeout(t *testing.T) {
	kernel, modDir := testkernel.DebianWithModules(t)
	img := agentImage(t, modDir, "")
	dir := t.TempDir()
	ctx := context.Background()
	var lines int
	inst, err := runner.Start(ctx, runner.Config{Backend: Backend{}, Kernel: kernel, Initrd: img, Dir: dir, Agent: true, Accel: runner.AccelTCG,
		StopOnCrash: true, OnLine: func(runner.Line) { lines++ }})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	t.Logf("booted in %v", inst.BootTime())
	if inst.Info().Boot != "bzimage" {
		t.Errorf("boot protocol %s without a cache directory, want bzimage", inst.Info().Boot)
	}
	st, err := inst.Machine().(*Machine).Status()
	if err != nil || st != "running" {
		t.Errorf("QMP status = %q, %v; want running", st, err)
	}
	r, err := inst.Run(ctx, "echo out; echo err >&2; exit 3", nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != 3 || string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" {
		t.Errorf("got exit %d stdout %q stderr %q", r.ExitCode, r.Stdout, r.Stderr)
	}
	// The agent configured the network: the guest reaches a host service
	// bound to loopback through user networking's 10.0.2.2.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello from the host\n")
	}))
	defer srv.Close()
	hostPort := srv.Listener.Addr().(*net.TCPAddr).Port
	r, err = inst.Run(ctx, fmt.Sprintf("wget -q -O- http://10.0.2.2:%d/ && ip route", hostPort), nil, 20*time.Second)
	if err != nil || r.ExitCode != 0 || !strings.HasPrefix(string(r.Stdout), "hello from the host\n") ||
		!strings.Contains(string(r.Stdout), "default via 10.0.2.2 dev eth0") {
		t.Errorf("guest to host over the network: exit %d, %v\nstdout %q\nstderr %q", r.ExitCode, err, r.Stdout, r.Stderr)
	}
	// File copy both ways.
	if err := inst.Put(ctx, "/tmp/f", strings.NewReader("payload\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	r, _ = inst.Run(ctx, "stat -c %a /tmp/f && cat /tmp/f", nil, 10*time.Second)
	if string(r.Stdout) != "640\npayload\n" {
		t.Errorf("after Put: %q", r.Stdout)
	}
	var got strings.Builder
	if err := inst.Get(ctx, "/proc/version", &got); err != nil || !strings.HasPrefix(got.String(), "Linux version") {
		t.Errorf("Get /proc/version: %q, %v", got.String(), err)
	}
	// Orphans re-parented to the agent (PID 1) are reaped: three
	// background sleeps whose shells are gone leave no zombie behind.
	r, err = inst.Run(ctx, "for i in 1 2 3; do (sleep 0.2 &); done; sleep 1.5; grep -l 'State:.*zombie' /proc/[0-9]*/status | wc -l", nil, 20*time.Second)
	if err != nil || strings.TrimSpace(string(r.Stdout)) != "0" {
		t.Errorf("zombies left after orphans ended: %q %q %v", r.Stdout, r.Stderr, err)
	}
	// A command past its timeout is killed, and the guest still answers.
	start := time.Now()
	r, err = inst.Run(ctx, "sleep 600", nil, 2*time.Second)
	if !errors.Is(err, runner.ErrTimeout) || !r.TimedOut {
		t.Fatalf("sleep 600 with a 2s timeout: %v (timed out %v)", err, r.TimedOut)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("timeout took %v", time.Since(start))
	}
	r, err = inst.Run(ctx, "ps | grep -c '[s]leep 600'", nil, 10*time.Second)
	if err != nil || strings.TrimSpace(string(r.Stdout)) != "0" {
		t.Errorf("the timed-out command still runs: %q %v", r.Stdout, err)
	}
	inst.Close()
	if o, _ := inst.Outcome(); o != runner.OutcomeStopped {
		t.Errorf("outcome %q, want stopped", o)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "console.log"))
	if !strings.Contains(string(data), "Linux version") || lines == 0 {
		t.Errorf("console.log lacks the kernel banner or no lines were streamed (%d)", lines)
	}
}

// startPVH boots Debian's kernel with the agent image img, through PVH
// (a cache directory is given), and returns the instance, closed when
// the test ends, and its run directory.
func startPVH(t *testing.T, kernel, img string) (*runner.Instance, string) {
	t.Helper()
	dir := t.TempDir()
	inst, err := runner.Start(context.Background(), runner.Config{Backend: Backend{}, Kernel: kernel, Initrd: img, Dir: dir, Agent: true, Accel: runner.AccelTCG,
		StopOnCrash: true, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close() })
	if inst.Info().Boot != "pvh" {
		t.Errorf("boot protocol %s, want pvh for Debian's kernel", inst.Info().Boot)
	}
	return inst, dir
}

func TestCrashStopsVM(t *testing.T) {
	kernel, modDir := testkernel.DebianWithModules(t)
	ctx := context.Background()
	// This one boots through PVH (the other boot tests go through the
	// bzImage), so the crash path is seen on both.
	inst, dir := startPVH(t, kernel, agentImage(t, modDir, ""))
	_, err := inst.Run(ctx, "echo c > /proc/sysrq-trigger; sleep 600", nil, 5*time.Minute)
	var ve *runner.VMError
	if !errors.As(err, &ve) || ve.Outcome != runner.OutcomeCrash {
		t.Fatalf("want a crash VMError, got %v", err)
	}
	select {
	case <-inst.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("QEMU still runs after the crash")
	}
	crashes := inst.Crashes()
	if len(crashes) == 0 {
		t.Fatal("no crash reports")
	}
	data, _ := os.ReadFile(filepath.Join(dir, "console.log"))
	lines := strings.Split(string(data), "\n")
	c := crashes[0]
	t.Logf("crash %q lines %d-%d", c.Title, c.StartLine, c.EndLine)
	if c.StartLine < 1 || c.EndLine < c.StartLine || c.EndLine > len(lines) {
		t.Fatalf("bad range %d-%d of %d lines", c.StartLine, c.EndLine, len(lines))
	}
	span := strings.Join(lines[c.StartLine-1:c.EndLine], "\n")
	if !strings.Contains(span, "sysrq") && !strings.Contains(span, "SysRq") {
		t.Errorf("crash range does not hold the sysrq oops:\n%s", span)
	}
}

// silentInit is an /init that says nothing and never ends.
const silentInit = "#!/bin/busybox sh\n/bin/busybox sleep 100000\n"

func silentTree(t *testing.T) string {
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "init"), []byte(silentInit), 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestNoOutputTimeout(t *testing.T) {
	kernel, modDir := testkernel.DebianWithModules(t)
	img := agentImage(t, modDir, silentTree(t))
	dir := t.TempDir()
	inst, err := runner.Start(context.Background(), runner.Config{Backend: Backend{}, Kernel: kernel, Initrd: img, Dir: dir, Accel: runner.AccelTCG,
		NoOutputTimeout: 8 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	select {
	case <-inst.Done():
	case <-time.After(3 * time.Minute):
		t.Fatal("the silent guest was not stopped")
	}
	o, reason := inst.Outcome()
	if o != runner.OutcomeNoOutput {
		t.Fatalf("outcome %q (%s), want no-output", o, reason)
	}
	t.Logf("%s: %s; tail %q", o, reason, inst.ConsoleTail())
}

func TestBootTimeout(t *testing.T) {
	kernel, modDir := testkernel.DebianWithModules(t)
	img := agentImage(t, modDir, silentTree(t))
	// Through PVH the kernel prints within a second, so the tail is
	// there even on a loaded machine.
	dir := t.TempDir()
	_, err := runner.Start(context.Background(), runner.Config{Backend: Backend{}, Kernel: kernel, Initrd: img, Dir: dir, Accel: runner.AccelTCG,
		Agent: true, BootTimeout: 8 * time.Second, CacheDir: t.TempDir()})
	var ve *runner.VMError
	if !errors.As(err, &ve) || ve.Outcome != runner.OutcomeBootTimeout {
		t.Fatalf("want boot-timeout, got %v", err)
	}
	if len(ve.Tail) == 0 {
		log, _ := os.ReadFile(filepath.Join(dir, "console.log"))
		t.Errorf("no console tail with the boot timeout; console.log has %d bytes", len(log))
	}
}

// Over a virtio-serial port the agent answers with no NIC at all: the
// guest has only lo, there is no forwarded port, output, exit status and a
// 4 MiB file copy both ways come through intact, and a dropped connection
// is followed by a new one. With Network too, the guest also reaches the
// host over its NIC.
func TestSerialTransport(t *testing.T) {
	kernel, modDir := testkernel.DebianWithModules(t)
	ctx := context.Background()
	img := agentImageWith(t, modDir, "", "virtio_pci", "virtio_console")
	dir := t.TempDir()
	inst, err := runner.Start(ctx, runner.Config{Backend: Backend{}, Kernel: kernel, Initrd: img, Dir: dir, Agent: true, Serial: true, Accel: runner.AccelTCG})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	m := inst.Machine().(*Machine)
	if m.Port() != 0 {
		t.Errorf("a port (%d) is forwarded for a serial agent", m.Port())
	}
	r, err := inst.Run(ctx, "echo out; echo err >&2; ls /sys/class/net; exit 3", nil, 10*time.Second)
	if err != nil || r.ExitCode != 3 || string(r.Stdout) != "out\nlo\n" || string(r.Stderr) != "err\n" {
		t.Errorf("got exit %d stdout %q stderr %q, %v", r.ExitCode, r.Stdout, r.Stderr, err)
	}
	payload := make([]byte, 4<<20)
	for i := range payload {
		payload[i] = byte(i*7 + i>>12)
	}
	if err := inst.Put(ctx, "/tmp/big", bytes.NewReader(payload), 0o600); err != nil {
		t.Fatal(err)
	}
	var back bytes.Buffer
	if err := inst.Get(ctx, "/tmp/big", &back); err != nil || !bytes.Equal(back.Bytes(), payload) {
		t.Errorf("4 MiB round trip: %d bytes back, equal %v, %v", back.Len(), bytes.Equal(back.Bytes(), payload), err)
	}
	// A dropped connection: the agent opens its port again for the next.
	log, _ := os.ReadFile(filepath.Join(dir, "console.log"))
	_, fp, _ := strings.Cut(string(log), protocol.HostKeyMarker)
	fp, _, _ = strings.Cut(fp, "\n")
	m.mu.Lock()
	m.client.Close()
	m.client = nil
	m.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := m.Connect(cctx, strings.TrimSpace(fp)); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "console.log"))
		t.Fatalf("reconnect: %v\nconsole:\n%s", err, log)
	}
	if r, err := inst.Run(ctx, "echo again", nil, 10*time.Second); err != nil || string(r.Stdout) != "again\n" {
		t.Errorf("after reconnecting: %q, %v", r.Stdout, err)
	}
	inst.Close()

	img = agentImageWith(t, modDir, "", "virtio_pci", "virtio_console", "virtio_net")
	inst, err = runner.Start(ctx, runner.Config{Backend: Backend{}, Kernel: kernel, Initrd: img, Dir: t.TempDir(), Agent: true, Serial: true, Network: true, Accel: runner.AccelTCG})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello from the host\n")
	}))
	defer srv.Close()
	r, err = inst.Run(ctx, fmt.Sprintf("wget -q -O- http://10.0.2.2:%d/", srv.Listener.Addr().(*net.TCPAddr).Port), nil, 20*time.Second)
	if err != nil || r.ExitCode != 0 || string(r.Stdout) != "hello from the host\n" {
		t.Errorf("guest to host over the NIC: exit %d, %v\nstdout %q\nstderr %q", r.ExitCode, err, r.Stdout, r.Stderr)
	}
}

func TestCancelStopsQEMU(t *testing.T) {
	kernel, modDir := testkernel.DebianWithModules(t)
	img := agentImage(t, modDir, "")
	ctx, cancel := context.WithCancel(context.Background())
	inst, err := runner.Start(ctx, runner.Config{Backend: Backend{}, Kernel: kernel, Initrd: img, Dir: t.TempDir(), Accel: runner.AccelTCG, Agent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	m := inst.Machine().(*Machine)
	pid, port, tmp := m.Pid(), m.Port(), m.Scratch()
	cancel()
	select {
	case <-inst.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("QEMU outlived its context")
	}
	inst.Close()
	if _, err := os.Stat("/proc/" + itoa(pid)); err == nil {
		t.Errorf("QEMU pid %d still exists", pid)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temp dir %s left behind", tmp)
	}
	if p, err := freePortIs(port); !p {
		t.Errorf("port %d not free after close: %v", port, err)
	}
}

func TestBadInput(t *testing.T) {
	if _, err := runner.Start(context.Background(), runner.Config{Backend: Backend{}, Kernel: "/nonexistent/bzImage", Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "/nonexistent/bzImage") {
		t.Errorf("missing kernel: %v", err)
	}
	kernel, _ := testkernel.DebianWithModules(t)
	if _, err := runner.Start(context.Background(), runner.Config{Backend: Backend{}, Kernel: kernel, Dir: t.TempDir(), Accel: "hvf"}); err == nil || !strings.Contains(err.Error(), "hvf") {
		t.Errorf("bad accel: %v", err)
	}
}

// needKVMDevice skips t, saying why, when /dev/kvm does not open.
func needKVMDevice(t *testing.T, why string) {
	t.Helper()
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("%s: %v", why, err)
	}
	f.Close()
}

// restoreProbe puts the probe's boot and reference kernel back when t
// ends, for a test that replaces them.
func restoreProbe(t *testing.T) {
	saved, savedRef := probeBoot, referenceKernel
	t.Cleanup(func() { probeBoot, referenceKernel = saved, savedRef })
}

// TestProbeCache: without a reference kernel, a yes holds for every
// kernel, a no only for the kernel it was found with, so one bad kernel
// does not send later runs to TCG.
func TestProbeCache(t *testing.T) {
	needKVMDevice(t, "the cache is only consulted when /dev/kvm opens")
	restoreProbe(t)
	referenceKernel = func() string { return "" }
	var booted []string
	answer := map[string]string{}
	probeBoot = func(_ context.Context, kernel string) ProbeResult {
		booted = append(booted, filepath.Base(kernel))
		return ProbeResult{Accel: answer[filepath.Base(kernel)], Reason: "fake probe"}
	}
	dir := t.TempDir()
	kernel := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad, good, other := kernel("bad"), kernel("good"), kernel("other")
	answer["bad"], answer["good"] = runner.AccelTCG, runner.AccelKVM
	cache := t.TempDir()
	ctx := context.Background()
	if r := ProbeAccel(ctx, bad, cache); r.Accel != runner.AccelTCG || r.Cached {
		t.Fatalf("bad kernel: %+v", r)
	}
	if r := ProbeAccel(ctx, bad, cache); r.Accel != runner.AccelTCG || !r.Cached {
		t.Errorf("bad kernel again: %+v, want the cached no", r)
	}
	if r := ProbeAccel(ctx, good, cache); r.Accel != runner.AccelKVM || r.Cached {
		t.Errorf("good kernel after a bad one: %+v, want a fresh probe saying kvm", r)
	}
	if r := ProbeAccel(ctx, other, cache); r.Accel != runner.AccelKVM || !r.Cached {
		t.Errorf("another kernel after a yes: %+v, want the cached yes", r)
	}
	if want := "bad good"; strings.Join(booted, " ") != want {
		t.Errorf("probe boots %q, want %q", booted, want)
	}
}

// TestKVMSilence: under a KVM that hangs (nested KVM on this project's
// machine) the boot ends within seconds saying KVM looks broken, instead
// of waiting the whole boot timeout. Where KVM works, the boot succeeds.
func TestKVMSilence(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; not with -short")
	}
	needKVMDevice(t, "no usable /dev/kvm")
	kernel, modDir := testkernel.DebianWithModules(t)
	img := agentImage(t, modDir, "")
	start := time.Now()
	inst, err := runner.Start(context.Background(), runner.Config{Backend: Backend{}, Kernel: kernel, Initrd: img,
		Dir: t.TempDir(), Agent: true, Accel: runner.AccelKVM, BootTimeout: 2 * time.Minute})
	took := time.Since(start)
	if err == nil {
		defer inst.Close()
		t.Logf("KVM works on this host: booted in %v", inst.BootTime())
		return
	}
	var ve *runner.VMError
	if !errors.As(err, &ve) {
		t.Fatalf("want a VMError, got %v", err)
	}
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)
	if ve.Outcome != runner.OutcomeNoOutput || !strings.Contains(ve.Reason, "KVM looks broken") || !strings.Contains(ve.Reason, "--accel tcg") {
		t.Errorf("outcome %s (%s), want no-output saying KVM looks broken and suggesting --accel tcg", ve.Outcome, ve.Reason)
	}
	if ve.Info.Accel != runner.AccelKVM {
		t.Errorf("the error says accel %q, want kvm", ve.Info.Accel)
	}
	if took > runner.KVMSilence+15*time.Second {
		t.Errorf("took %v, want about %v", took, runner.KVMSilence)
	}
}

// TestQEMUKilledMidCommand: QEMU killed from outside while a command
// runs ends the command with a VMError that says the signal; a command
// asked for afterwards is reported as never started.
func TestQEMUKilledMidCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; not with -short")
	}
	kernel, modDir := testkernel.DebianWithModules(t)
	inst, _ := startPVH(t, kernel, agentImage(t, modDir, ""))
	ctx := context.Background()
	kids := proc.Descendants(inst.Machine().(*Machine).Pid())
	if len(kids) != 1 {
		t.Fatalf("QEMU's guard has %d descendants, want QEMU alone", len(kids))
	}
	go func() {
		time.Sleep(time.Second)
		syscall.Kill(kids[0], syscall.SIGKILL)
	}()
	_, err := inst.Run(ctx, "sleep 600", nil, time.Minute)
	var ve *runner.VMError
	if !errors.As(err, &ve) || ve.Outcome != runner.OutcomeExited || ve.NotStarted {
		t.Fatalf("want an exited VMError for a started command, got %v", err)
	}
	if ve.Reason != "QEMU was killed by SIGKILL (killed)" {
		t.Errorf("reason %q", ve.Reason)
	}
	_, err = inst.Run(ctx, "true", nil, time.Minute)
	if !errors.As(err, &ve) || !ve.NotStarted || ve.Outcome != runner.OutcomeExited {
		t.Errorf("a command after the VM died: %v (not started %v), want a not-started VMError", err, ve != nil && ve.NotStarted)
	}
}

// With a reference kernel the probe boots it, not the kernel under test,
// and its no holds for every kernel: a broken KVM costs one probe per
// host, not one per kernel.
func TestProbeReferenceKernel(t *testing.T) {
	needKVMDevice(t, "the probe only boots when /dev/kvm opens")
	restoreProbe(t)
	dir := t.TempDir()
	ref := filepath.Join(dir, "vmlinuz-ref")
	os.WriteFile(ref, []byte("ref"), 0o644)
	referenceKernel = func() string { return ref }
	var booted []string
	probeBoot = func(_ context.Context, kernel string) ProbeResult {
		booted = append(booted, filepath.Base(kernel))
		return ProbeResult{Accel: runner.AccelTCG, Reason: "fake probe: silent"}
	}
	cache := t.TempDir()
	ctx := context.Background()
	for i, k := range []string{"a", "b", "c"} {
		p := filepath.Join(dir, k)
		os.WriteFile(p, []byte(k), 0o644)
		r := ProbeAccel(ctx, p, cache)
		if r.Accel != runner.AccelTCG || r.Cached != (i > 0) || !strings.Contains(r.Reason, ref) {
			t.Errorf("kernel %s: %+v", k, r)
		}
	}
	if strings.Join(booted, " ") != "vmlinuz-ref" {
		t.Errorf("probe booted %q, want the reference kernel once", booted)
	}
}

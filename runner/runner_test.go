package runner

import (
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
	"testing"
	"time"

	"github.com/kregress/kregress/images"
	"github.com/kregress/kregress/internal/testkernel"
)

// agentImage builds an initramfs with the agent, the network modules and
// an optional extra tree (which may replace /init).
func agentImage(t *testing.T, modDir, extra string) string {
	t.Helper()
	return agentImageWith(t, modDir, extra, "virtio_pci", "virtio_net", "button")
}

// agentImageWith is agentImage with the modules given.
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

func TestProbeAccelIsQuickAndCached(t *testing.T) {
	kernel, _ := testkernel.DebianWithModules(t)
	cache := t.TempDir()
	start := time.Now()
	r := ProbeAccel(context.Background(), kernel, cache)
	took := time.Since(start)
	t.Logf("probe chose %s in %v: %s", r.Accel, took.Round(time.Millisecond), r.Reason)
	if r.Accel != AccelKVM && r.Accel != AccelTCG {
		t.Fatalf("probe chose %q", r.Accel)
	}
	if r.Reason == "" {
		t.Error("probe gave no reason")
	}
	// The probe's own timeout bounds it, whatever KVM does here.
	if took > probeTimeout+3*time.Second {
		t.Errorf("probe took %v, its timeout is %v", took, probeTimeout)
	}
	r2 := ProbeAccel(context.Background(), kernel, cache)
	if !r2.Cached || r2.Accel != r.Accel {
		t.Errorf("second probe: cached=%v accel=%s, want the cached %s", r2.Cached, r2.Accel, r.Accel)
	}
}

func TestBootRunCommandsAndTimeout(t *testing.T) {
	kernel, modDir := testkernel.DebianWithModules(t)
	img := agentImage(t, modDir, "")
	dir := t.TempDir()
	ctx := context.Background()
	var lines int
	inst, err := Start(ctx, Config{Kernel: kernel, Initrd: img, Dir: dir, Agent: true, Accel: AccelTCG,
		StopOnCrash: true, OnLine: func(Line) { lines++ }})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	t.Logf("booted in %v", inst.BootTime())
	if inst.BootProtocol() != "bzimage" {
		t.Errorf("boot protocol %s without a cache directory, want bzimage", inst.BootProtocol())
	}
	st, err := inst.Status()
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
	// A command past its timeout is killed, and the guest still answers.
	start := time.Now()
	r, err = inst.Run(ctx, "sleep 600", nil, 2*time.Second)
	if !errors.Is(err, ErrTimeout) || !r.TimedOut {
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
	if o, _ := inst.Outcome(); o != OutcomeStopped {
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
func startPVH(t *testing.T, kernel, img string) (*Instance, string) {
	t.Helper()
	dir := t.TempDir()
	inst, err := Start(context.Background(), Config{Kernel: kernel, Initrd: img, Dir: dir, Agent: true, Accel: AccelTCG,
		StopOnCrash: true, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close() })
	if inst.BootProtocol() != "pvh" {
		t.Errorf("boot protocol %s, want pvh for Debian's kernel", inst.BootProtocol())
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
	var ve *VMError
	if !errors.As(err, &ve) || ve.Outcome != OutcomeCrash {
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
	inst, err := Start(context.Background(), Config{Kernel: kernel, Initrd: img, Dir: dir, Accel: AccelTCG,
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
	if o != OutcomeNoOutput {
		t.Fatalf("outcome %q (%s), want no-output", o, reason)
	}
	t.Logf("%s: %s; tail %q", o, reason, inst.ConsoleTail())
}

func TestBootTimeout(t *testing.T) {
	kernel, modDir := testkernel.DebianWithModules(t)
	img := agentImage(t, modDir, silentTree(t))
	_, err := Start(context.Background(), Config{Kernel: kernel, Initrd: img, Dir: t.TempDir(), Accel: AccelTCG,
		Agent: true, BootTimeout: 8 * time.Second})
	var ve *VMError
	if !errors.As(err, &ve) || ve.Outcome != OutcomeBootTimeout {
		t.Fatalf("want boot-timeout, got %v", err)
	}
	if len(ve.Tail) == 0 {
		t.Error("no console tail with the boot timeout")
	}
}

func TestCancelStopsQEMU(t *testing.T) {
	kernel, modDir := testkernel.DebianWithModules(t)
	img := agentImage(t, modDir, "")
	ctx, cancel := context.WithCancel(context.Background())
	inst, err := Start(ctx, Config{Kernel: kernel, Initrd: img, Dir: t.TempDir(), Accel: AccelTCG, Agent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	pid := inst.cmd.Process.Pid
	port := inst.Port()
	tmp := inst.tmpDir
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
	if _, err := Start(context.Background(), Config{Kernel: "/nonexistent/bzImage", Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "/nonexistent/bzImage") {
		t.Errorf("missing kernel: %v", err)
	}
	kernel, _ := testkernel.DebianWithModules(t)
	if _, err := Start(context.Background(), Config{Kernel: kernel, Dir: t.TempDir(), Accel: "hvf"}); err == nil || !strings.Contains(err.Error(), "hvf") {
		t.Errorf("bad accel: %v", err)
	}
}

// TestPowerdown presses the ACPI power button through QMP: the agent
// hears it (Debian's button module is in the image) and powers off.
func TestPowerdown(t *testing.T) {
	kernel, modDir := testkernel.DebianWithModules(t)
	inst, dir := startPVH(t, kernel, agentImage(t, modDir, ""))
	start := time.Now()
	if !inst.Powerdown(60 * time.Second) {
		o, why := inst.Outcome()
		t.Fatalf("the guest did not power off: %s (%s)", o, why)
	}
	t.Logf("powered off in %v", time.Since(start))
	if o, why := inst.Outcome(); o != OutcomeStopped {
		t.Errorf("outcome %s (%s), want stopped", o, why)
	}
	console, _ := os.ReadFile(filepath.Join(dir, "console.log"))
	for _, want := range []string{"ACPI power button pressed", "reboot: Power down"} {
		if !strings.Contains(string(console), want) {
			t.Errorf("console lacks %q", want)
		}
	}
}

// TestPowerdownUnheard: without the button driver nobody hears the
// button; Powerdown says so and kills QEMU after its timeout.
func TestPowerdownUnheard(t *testing.T) {
	kernel, modDir := testkernel.DebianWithModules(t)
	inst, dir := startPVH(t, kernel, agentImageWith(t, modDir, "", "virtio_pci", "virtio_net"))
	if inst.Powerdown(3 * time.Second) {
		t.Fatal("Powerdown says the guest powered off without a button driver")
	}
	select {
	case <-inst.Done():
	default:
		t.Fatal("QEMU still runs after Powerdown")
	}
	if o, why := inst.Outcome(); o != OutcomeStopped || !strings.Contains(why, "killed") {
		t.Errorf("outcome %s (%s), want stopped, killed", o, why)
	}
	console, _ := os.ReadFile(filepath.Join(dir, "console.log"))
	if !strings.Contains(string(console), "no ACPI power button") {
		t.Error("the agent did not say it cannot hear the power button")
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kregress/kregress/internal/proc"
	"github.com/kregress/kregress/internal/testkernel"
	"github.com/kregress/kregress/results"
)

func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := mainWithArgs(args, &out, &errb)
	return code, out.String(), errb.String()
}

// onlyRun returns the single run directory under root.
func onlyRun(t *testing.T, root string) (string, *results.Result) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(root, "*", "result.json"))
	if len(dirs) != 1 {
		t.Fatalf("want one run dir under %s, got %v", root, dirs)
	}
	d := filepath.Dir(dirs[0])
	r, err := results.ReadResult(d)
	if err != nil {
		t.Fatal(err)
	}
	return d, r
}

func TestRunSmokeEndToEnd(t *testing.T) {
	kernel := testkernel.Debian(t)
	out := t.TempDir()
	code, stdout, stderr := runMain(t, "run", "--kernel", kernel, "--suite", "smoke", "--out", out)
	t.Logf("stdout:\n%s", stdout)
	if code != exitOK {
		t.Fatalf("exit %d\nstderr: %s", code, stderr)
	}
	dir, r := onlyRun(t, out)
	if r.Status != results.StatusPass || r.BootSeconds <= 0 || (r.Accel != "tcg" && r.Accel != "kvm") {
		t.Errorf("result: status %s boot %.1f accel %q", r.Status, r.BootSeconds, r.Accel)
	}
	// Debian's kernel has CONFIG_PVH: the default boot enters its vmlinux directly.
	if r.Boot != "pvh" {
		t.Errorf("result boot %q, want pvh", r.Boot)
	}
	if len(r.Tests) != 7 {
		t.Fatalf("want 7 smoke tests, got %d", len(r.Tests))
	}
	for _, tt := range r.Tests {
		if tt.Status != results.StatusPass {
			t.Errorf("test %s: %s (%s)", tt.Name, tt.Status, tt.Message)
		}
		if _, err := os.Stat(filepath.Join(dir, tt.Output)); err != nil {
			t.Errorf("test %s output: %v", tt.Name, err)
		}
	}
	if !strings.Contains(stdout, "status   PASS") {
		t.Errorf("summary lacks the status line")
	}
	// result.json is the whole index: it parses as JSON with the keys users script against.
	raw, _ := os.ReadFile(filepath.Join(dir, "result.json"))
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"status", "accel", "kernel", "boot_seconds", "boot", "tests", "crashes"} {
		if _, ok := m[k]; !ok {
			t.Errorf("result.json lacks %q", k)
		}
	}
}

func writeSuite(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "suite.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunCrashStopsEarly(t *testing.T) {
	kernel := testkernel.Debian(t)
	suite := writeSuite(t, `name: crash
target: none
tests:
  - name: before
    run: echo fine
  - name: sysrq-crash
    run: echo c > /proc/sysrq-trigger; sleep 600
    timeout: 10m
  - name: after
    run: echo never
`)
	out := t.TempDir()
	start := time.Now()
	code, stdout, stderr := runMain(t, "run", "--kernel", kernel, "--suite", suite, "--out", out)
	took := time.Since(start)
	t.Logf("took %v; stdout:\n%s", took, stdout)
	if code != exitFail {
		t.Fatalf("exit %d, want 1\nstderr: %s", code, stderr)
	}
	dir, r := onlyRun(t, out)
	if r.Status != results.StatusCrash || len(r.Crashes) == 0 {
		t.Fatalf("status %s, crashes %v", r.Status, r.Crashes)
	}
	if r.Tests[0].Status != "pass" || r.Tests[1].Status != "crash" || r.Tests[2].Status != "skip" {
		t.Errorf("test verdicts: %+v", r.Tests)
	}
	// Stopped at the crash, not after the crash test's 10-minute timeout.
	if took > 5*time.Minute {
		t.Errorf("run took %v: the VM was not stopped at the crash", took)
	}
	console, _ := os.ReadFile(filepath.Join(dir, "console.log"))
	lines := strings.Split(string(console), "\n")
	c := r.Crashes[0]
	if c.StartLine < 1 || c.EndLine > len(lines) || c.StartLine > c.EndLine {
		t.Fatalf("bad crash range %d-%d", c.StartLine, c.EndLine)
	}
	if span := strings.Join(lines[c.StartLine-1:c.EndLine], "\n"); !strings.Contains(span, "sysrq") {
		t.Errorf("crash %q range lacks the sysrq oops:\n%s", c.Title, span)
	}
}

func TestRunJobsInParallel(t *testing.T) {
	kernel := testkernel.Debian(t)
	out := t.TempDir()
	code, stdout, stderr := runMain(t, "run", "--kernel", kernel, "--suite", "smoke,smoke", "--jobs", "2", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "*", "result.json"))
	if len(dirs) != 2 {
		t.Fatalf("want 2 run dirs, got %v", dirs)
	}
}

func TestRunBadInput(t *testing.T) {
	code, _, stderr := runMain(t, "run", "--kernel", "/nonexistent/vmlinuz")
	if code != exitInfra || !strings.Contains(stderr, "/nonexistent/vmlinuz") {
		t.Errorf("missing kernel: exit %d, %q", code, stderr)
	}
	kernel := testkernel.Debian(t)
	bad := writeSuite(t, "name: x\ntests:\n  - name: a\n    rnu: true\n")
	out := t.TempDir()
	code, _, stderr = runMain(t, "run", "--kernel", kernel, "--suite", bad, "--out", out)
	if code != exitInfra || !strings.Contains(stderr, bad+":4:5:") {
		t.Errorf("malformed suite: exit %d, %q", code, stderr)
	}
	code, _, stderr = runMain(t, "run", "--kernel", kernel, "--boot", "uefi", "--out", out)
	if code != exitInfra || !strings.Contains(stderr, `--boot "uefi"`) {
		t.Errorf("bad --boot: exit %d, %q", code, stderr)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("bad input left %d entries in the output dir", len(ents))
	}
	code, _, _ = runMain(t, "run", "--help")
	if code != exitOK {
		t.Errorf("--help exit %d", code)
	}
}

// TestSIGTERMLeavesNoQEMU kills kregress mid-run and checks its QEMU is gone.
func TestSIGTERMLeavesNoQEMU(t *testing.T) {
	kernel := testkernel.Debian(t)
	bin := filepath.Join(t.TempDir(), "kregress")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	suite := writeSuite(t, "name: long\ntarget: none\ntests:\n  - name: sleep\n    run: sleep 600\n    timeout: 15m\n")
	out := t.TempDir()
	cmd := exec.Command(bin, "run", "--kernel", kernel, "--suite", suite, "--out", out)
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Wait until the guest agent is up, so the VM is fully running.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		logs, _ := filepath.Glob(filepath.Join(out, "*", "console.log"))
		if len(logs) == 1 {
			if data, _ := os.ReadFile(logs[0]); bytes.Contains(data, []byte("kregress-agent: ready")) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the VM never became ready")
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	qemus := descendantsNamed(cmd.Process.Pid, "qemu-system-x86")
	if len(qemus) == 0 {
		t.Fatal("found no QEMU below kregress")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("kregress did not exit within 30s of SIGTERM")
	}
	for _, pid := range qemus {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Errorf("QEMU pid %d survived kregress's SIGTERM", pid)
		}
	}
	_, r := onlyRun(t, out)
	if r.Status != results.StatusInfra || !strings.Contains(r.Reason, "SIGTERM") {
		t.Errorf("after SIGTERM: status %s reason %q", r.Status, r.Reason)
	}
}

// descendantsNamed lists the live processes below ppid (QEMU runs under
// a guard of internal/proc) whose command starts with name.
func descendantsNamed(ppid int, name string) []int {
	var out []int
	for _, pid := range proc.Descendants(ppid) {
		comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(comm)), name[:min(len(name), 15)]) {
			out = append(out, pid)
		}
	}
	return out
}

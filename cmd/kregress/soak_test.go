//go:build soak

// The soak: many smoke runs, each ended at random by SIGINT, SIGTERM or
// SIGKILL to kregress, or SIGKILL to its QEMU, or left alone; then checks
// that nothing was left behind and that every record says what happened.
// It is a documented command, not part of `make test`:
//
//	go test -tags soak -run TestSoak -v -timeout 3h ./cmd/kregress
//	KREGRESS_SOAK_N=10 go test -tags soak -run TestSoak -v ./cmd/kregress
package main

import (
	"encoding/json"
	"fmt"
	"math/rand"
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

// tagged lists the live processes whose environment carries tag
// (KEY=VALUE), as "pid command line".
func tagged(tag string) []string {
	key, value, _ := strings.Cut(tag, "=")
	var found []string
	for _, pid := range proc.Tagged(key, value) {
		found = append(found, strings.TrimSpace(proc.Describe([]int{pid})))
	}
	return found
}

// qemuOf finds the QEMU started under the kregress process pid.
func qemuOf(tag string) int {
	for _, l := range tagged(tag) {
		if strings.Contains(l, "qemu-system") {
			pid, _ := strconv.Atoi(strings.Fields(l)[0])
			return pid
		}
	}
	return 0
}

func TestSoak(t *testing.T) {
	kernel := testkernel.Debian(t)
	n := 50
	if v, err := strconv.Atoi(os.Getenv("KREGRESS_SOAK_N")); err == nil && v > 0 {
		n = v
	}
	work := t.TempDir()
	bin := filepath.Join(work, "kregress")
	for _, b := range [][]string{
		{"go", "build", "-o", bin, "."},
		{"go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(work, "kregress-agent"), "../kregress-agent"},
	} {
		c := exec.Command(b[0], b[1:]...)
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", b, err, out)
		}
	}
	tmp := filepath.Join(work, "tmp")
	os.MkdirAll(tmp, 0o755)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	actions := []string{"none", "SIGINT", "SIGTERM", "SIGKILL", "kill-qemu"}
	type tally struct{ runs, bad int }
	tallies := map[string]*tally{}
	var problems []string
	unrecorded := 0 // SIGKILLed runs whose directory has no result.json
	start := time.Now()
	for i := 0; i < n; i++ {
		action := actions[rng.Intn(len(actions))]
		delay := time.Duration(300+rng.Intn(9700)) * time.Millisecond
		tag := fmt.Sprintf("KREGRESS_SOAK_TAG=%d-%d", os.Getpid(), i)
		out := filepath.Join(work, "out", strconv.Itoa(i))
		cmd := exec.Command(bin, "run", "--kernel", kernel, "--suite", "smoke", "--accel", "tcg", "--out", out)
		cmd.Env = append(os.Environ(), tag, "TMPDIR="+tmp)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		acted := false
		select {
		case err = <-done:
		case <-time.After(delay):
			acted = true
			switch action {
			case "SIGINT":
				cmd.Process.Signal(syscall.SIGINT)
			case "SIGTERM":
				cmd.Process.Signal(syscall.SIGTERM)
			case "SIGKILL":
				cmd.Process.Signal(syscall.SIGKILL)
			case "kill-qemu":
				if q := qemuOf(tag); q > 0 {
					syscall.Kill(q, syscall.SIGKILL)
				} else {
					acted = false // not booted yet or already gone
				}
			default:
				acted = false
			}
			err = <-done
		}
		if !acted {
			action = "none"
		}
		code := cmd.ProcessState.ExitCode()
		tl := tallies[action]
		if tl == nil {
			tl = &tally{}
			tallies[action] = tl
		}
		tl.runs++
		fail := func(format string, a ...any) {
			tl.bad++
			problems = append(problems, fmt.Sprintf("run %d (%s after %v, exit %d): %s", i, action, delay, code, fmt.Sprintf(format, a...)))
		}
		_ = err
		// What was left behind, right after this run.
		time.Sleep(300 * time.Millisecond)
		if left := tagged(tag); len(left) > 0 {
			fail("processes left: %v", left)
		}
		dirs, _ := filepath.Glob(filepath.Join(out, "*"))
		var res *results.Result
		for _, d := range dirs {
			data, rerr := os.ReadFile(filepath.Join(d, "result.json"))
			if rerr != nil {
				if action != "SIGKILL" {
					fail("%s has no result.json", d)
				} else {
					unrecorded++
				}
				continue
			}
			var r results.Result
			if jerr := json.Unmarshal(data, &r); jerr != nil {
				fail("%s/result.json is not JSON: %v", d, jerr)
				continue
			}
			res = &r
			for _, tt := range r.Tests {
				if tt.Status != results.StatusPass && tt.Message == "" {
					fail("test %s is %s without a reason", tt.Name, tt.Status)
				}
			}
		}
		switch action {
		case "none":
			if code != 0 || res == nil || res.Status != results.StatusPass {
				fail("want exit 0 and pass: %v %s", res != nil, stderr.String())
			}
		case "SIGINT", "SIGTERM":
			if code == 0 && res != nil && res.Status == results.StatusPass {
				break // finished as the signal came
			}
			if code != 2 || res == nil || res.Status != results.StatusInfra || !strings.Contains(strings.ToLower(res.Reason), strings.ToLower(action)) {
				r := ""
				if res != nil {
					r = string(res.Status) + ": " + res.Reason
				}
				fail("want exit 2 and infra naming %s: %s", action, r)
			}
		case "SIGKILL":
			if code != -1 {
				fail("want killed, got exit %d", code)
			}
		case "kill-qemu":
			if code == 0 && res != nil && res.Status == results.StatusPass {
				break // QEMU was already on its way out
			}
			if code != 2 || res == nil || res.Status != results.StatusInfra || res.Reason == "" {
				r := ""
				if res != nil {
					r = string(res.Status) + ": " + res.Reason
				}
				fail("want exit 2 and infra with a reason: %s", r)
			}
		}
		t.Logf("run %2d: %-9s after %5.1fs: exit %d", i, action, delay.Seconds(), code)
	}
	// A last, untouched run sweeps what killed runs could not clean.
	final := exec.Command(bin, "run", "--kernel", kernel, "--suite", "smoke", "--accel", "tcg", "--out", filepath.Join(work, "out", "final"))
	final.Env = append(os.Environ(), "TMPDIR="+tmp)
	if out, err := final.CombinedOutput(); err != nil {
		problems = append(problems, fmt.Sprintf("final run: %v\n%s", err, out))
	}
	left, _ := os.ReadDir(tmp)
	for _, e := range left {
		problems = append(problems, "left in TMPDIR after the final run: "+e.Name())
	}
	// No port can be left: every listener (the SSH forward, the simulated
	// server) belongs to a tagged process, checked after each run.
	t.Logf("%d runs in %v; %d SIGKILLed runs left a run directory without result.json", n, time.Since(start).Round(time.Second), unrecorded)
	for a, tl := range tallies {
		t.Logf("  %-9s %3d runs, %3d with problems", a, tl.runs, tl.bad)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

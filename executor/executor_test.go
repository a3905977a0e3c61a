package executor

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/internal/testkernel"
	"github.com/kregress/kregress/job"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/suites"
)

func TestUnitRoundTrip(t *testing.T) {
	dir := t.TempDir()
	u := Unit{ID: "step-1-run-0", Kind: KindRun, Run: &RunUnit{Kernel: "/k", Suite: "smoke", Out: dir, BootTimeout: Duration(90 * time.Second), Repeat: 3}}
	p := filepath.Join(dir, "u.json")
	if err := WriteUnit(p, u); err != nil {
		t.Fatal(err)
	}
	got, err := ReadUnit(p)
	if err != nil {
		t.Fatal(err)
	}
	u.Version = Version
	if !reflect.DeepEqual(got, u) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, u)
	}
	data, _ := os.ReadFile(p)
	if !strings.Contains(string(data), `"boot_timeout": "1m30s"`) {
		t.Errorf("durations are not written as Go durations:\n%s", data)
	}
	if OutcomePath(p) != filepath.Join(dir, "u.outcome.json") {
		t.Errorf("OutcomePath(%s) = %s", p, OutcomePath(p))
	}
}

func TestReadUnitRejects(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"future version":    `{"version": 99, "id": "a", "kind": "run", "run": {"kernel": "k", "suite": "s", "out": "o"}}`,
		"no kind":           `{"version": 1, "id": "a"}`,
		"slash in id":       `{"version": 1, "id": "a/b", "kind": "build", "build": {"source": "s"}}`,
		"run without suite": `{"version": 1, "id": "a", "kind": "run", "run": {"kernel": "k", "out": "o"}}`,
		"not json":          `{`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := ReadUnit(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err %v, want an error naming %s", name, err, p)
		}
	}
	if _, err := ReadUnit(filepath.Join(dir, "x", "missing.json")); err == nil {
		t.Error("a missing unit file was accepted")
	}
}

func smokeUnits(t *testing.T, out string, n int) []Unit {
	kernel := testkernel.Debian(t)
	var us []Unit
	for i := 0; i < n; i++ {
		us = append(us, Unit{ID: "run-" + string(rune('a'+i)), Kind: KindRun, Run: &RunUnit{
			Kernel: kernel, Suite: "smoke", Out: out, Label: "smoke", Repeat: i, Accel: "tcg",
		}})
	}
	return us
}

// resultShape is the set of keys of a result.json, nested, with values
// dropped: what must be the same whichever executor ran the unit.
func resultShape(t *testing.T, runDir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(runDir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				keys = append(keys, prefix+k)
				walk(prefix+k+".", x)
			}
		case []any:
			for _, x := range v {
				walk(prefix+"[].", x)
			}
		}
	}
	walk("", m)
	sort.Strings(keys)
	return dedupe(keys)
}

func dedupe(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func TestLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	out := t.TempDir()
	units := smokeUnits(t, out, 2)
	var seen []Progress
	var mu sync.Mutex
	outs, err := (&Local{Jobs: 2}).Do(context.Background(), units, func(p Progress) { mu.Lock(); seen = append(seen, p); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.Status != "pass" || o.RunDir == "" || o.Node == "" || o.Accel != "tcg" {
			t.Errorf("local smoke: %+v", o)
		}
	}
	if last := seen[len(seen)-1]; last.Done != 2 || last.Running != 0 || last.Pending != 0 {
		t.Errorf("last progress %+v", last)
	}
}

// slurmEnv returns the environment that reaches the one-node cluster
// scripts/slurm-local.sh starts, or skips (fails under CI=true).
func slurmEnv(t *testing.T) []string {
	t.Helper()
	conf := os.Getenv("SLURM_CONF")
	if conf == "" {
		conf = "/var/tmp/kregress-slurm/slurm.conf"
	}
	env := []string{"SLURM_CONF=" + conf}
	c := exec.Command("sinfo", "-h", "-o", "%T")
	c.Env = append(os.Environ(), env...)
	out, err := c.Output()
	if err != nil || !strings.Contains(string(out), "idle") && !strings.Contains(string(out), "mix") && !strings.Contains(string(out), "alloc") {
		msg := "no Slurm cluster up (run scripts/slurm-local.sh up)"
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: sinfo: %v %s", msg, err, out)
		}
		t.Skip(msg)
	}
	return env
}

// slurmUp returns an executor for the one-node cluster, with kregress and
// its agent built into a fresh shared dir.
func slurmUp(t *testing.T) *Slurm {
	t.Helper()
	env := slurmEnv(t)
	shared := t.TempDir()
	bin := filepath.Join(shared, "kregress")
	for _, b := range [][]string{
		{"go", "build", "-o", bin, "github.com/kregress/kregress/cmd/kregress"},
		{"go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(shared, "kregress-agent"), "github.com/kregress/kregress/cmd/kregress-agent"},
	} {
		c := exec.Command(b[0], b[1:]...)
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", b, err, out)
		}
	}
	return &Slurm{SharedDir: shared, Binary: bin, Env: env, Poll: 300 * time.Millisecond, RunCPUs: 1, RunMemMB: 1500}
}

// The same smoke units through Slurm and locally: the same statuses and
// the same result.json shape; each outcome names the node and accelerator.
func TestSlurmMatchesLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU through Slurm")
	}
	s := slurmUp(t)
	out := filepath.Join(s.SharedDir, "out")
	units := smokeUnits(t, out, 2)
	start := time.Now()
	outs, err := s.Do(context.Background(), units, func(p Progress) { t.Logf("slurm: %s", p) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2 smoke runs through slurm: %v", time.Since(start))
	local, err := (&Local{Jobs: 2}).Do(context.Background(), smokeUnits(t, t.TempDir(), 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	for i, o := range outs {
		if o.Status != local[i].Status || o.Status != "pass" {
			t.Errorf("unit %d: slurm %q (%s), local %q (%s)", i, o.Status, o.Error, local[i].Status, local[i].Error)
		}
		if o.Node != host || o.Accel != "tcg" || o.Attempts != 1 {
			t.Errorf("unit %d: node %q accel %q attempts %d", i, o.Node, o.Accel, o.Attempts)
		}
		if a, b := resultShape(t, o.RunDir), resultShape(t, local[i].RunDir); !reflect.DeepEqual(a, b) {
			t.Errorf("result.json shapes differ:\nslurm %v\nlocal %v", a, b)
		}
	}
}

// scancel of an array task mid-run: retried once, then counted as infra;
// never a test result.
func TestSlurmKilledUnitRetriedThenInfra(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU through Slurm")
	}
	s := slurmUp(t)
	s.Retries = 1
	units := smokeUnits(t, filepath.Join(s.SharedDir, "out"), 1)
	// A suite that keeps the VM busy long enough to be cancelled.
	suite := filepath.Join(s.SharedDir, "sleep.yaml")
	os.WriteFile(suite, []byte("name: sleepy\ntarget: none\ntests:\n  - name: sleep\n    run: sleep 60\n    timeout: 2m\n"), 0o644)
	units[0].Run.Suite = suite
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	killed := map[string]bool{}
	var mu sync.Mutex
	go func() {
		for ctx.Err() == nil {
			time.Sleep(500 * time.Millisecond)
			c := exec.Command("squeue", "-h", "-r", "-o", "%i %T", "-n", "kregress-run")
			c.Env = append(os.Environ(), s.Env...)
			out, _ := c.Output()
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				f := strings.Fields(l)
				if len(f) != 2 || f[1] != "RUNNING" {
					continue
				}
				mu.Lock()
				if !killed[f[0]] {
					killed[f[0]] = true
					time.Sleep(2 * time.Second) // let it boot a little
					k := exec.Command("scancel", f[0])
					k.Env = c.Env
					k.Run()
				}
				mu.Unlock()
			}
		}
	}()
	outs, err := s.Do(ctx, units, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := outs[0]
	if o.Status != StatusInfra || o.Attempts != 2 || !strings.Contains(o.Error, "without a result") {
		t.Errorf("cancelled twice: %+v, want infra after 2 attempts", o)
	}
	assertNoQEMU(t)
}

// Cancelling the coordinator cancels its jobs: squeue is empty afterwards
// and no QEMU is left on the node.
func TestSlurmCancelLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU through Slurm")
	}
	s := slurmUp(t)
	units := smokeUnits(t, filepath.Join(s.SharedDir, "out"), 3)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(3 * time.Second)
		cancel()
	}()
	_, err := s.Do(ctx, units, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Do after cancel: %v", err)
	}
	c := exec.Command("squeue", "-h", "-n", "kregress-run")
	c.Env = append(os.Environ(), s.Env...)
	if out, _ := c.Output(); strings.TrimSpace(string(out)) != "" {
		t.Errorf("jobs still queued after cancel:\n%s", out)
	}
	assertNoQEMU(t)
}

func assertNoQEMU(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := exec.Command("pgrep", "-f", "kregress-vm-").Output()
		if strings.TrimSpace(string(out)) == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("QEMU left running: pids %s", out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Bad setup is one clear error before anything is submitted.
func TestSlurmCheck(t *testing.T) {
	shared := t.TempDir()
	bin := filepath.Join(shared, "kregress")
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(shared, "kregress-agent"), []byte("#!/bin/sh\n"), 0o755)
	ctx := context.Background()

	t.Run("no sbatch", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		err := (&Slurm{SharedDir: shared, Binary: bin}).Check(ctx)
		if err == nil || !strings.Contains(err.Error(), "sbatch is not on PATH") {
			t.Errorf("err %v", err)
		}
	})
	if _, err := exec.LookPath("sbatch"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sbatch missing: scripts/slurm-local.sh up installs Slurm")
		}
		t.Skip("sbatch missing")
	}
	t.Run("controller does not answer", func(t *testing.T) {
		conf := filepath.Join(t.TempDir(), "slurm.conf")
		os.WriteFile(conf, []byte("ClusterName=x\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=1\n"), 0o644)
		err := (&Slurm{SharedDir: shared, Binary: bin, Env: []string{"SLURM_CONF=" + conf}}).Check(ctx)
		if err == nil || !strings.Contains(err.Error(), "does not answer") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("unwritable shared dir", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		os.WriteFile(file, nil, 0o644)
		err := (&Slurm{SharedDir: filepath.Join(file, "shared"), Binary: bin}).Check(ctx)
		if err == nil || !strings.Contains(err.Error(), "shared dir") {
			t.Errorf("err %v", err)
		}
	})
	env := slurmEnv(t)
	t.Run("no agent beside the binary", func(t *testing.T) {
		lone := filepath.Join(t.TempDir(), "kregress")
		os.WriteFile(lone, []byte("#!/bin/sh\n"), 0o755)
		err := (&Slurm{SharedDir: shared, Binary: lone, Env: env}).Check(ctx)
		if err == nil || !strings.Contains(err.Error(), "no guest agent") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("no binary", func(t *testing.T) {
		err := (&Slurm{SharedDir: shared, Binary: filepath.Join(shared, "nope"), Env: env}).Check(ctx)
		if err == nil || !strings.Contains(err.Error(), "nope") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("no such partition", func(t *testing.T) {
		s := slurmUp(t)
		s.Partition = "no-such-partition"
		err := s.Check(ctx)
		if err == nil || !strings.Contains(err.Error(), `partition "no-such-partition" does not exist`) {
			t.Errorf("err %v", err)
		}
		entries, _ := os.ReadDir(s.SharedDir)
		for _, e := range entries {
			if e.Name() == "batches" {
				t.Error("a batch folder was made before the check failed")
			}
		}
	})
}

const linuxSource = "/usr/src/linux-source-6.1.tar.xz"

// A series step built and run through Slurm gets the verdict it gets
// locally: build/testdata/series/good.mbox (three harmless patches) on
// linux-source-6.1 with the qemu-minimal and lockdep presets, whose
// builds build/'s tests leave in the cache.
func TestSlurmSeriesMatchesLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kernels and boots QEMU through Slurm")
	}
	if _, err := os.Stat(linuxSource); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing: install Debian's linux-source-6.1", linuxSource)
		}
		t.Skip(linuxSource + " missing")
	}
	s := slurmUp(t)
	smoke, err := suites.Load("smoke")
	if err != nil {
		t.Fatal(err)
	}
	series, _ := filepath.Abs("../build/testdata/series/good.mbox")
	spec := func(ex job.Executor) job.SeriesSpec {
		return job.SeriesSpec{
			Build:  build.Request{Source: linuxSource, Series: series, Configs: []string{"qemu-minimal", "lockdep"}},
			Suites: []*suites.Suite{smoke}, Out: filepath.Join(s.SharedDir, "out"), Executor: ex,
			Run:      job.Spec{Accel: "tcg"},
			Progress: func(f string, a ...any) { t.Logf(f, a...) },
		}
	}
	slurmRes, _, err := job.TestSeries(context.Background(), spec(ForJob(s, t.Logf)))
	if err != nil {
		t.Fatal(err)
	}
	localRes, _, err := job.TestSeries(context.Background(), spec(nil))
	if err != nil {
		t.Fatal(err)
	}
	if slurmRes.Status != localRes.Status || slurmRes.Status != results.StatusPass {
		t.Errorf("series status: slurm %s (%s), local %s (%s)", slurmRes.Status, slurmRes.Reason, localRes.Status, localRes.Reason)
	}
	if len(slurmRes.Patches) != len(localRes.Patches) || slurmRes.Base.Verdict != localRes.Base.Verdict {
		t.Fatalf("steps differ: slurm base %s %d patches, local base %s %d patches", slurmRes.Base.Verdict, len(slurmRes.Patches), localRes.Base.Verdict, len(localRes.Patches))
	}
	for i := range slurmRes.Patches {
		if a, b := slurmRes.Patches[i], localRes.Patches[i]; a.Verdict != b.Verdict || !reflect.DeepEqual(a.Tests, b.Tests) {
			t.Errorf("patch %d: slurm %s %v, local %s %v", a.Index, a.Verdict, a.Tests, b.Verdict, b.Tests)
		}
	}
	for _, run := range slurmRes.Base.Runs {
		r, err := results.ReadResult(run)
		if err != nil || r.Host == "" || r.Accel != "tcg" {
			t.Errorf("slurm run %s: host %q accel %q (%v)", run, r.Host, r.Accel, err)
		}
	}
}

// A build unit names its files by absolute path: the node runs it in the
// batch folder, where relative paths mean nothing.
func TestBuildUnitPathsAbsolute(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	os.WriteFile("frag.config", []byte("CONFIG_X=y\n"), 0o644)
	os.MkdirAll("series", 0o755)
	for in, want := range map[string]string{
		"frag.config": filepath.Join(dir, "frag.config"),
		"series":      filepath.Join(dir, "series"),
		"lockdep":     "lockdep",
		"tinyconfig":  "tinyconfig",
		"v6.1..topic": "v6.1..topic",
		"/abs/path":   "/abs/path",
	} {
		if got := absPath(in); got != want {
			t.Errorf("absPath(%q) = %q, want %q", in, got, want)
		}
	}
}

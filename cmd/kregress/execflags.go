package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kregress/kregress/executor"
	"github.com/kregress/kregress/images"
	"github.com/kregress/kregress/internal/cache"
	"github.com/kregress/kregress/job"
	"github.com/kregress/kregress/results"
)

// execFlags choose where builds and VMs run: here (local) or as jobs of a
// Slurm cluster that shares a directory. test, run, bisect and nightly
// take them.
type execFlags struct {
	kind                 string
	sharedDir            string
	partition, account   string
	qos                  string
	buildCPUs, runCPUs   int
	buildMemMB, runMemMB int
	buildTime, runTime   time.Duration
	sbatchArgs           stringList
	retries              int
}

func (e *execFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&e.kind, "executor", "local", "where builds and VMs run: local, or slurm (jobs of a Slurm cluster; see docs/cluster.md)")
	fs.StringVar(&e.sharedDir, "shared-dir", "", "slurm: a `DIR` every node sees (the cluster filesystem): units, results, the build cache and kregress itself go there")
	fs.StringVar(&e.partition, "partition", "", "slurm: partition")
	fs.StringVar(&e.account, "account", "", "slurm: account")
	fs.StringVar(&e.qos, "qos", "", "slurm: quality of service")
	fs.IntVar(&e.buildCPUs, "build-cpus", 0, "slurm: CPUs per build job (default: the partition's)")
	fs.IntVar(&e.buildMemMB, "build-mem", 4096, "slurm: memory per build job, MiB")
	fs.DurationVar(&e.buildTime, "build-time", 2*time.Hour, "slurm: time limit of a build job")
	fs.IntVar(&e.runCPUs, "run-cpus", 2, "slurm: CPUs per VM job")
	fs.IntVar(&e.runMemMB, "run-mem", 2048, "slurm: memory per VM job, MiB (the guest's plus QEMU's own)")
	fs.DurationVar(&e.runTime, "run-time", time.Hour, "slurm: time limit of a VM job")
	fs.Var(&e.sbatchArgs, "sbatch-arg", "slurm: extra sbatch `ARG`, given as it is (repeatable)")
	fs.IntVar(&e.retries, "retries", 2, "slurm: how often a unit the scheduler killed (preemption, node failure, time limit) is submitted again before it counts as infra")
}

// check validates the flags without touching anything.
func (e *execFlags) check() error {
	switch e.kind {
	case "local":
		if e.sharedDir != "" {
			return errors.New("--shared-dir is for --executor slurm")
		}
		return nil
	case "slurm":
		if e.sharedDir == "" {
			return errors.New("--executor slurm needs --shared-dir (a directory every node sees)")
		}
		if e.retries < 0 || e.buildMemMB < 0 || e.runMemMB < 0 || e.buildCPUs < 0 || e.runCPUs < 0 {
			return errors.New("--retries, --*-cpus and --*-mem must not be negative")
		}
		return nil
	}
	return fmt.Errorf("--executor %q: want local or slurm", e.kind)
}

// executor returns the job.Executor the flags choose (nil for local) and
// the low-level executor. For Slurm it checks the cluster (commands,
// shared dir, partition) before anything is submitted, stages kregress
// and its guest agent on the shared dir, and puts the build cache there
// unless KREGRESS_CACHE says otherwise.
func (e *execFlags) executor(ctx context.Context, progress func(string, ...any)) (job.Executor, executor.Executor, error) {
	if e.kind != "slurm" {
		return nil, nil, nil
	}
	shared, err := filepath.Abs(e.sharedDir)
	if err != nil {
		return nil, nil, err
	}
	s := &executor.Slurm{SharedDir: shared, Partition: e.partition, Account: e.account, QOS: e.qos,
		BuildCPUs: e.buildCPUs, RunCPUs: e.runCPUs, BuildMemMB: e.buildMemMB, RunMemMB: e.runMemMB,
		BuildTime: e.buildTime, RunTime: e.runTime, Extra: e.sbatchArgs, Retries: e.retries}
	// Check what needs no binary first, so bad input changes nothing.
	if err := s.CheckCluster(ctx); err != nil {
		return nil, nil, err
	}
	bin, err := stageBinaries(ctx, shared)
	if err != nil {
		return nil, nil, err
	}
	s.Binary = bin
	if err := s.Check(ctx); err != nil {
		return nil, nil, err
	}
	if os.Getenv("KREGRESS_CACHE") == "" {
		os.Setenv("KREGRESS_CACHE", filepath.Join(shared, "cache"))
	}
	return executor.ForJob(s, progress), s, nil
}

// stageBinaries copies this kregress and its guest agent to
// SHARED/bin/<digest>/, where every node finds them.
func stageBinaries(ctx context.Context, shared string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	root, err := cache.Root()
	if err != nil {
		return "", err
	}
	agent, err := images.AgentBinary(ctx, root)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, p := range []string{self, agent} {
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	dir := filepath.Join(shared, "bin", hex.EncodeToString(h.Sum(nil))[:16])
	bin := filepath.Join(dir, "kregress")
	if _, err := os.Stat(filepath.Join(dir, images.AgentName)); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("stage kregress on the shared dir: %w", err)
	}
	// The agent last: its presence says the folder is complete.
	for _, c := range [][2]string{{self, bin}, {agent, filepath.Join(dir, images.AgentName)}} {
		src, dst := c[0], c[1]
		if err := results.CopyFile(src, dst+".tmp"); err != nil {
			return "", fmt.Errorf("stage kregress on the shared dir: %w", err)
		}
		if err := os.Rename(dst+".tmp", dst); err != nil {
			return "", fmt.Errorf("stage kregress on the shared dir: %w", err)
		}
		if err := os.Chmod(dst, 0o755); err != nil {
			return "", err
		}
	}
	return bin, nil
}

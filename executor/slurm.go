package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kregress/kregress/internal/proc"

	"github.com/kregress/kregress/images"
)

// Slurm executes units as jobs of a Slurm cluster: each build as a job of
// its own, the runs of a batch as one job array (SLURM_ARRAY_TASK_ID picks
// the unit) that depends on the builds (--dependency=afterok). Unit files,
// outcomes and job logs live in a batch folder under SharedDir, which
// every node must see at the same path; so must the kregress binary
// (Binary) and every input a unit names.
type Slurm struct {
	// SharedDir is a directory every node sees (the cluster filesystem).
	SharedDir string
	// Binary is the kregress executable the nodes run ("kregress worker
	// UNIT.json"); it must be visible to every node at this path.
	Binary string
	// Partition, Account and QOS are passed to sbatch when set.
	Partition, Account, QOS string
	// Per build and per run (VM): CPUs, memory in MiB, time limit.
	BuildCPUs, RunCPUs   int
	BuildMemMB, RunMemMB int
	BuildTime, RunTime   time.Duration
	// Extra are more sbatch arguments, given as they are.
	Extra []string
	// Retries is how often a unit the scheduler killed (preemption, node
	// failure, time limit) is submitted again before it counts as infra.
	Retries int
	// Poll is how often squeue is asked (default 2 s).
	Poll time.Duration
	// Env is added to the environment of sbatch, squeue, scancel (tests
	// set SLURM_CONF here).
	Env []string
}

// Name returns "slurm".
func (s *Slurm) Name() string { return "slurm" }

// Check verifies, before anything is submitted, that the Slurm commands
// are there, the shared directory is writable, the partition (when one is
// named) exists, and the binary and its guest agent are there.
func (s *Slurm) Check(ctx context.Context) error {
	if err := s.CheckCluster(ctx); err != nil {
		return err
	}
	if s.Binary == "" {
		return errors.New("slurm executor: no kregress binary for the nodes")
	}
	if st, err := os.Stat(s.Binary); err != nil || st.IsDir() {
		return fmt.Errorf("slurm executor: kregress binary %s: not a file", s.Binary)
	}
	agent := filepath.Join(filepath.Dir(s.Binary), images.AgentName)
	if st, err := os.Stat(agent); err != nil || st.IsDir() {
		return fmt.Errorf("slurm executor: no guest agent %s beside the kregress binary (the nodes pack it into every image; `make` builds both)", agent)
	}
	return nil
}

// CheckCluster is Check without the binary: the commands, the shared
// directory and the partition.
func (s *Slurm) CheckCluster(ctx context.Context) error {
	for _, c := range []string{"sbatch", "squeue", "scancel", "scontrol"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("slurm executor: %s is not on PATH (install Slurm's client commands, Debian: slurm-client)", c)
		}
	}
	if s.SharedDir == "" {
		return errors.New("slurm executor: --shared-dir is required (a directory every node sees)")
	}
	if err := os.MkdirAll(s.SharedDir, 0o755); err != nil {
		return fmt.Errorf("slurm executor: shared dir: %w", err)
	}
	probe, err := os.CreateTemp(s.SharedDir, ".kregress-write-test-*")
	if err != nil {
		return fmt.Errorf("slurm executor: shared dir %s is not writable: %w", s.SharedDir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if out, err := s.cmd(pctx, "scontrol", "ping"); err != nil || !strings.Contains(out, "UP") {
		return fmt.Errorf("slurm executor: the cluster's controller does not answer (scontrol ping: %s); is SLURM_CONF right?", strings.Join(strings.Fields(out), " "))
	}
	if s.Partition != "" {
		out, err := s.cmd(ctx, "scontrol", "-o", "show", "partition", s.Partition)
		if err != nil || !strings.Contains(out, "PartitionName="+s.Partition) {
			return fmt.Errorf("slurm executor: partition %q does not exist (scontrol: %s)", s.Partition, strings.TrimSpace(out))
		}
	}
	return nil
}

// Do submits the batch, follows it until every unit has an outcome, and
// returns the outcomes. Cancelling ctx cancels every job it submitted
// (scancel) and waits until squeue no longer lists them.
func (s *Slurm) Do(ctx context.Context, units []Unit, progress func(Progress)) ([]Outcome, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	if err := s.Check(ctx); err != nil {
		return nil, err
	}
	batchRoot := filepath.Join(s.SharedDir, "batches")
	if err := os.MkdirAll(batchRoot, 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(batchRoot, time.Now().UTC().Format("20060102-150405-"))
	if err != nil {
		return nil, err
	}
	b := &batch{s: s, dir: dir, units: units, outs: make([]Outcome, len(units)), tries: make([]int, len(units))}
	for i, u := range units {
		if err := WriteUnit(unitFile(dir, i), u); err != nil {
			return nil, err
		}
	}
	defer b.cancelAll()
	var builds, runs []int
	for i, u := range units {
		if u.Kind == KindBuild {
			builds = append(builds, i)
		} else {
			runs = append(runs, i)
		}
	}
	var buildJobs []string
	for _, i := range builds {
		id, err := b.submit(ctx, []int{i}, nil)
		if err != nil {
			return b.outs, err
		}
		buildJobs = append(buildJobs, id)
	}
	if len(runs) > 0 {
		if _, err := b.submit(ctx, runs, buildJobs); err != nil {
			return b.outs, err
		}
	}
	return b.outs, b.follow(ctx, progress)
}

// batch is one Do call's state.
type batch struct {
	s     *Slurm
	dir   string
	units []Unit
	outs  []Outcome
	tries []int
	// jobs maps a submitted job ("123" or "123_4") to the unit index.
	jobs map[string]int
	// live are the job IDs submitted and not yet seen finished.
	live map[string]bool
}

// submit sends units as one job (one index) or one array, after deps.
func (b *batch) submit(ctx context.Context, idx []int, deps []string) (string, error) {
	s := b.s
	kind := b.units[idx[0]].Kind
	args := []string{"--parsable", "--job-name=kregress-" + string(kind), "--chdir=" + b.dir, "--kill-on-invalid-dep=yes"}
	cpus, mem, lim := s.RunCPUs, s.RunMemMB, s.RunTime
	if kind == KindBuild {
		cpus, mem, lim = s.BuildCPUs, s.BuildMemMB, s.BuildTime
	}
	if cpus > 0 {
		args = append(args, fmt.Sprintf("--cpus-per-task=%d", cpus))
	}
	if mem > 0 {
		args = append(args, fmt.Sprintf("--mem=%dM", mem))
	}
	if lim > 0 {
		args = append(args, fmt.Sprintf("--time=%d", int((lim+time.Minute-1)/time.Minute)))
	}
	for _, kv := range [][2]string{{"--partition", s.Partition}, {"--account", s.Account}, {"--qos", s.QOS}} {
		if kv[1] != "" {
			args = append(args, kv[0]+"="+kv[1])
		}
	}
	if len(deps) > 0 {
		args = append(args, "--dependency=afterok:"+strings.Join(deps, ":"))
	}
	args = append(args, s.Extra...)
	var script string
	if len(idx) == 1 && kind == KindBuild {
		args = append(args, "--output="+filepath.Join(b.dir, fmt.Sprintf("unit-%d.log", idx[0])))
		script = fmt.Sprintf("exec %s worker %s\n", shellQuote(s.Binary), shellQuote(unitFile(b.dir, idx[0])))
	} else {
		ids := make([]string, len(idx))
		for k, i := range idx {
			ids[k] = strconv.Itoa(i)
		}
		args = append(args, "--array="+strings.Join(ids, ","), "--output="+filepath.Join(b.dir, "unit-%a.log"))
		script = fmt.Sprintf("exec %s worker %s/unit-${SLURM_ARRAY_TASK_ID}.json\n", shellQuote(s.Binary), shellQuote(b.dir))
	}
	out, err := s.cmdIn(ctx, "#!/bin/sh\n"+script, "sbatch", args...)
	if err != nil {
		return "", fmt.Errorf("sbatch %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out))
	}
	id := strings.TrimSpace(strings.SplitN(strings.TrimSpace(out), ";", 2)[0])
	if _, err := strconv.Atoi(id); err != nil {
		return "", fmt.Errorf("sbatch printed %q, not a job id", out)
	}
	if b.jobs == nil {
		b.jobs, b.live = map[string]int{}, map[string]bool{}
	}
	b.live[id] = true
	for _, i := range idx {
		b.tries[i]++
		if len(idx) == 1 && kind == KindBuild {
			b.jobs[id] = i
		} else {
			b.jobs[fmt.Sprintf("%s_%d", id, i)] = i
		}
	}
	return id, nil
}

// follow polls until every unit has an outcome, resubmitting units the
// scheduler killed.
func (b *batch) follow(ctx context.Context, progress func(Progress)) error {
	poll := b.s.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	done := make([]bool, len(b.units))
	last := Progress{Total: -1}
	for {
		states, err := b.queue(ctx)
		if err != nil {
			return err
		}
		p := Progress{Total: len(b.units)}
		for job, i := range b.jobs {
			if done[i] {
				continue
			}
			if o, err := ReadOutcome(OutcomePath(unitFile(b.dir, i))); err == nil {
				o.Attempts = b.tries[i]
				b.outs[i] = o
				done[i] = true
				continue
			}
			st, queued := states[job]
			if queued {
				continue
			}
			// Gone from the queue without an outcome: killed, failed, or
			// a dependency that can never be met.
			why := b.jobState(ctx, job)
			if b.tries[i] <= b.s.Retries && why != "DependencyNeverSatisfied" {
				delete(b.jobs, job)
				if _, err := b.submit(ctx, []int{i}, nil); err != nil {
					return err
				}
				continue
			}
			_ = st
			b.outs[i] = Outcome{Version: Version, ID: b.units[i].ID, Kind: b.units[i].Kind, Status: StatusInfra,
				Error: fmt.Sprintf("slurm job %s ended without a result (%s) after %d attempt(s)", job, why, b.tries[i]), Attempts: b.tries[i]}
			done[i] = true
		}
		for job, i := range b.jobs {
			if done[i] {
				p.Done++
			} else if states[job] == "RUNNING" || states[job] == "COMPLETING" {
				p.Running++
			} else {
				p.Pending++
			}
		}
		if p != last {
			progress(p)
			last = p
		}
		if p.Done == len(b.units) {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(poll):
		}
	}
}

// queue returns the state of every job of this batch squeue still lists,
// by "ID" or "ID_TASK".
func (b *batch) queue(ctx context.Context) (map[string]string, error) {
	var ids []string
	for id := range b.live {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	states := map[string]string{}
	if len(ids) == 0 {
		return states, nil
	}
	out, err := b.s.cmd(ctx, "squeue", "-h", "-r", "-o", "%i %T", "-j", strings.Join(ids, ","))
	if err != nil {
		// squeue fails for job ids it no longer knows; ask one by one.
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		for _, id := range ids {
			o, err := b.s.cmd(ctx, "squeue", "-h", "-r", "-o", "%i %T", "-j", id)
			if err != nil {
				delete(b.live, id)
				continue
			}
			parseQueue(o, states)
		}
		return states, nil
	}
	parseQueue(out, states)
	return states, nil
}

func parseQueue(out string, states map[string]string) {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			states[f[0]] = f[1]
		}
	}
}

// jobState asks scontrol why a job ended (its JobState and Reason).
func (b *batch) jobState(ctx context.Context, job string) string {
	out, err := b.s.cmd(ctx, "scontrol", "-o", "show", "job", job)
	if err != nil {
		return "no longer known to the scheduler"
	}
	var state, reason string
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "JobState="); ok {
			state = v
		}
		if v, ok := strings.CutPrefix(f, "Reason="); ok {
			reason = v
		}
	}
	if reason == "DependencyNeverSatisfied" {
		return reason
	}
	if reason != "" && reason != "None" {
		return state + ", " + reason
	}
	return state
}

// cancelAll cancels every job the batch submitted and waits (bounded)
// until squeue lists none of them.
func (b *batch) cancelAll() {
	if len(b.live) == 0 {
		return
	}
	var ids []string
	for id := range b.live {
		ids = append(ids, id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b.s.cmd(ctx, "scancel", ids...)
	for ctx.Err() == nil {
		out, err := b.s.cmd(ctx, "squeue", "-h", "-o", "%i", "-j", strings.Join(ids, ","))
		if err != nil || strings.TrimSpace(out) == "" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *Slurm) cmd(ctx context.Context, name string, args ...string) (string, error) {
	return s.cmdIn(ctx, "", name, args...)
}

func (s *Slurm) cmdIn(ctx context.Context, stdin, name string, args ...string) (string, error) {
	c := proc.Command(ctx, name, args...)
	c.Env = append(os.Environ(), s.Env...)
	if stdin != "" {
		c.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return out.String(), err
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

package agent

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kregress/kregress/agent/protocol"
)

// workloads maps a workload name to its implementation; its names are
// protocol.Workloads (TestWorkloadsAreTheProtocols). Each runs in the
// current directory (the suite's target filesystem) unless -dir says
// otherwise, prints a human summary and a metrics line, and exits 0 when its
// own verdict is pass, 1 when it saw unexpected errors, 2 on bad flags.
var workloads = map[string]func(w *workload) error{
	"stat":        statStorm,
	"lookup":      parallelLookup,
	"readdir":     readdirWalk,
	"racer":       racer,
	"mount-cycle": mountCycle,
}

func workloadNames() []string {
	var n []string
	for k := range workloads {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// workload is the shared state of one workload run: its flags, counters
// and error tally.
type workload struct {
	name     string
	fs       *flag.FlagSet
	threads  int
	duration time.Duration
	dir      string
	out      io.Writer

	ops      atomic.Int64
	mu       sync.Mutex
	expected map[string]int64 // errno name -> count, errors the workload expects
	bad      map[string]int64 // errno name -> count, errors that fail the verdict
	badShown int
	extra    map[string]any
	pending  []string // arguments, parsed once the workload declared its flags
}

func runWorkload(args []string, stdout, stderr io.Writer) int {
	impl, ok := workloads[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "kregress-agent: unknown workload %q (have %v)\n", args[0], workloadNames())
		return 2
	}
	w := &workload{name: args[0], out: stdout, expected: map[string]int64{}, bad: map[string]int64{}, extra: map[string]any{}}
	w.fs = flag.NewFlagSet(args[0], flag.ContinueOnError)
	w.fs.SetOutput(stderr)
	w.fs.IntVar(&w.threads, "threads", 4, "worker threads")
	w.fs.DurationVar(&w.duration, "duration", 5*time.Second, "how long to run")
	w.fs.StringVar(&w.dir, "dir", ".", "directory to work in")
	w.pending = args[1:]
	start := time.Now()
	err := impl(w)
	if err != nil {
		if errors.Is(err, errBadFlags) {
			return 2
		}
		fmt.Fprintf(stderr, "%s: %v\n", w.name, err)
		w.fail("setup", err)
	}
	return w.report(time.Since(start))
}

var errBadFlags = errors.New("bad flags")

// parse parses the pending arguments once the workload has declared its
// own flags.
func (w *workload) parse() error {
	if err := w.fs.Parse(w.pending); err != nil {
		return errBadFlags
	}
	if w.threads < 1 {
		w.threads = 1
	}
	if err := os.Chdir(w.dir); err != nil {
		return err
	}
	return nil
}

// errnoName names an error's errno (ENOENT) or gives its text.
func errnoName(err error) string {
	var en syscall.Errno
	if errors.As(err, &en) {
		if n, ok := errnoNames[en]; ok {
			return n
		}
		return fmt.Sprintf("errno%d", int(en))
	}
	return err.Error()
}

var errnoNames = map[syscall.Errno]string{
	syscall.ENOENT: "ENOENT", syscall.EEXIST: "EEXIST", syscall.ENOTEMPTY: "ENOTEMPTY",
	syscall.EISDIR: "EISDIR", syscall.ENOTDIR: "ENOTDIR", syscall.EIO: "EIO",
	syscall.ESTALE: "ESTALE", syscall.EINVAL: "EINVAL", syscall.EPERM: "EPERM",
	syscall.EACCES: "EACCES", syscall.EBUSY: "EBUSY", syscall.ENOMEM: "ENOMEM",
	syscall.ENOSPC: "ENOSPC", syscall.EMLINK: "EMLINK", syscall.ELOOP: "ELOOP",
	syscall.EXDEV: "EXDEV", syscall.EAGAIN: "EAGAIN", syscall.EINTR: "EINTR",
	syscall.ETIMEDOUT: "ETIMEDOUT", syscall.ENAMETOOLONG: "ENAMETOOLONG",
	syscall.EBADF: "EBADF", syscall.ENODEV: "ENODEV", syscall.ENOTCONN: "ENOTCONN",
	syscall.ESHUTDOWN: "ESHUTDOWN", syscall.ECONNREFUSED: "ECONNREFUSED",
}

// note counts an error the workload expects (a racer's ENOENT).
func (w *workload) note(err error) {
	n := errnoName(err)
	w.mu.Lock()
	w.expected[n]++
	w.mu.Unlock()
}

// fail counts an unexpected error; the first few are printed.
func (w *workload) fail(op string, err error) {
	n := errnoName(err)
	w.mu.Lock()
	w.bad[n]++
	show := w.badShown < 10
	w.badShown++
	w.mu.Unlock()
	if show {
		fmt.Fprintf(w.out, "%s: unexpected: %s: %v\n", w.name, op, err)
	}
}

// check counts err against the set of errnos allowed for op.
func (w *workload) check(op string, err error, allowed ...syscall.Errno) {
	if err == nil {
		return
	}
	for _, a := range allowed {
		if errors.Is(err, a) {
			w.note(err)
			return
		}
	}
	w.fail(op, err)
}

// forEach runs fn on every thread until the duration passes.
func (w *workload) forEach(fn func(thread int, rng *rand.Rand, iter int)) {
	deadline := time.Now().Add(w.duration)
	var wg sync.WaitGroup
	for t := 0; t < w.threads; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(t) + time.Now().UnixNano()))
			for i := 0; time.Now().Before(deadline); i++ {
				fn(t, rng, i)
			}
		}(t)
	}
	wg.Wait()
}

func (w *workload) report(elapsed time.Duration) int {
	ops := w.ops.Load()
	var badTotal int64
	for _, c := range w.bad {
		badTotal += c
	}
	verdict := "pass"
	if badTotal > 0 {
		verdict = "fail"
	}
	m := map[string]any{
		"workload": w.name, "threads": w.threads, "seconds": elapsed.Seconds(),
		"ops": ops, "ops_per_sec": float64(ops) / elapsed.Seconds(),
		"expected_errors": w.expected, "unexpected_errors": w.bad, "verdict": verdict,
	}
	for k, v := range w.extra {
		m[k] = v
	}
	fmt.Fprintf(w.out, "%s: %d ops in %.1fs (%.0f ops/s), %d threads; expected errors %v; unexpected errors %v; verdict %s\n",
		w.name, ops, elapsed.Seconds(), float64(ops)/elapsed.Seconds(), w.threads, w.expected, w.bad, verdict)
	data, _ := json.Marshal(m)
	fmt.Fprintf(w.out, "%s%s\n", protocol.MetricsPrefix, data)
	if verdict != "pass" {
		return 1
	}
	return 0
}

// dropDentries asks the kernel to forget cached dentries and inodes, so
// the next lookups reach the filesystem. It is best effort.
func dropDentries() {
	syscall.Sync()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0)
}

// statStorm: threads stat existing and missing names, shared and private.
func statStorm(w *workload) error {
	names := w.fs.Int("names", 16, "existing files to stat (created unless -use lists names)")
	missing := w.fs.Int("missing", 4, "missing names to stat")
	use := w.fs.String("use", "", "comma-separated existing names to stat instead of creating files")
	if err := w.parse(); err != nil {
		return err
	}
	var existing []string
	if *use != "" {
		existing = strings.Split(*use, ",")
	} else {
		for i := 0; i < *names; i++ {
			n := fmt.Sprintf("stat-%d", i)
			if err := os.WriteFile(n, []byte(n), 0o644); err != nil {
				return err
			}
			existing = append(existing, n)
		}
		defer func() {
			for _, n := range existing {
				os.Remove(n)
			}
		}()
	}
	w.forEach(func(t int, rng *rand.Rand, i int) {
		// Even threads walk the same order (same names at once); odd
		// threads pick at random.
		var n string
		isMissing := *missing > 0 && i%5 == 4
		switch {
		case isMissing:
			n = fmt.Sprintf("missing-%d", rng.Intn(*missing))
		case t%2 == 0:
			n = existing[i%len(existing)]
		default:
			n = existing[rng.Intn(len(existing))]
		}
		_, err := os.Lstat(n)
		w.ops.Add(1)
		switch {
		case isMissing && errors.Is(err, syscall.ENOENT):
			w.note(err)
		case isMissing && err == nil:
			w.fail("stat "+n, errors.New("a missing name exists"))
		case err != nil:
			w.fail("stat "+n, err)
		}
	})
	return nil
}

// parallelLookup: in rounds, make names uncached (create, or drop the
// dentry cache), then release all threads at once to look up the same
// names: two lookups for one parent/name at the same moment, the race of
// the seed's bug.
func parallelLookup(w *workload) error {
	use := w.fs.String("use", "", "comma-separated existing names to look up instead of creating them")
	perRound := w.fs.Int("names", 4, "names created per round")
	drop := w.fs.Bool("drop-caches", true, "drop the dentry cache before each round")
	if err := w.parse(); err != nil {
		return err
	}
	deadline := time.Now().Add(w.duration)
	rounds := 0
	for round := 0; time.Now().Before(deadline); round++ {
		var names []string
		if *use != "" {
			names = strings.Split(*use, ",")
		} else {
			for i := 0; i < *perRound; i++ {
				n := fmt.Sprintf("lk-%d-%d", round, i)
				if err := os.WriteFile(n, nil, 0o644); err != nil {
					return err
				}
				names = append(names, n)
			}
		}
		if *drop {
			dropDentries()
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for t := 0; t < w.threads; t++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for _, n := range names {
					_, err := os.Lstat(n)
					w.ops.Add(1)
					if err != nil {
						w.fail("lookup "+n, err)
					}
					_, err = os.Lstat(n + ".missing")
					w.ops.Add(1)
					w.check("lookup "+n+".missing", errOrExists(err), syscall.ENOENT)
				}
			}()
		}
		close(start)
		wg.Wait()
		if *use == "" {
			for _, n := range names {
				if err := os.Remove(n); err != nil {
					w.fail("unlink "+n, err)
				}
			}
		}
		rounds++
	}
	w.extra["rounds"] = rounds
	return nil
}

// errOrExists turns "a missing name was found" into an error.
func errOrExists(err error) error {
	if err == nil {
		return errors.New("a missing name exists")
	}
	return err
}

// readdirWalk: build a tree (unless -use-existing), then walk it with
// readdir and lstat of every entry, again and again, checking that every
// walk sees the same number of entries.
func readdirWalk(w *workload) error {
	dirs := w.fs.Int("dirs", 8, "directories to create")
	files := w.fs.Int("files", 32, "files per directory")
	existing := w.fs.Bool("use-existing", false, "walk what is there instead of creating a tree")
	if err := w.parse(); err != nil {
		return err
	}
	root := "readdir-tree"
	if *existing {
		root = "."
	} else {
		for d := 0; d < *dirs; d++ {
			dp := filepath.Join(root, fmt.Sprintf("d%d", d))
			if err := os.MkdirAll(dp, 0o755); err != nil {
				return err
			}
			for f := 0; f < *files; f++ {
				if err := os.WriteFile(filepath.Join(dp, fmt.Sprintf("f%d", f)), []byte("x"), 0o644); err != nil {
					return err
				}
			}
		}
		defer os.RemoveAll(root)
	}
	var want atomic.Int64
	want.Store(-1)
	var walks atomic.Int64
	w.forEach(func(t int, rng *rand.Rand, i int) {
		var n int64
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				w.fail("walk "+p, err)
				return nil
			}
			if _, err := os.Lstat(p); err != nil {
				w.fail("lstat "+p, err)
			}
			n++
			w.ops.Add(1)
			return nil
		})
		if err != nil {
			w.fail("walk", err)
		}
		walks.Add(1)
		if !want.CompareAndSwap(-1, n) && want.Load() != n && !*existing {
			w.fail("walk", fmt.Errorf("saw %d entries, an earlier walk saw %d", n, want.Load()))
		}
	})
	w.extra["walks"] = walks.Load()
	w.extra["entries"] = want.Load()
	return nil
}

// racer: like Lustre's racer, threads run random namespace operations over
// a small set of names for the duration. Failures that racing operations
// cause (ENOENT, EEXIST, ...) are expected; others fail the verdict. Its
// real job is to make the kernel crash if it can.
func racer(w *workload) error {
	nnames := w.fs.Int("names", 16, "size of the name set")
	if err := w.parse(); err != nil {
		return err
	}
	root := "racer"
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(root)
	name := func(rng *rand.Rand) string {
		return filepath.Join(root, fmt.Sprintf("n%d", rng.Intn(*nnames)))
	}
	racy := []syscall.Errno{syscall.ENOENT, syscall.EEXIST, syscall.ENOTEMPTY, syscall.EISDIR,
		syscall.ENOTDIR, syscall.EINVAL, syscall.EMLINK, syscall.ELOOP, syscall.EBUSY, syscall.EPERM}
	ops := []struct {
		name string
		fn   func(rng *rand.Rand) error
	}{
		{"create", func(rng *rand.Rand) error {
			f, err := os.OpenFile(name(rng), os.O_CREATE|os.O_WRONLY, 0o644)
			if err == nil {
				f.Write([]byte("racer"))
				f.Close()
			}
			return err
		}},
		{"mkdir", func(rng *rand.Rand) error { return os.Mkdir(name(rng), 0o755) }},
		{"unlink", func(rng *rand.Rand) error { return syscall.Unlink(name(rng)) }},
		{"rmdir", func(rng *rand.Rand) error { return syscall.Rmdir(name(rng)) }},
		{"rename", func(rng *rand.Rand) error { return syscall.Rename(name(rng), name(rng)) }},
		{"link", func(rng *rand.Rand) error { return syscall.Link(name(rng), name(rng)) }},
		{"symlink", func(rng *rand.Rand) error {
			return syscall.Symlink(filepath.Base(name(rng)), name(rng))
		}},
		{"readdir", func(rng *rand.Rand) error {
			_, err := os.ReadDir(root)
			return err
		}},
		{"stat", func(rng *rand.Rand) error {
			_, err := os.Stat(name(rng))
			return err
		}},
		{"chmod", func(rng *rand.Rand) error { return syscall.Chmod(name(rng), 0o600|uint32(rng.Intn(0o100))) }},
	}
	counts := make([]atomic.Int64, len(ops))
	w.forEach(func(t int, rng *rand.Rand, i int) {
		k := rng.Intn(len(ops))
		err := ops[k].fn(rng)
		counts[k].Add(1)
		w.ops.Add(1)
		w.check(ops[k].name, err, racy...)
	})
	per := map[string]int64{}
	for k, o := range ops {
		per[o.name] = counts[k].Load()
	}
	w.extra["ops_by_kind"] = per
	return nil
}

// mountCycle: mount, stat, umount, in a loop, on one thread.
func mountCycle(w *workload) error {
	fstype := w.fs.String("type", "tmpfs", "filesystem type")
	source := w.fs.String("source", "kregress-cycle", "mount source")
	options := w.fs.String("options", "", "mount options")
	target := w.fs.String("target", "/mnt/kregress-cycle", "mount point")
	statName := w.fs.String("stat", "", "a name under the mount to stat each cycle (must exist)")
	if err := w.parse(); err != nil {
		return err
	}
	w.threads = 1
	if err := os.MkdirAll(*target, 0o755); err != nil {
		return err
	}
	cycles := 0
	deadline := time.Now().Add(w.duration)
	for time.Now().Before(deadline) {
		if err := syscall.Mount(*source, *target, *fstype, 0, *options); err != nil {
			w.fail("mount", err)
			break
		}
		if _, err := os.Stat(*target); err != nil {
			w.fail("stat root", err)
		}
		if *statName != "" {
			if _, err := os.Lstat(filepath.Join(*target, *statName)); err != nil {
				w.fail("stat "+*statName, err)
			}
		}
		if _, err := os.Lstat(filepath.Join(*target, "kregress-missing")); !errors.Is(err, syscall.ENOENT) {
			w.fail("stat missing", errOrExists(err))
		}
		if err := syscall.Unmount(*target, 0); err != nil {
			w.fail("umount", err)
			break
		}
		cycles++
		w.ops.Add(1)
	}
	w.extra["cycles"] = cycles
	return nil
}

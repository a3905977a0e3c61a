package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func init() { workloads["server-churn"] = serverChurn }

// serverChurn is the server-churn workload, for a Lustre mount served by
// kregress's simulated server: the names it is given change on the server
// behind the client's back (through the control API in
// $KREGRESS_LUSTRE_CTL: lock revocations, renames to NAME.moved and back,
// unlinks) while the client's threads look them up.
//
// Without -mix the threads go in lock step: every round releases them at
// once on the same names (and their .moved forms), so several lookups of
// one parent/name race each other and the server's blocking ASTs, and the
// client keeps finding dentries whose LOOKUP lock is gone (the aliases
// ll_find_alias reuses). With -mix each thread picks a random operation
// (lstat, stat, readdir of the parent, open and close, access) on a random
// name, racer-style.
//
// Checks: a name that resolves must be the inode it was at the start
// (renames keep the inode; any other inode is a wrong alias); ENOENT is
// expected while names move; once the churn stops, every kept name must
// resolve again to its inode, its .moved form and every unlinked name must
// be gone, within -settle.
func serverChurn(w *workload) error {
	ctl := w.fs.String("ctl", os.Getenv("KREGRESS_LUSTRE_CTL"), "the simulated server's control API `URL`")
	namesFlag := w.fs.String("names", "", "comma-separated paths (relative to the mount root, as on the server) to churn")
	unlinkFlag := w.fs.String("unlink", "", "comma-separated paths the server unlinks during the run, one at a time")
	mix := w.fs.Bool("mix", false, "random operations instead of lock-step lookups")
	drop := w.fs.Bool("drop-caches", false, "drop the dentry cache before each lock-step round")
	pause := w.fs.Duration("pause", 20*time.Millisecond, "pause between two server-side changes")
	settle := w.fs.Duration("settle", 10*time.Second, "how long the client may show a change after the churn stopped")
	if err := w.parse(); err != nil {
		return err
	}
	if *ctl == "" {
		fmt.Fprintln(w.fs.Output(), "server-churn: no control API: give -ctl or set KREGRESS_LUSTRE_CTL")
		return errBadFlags
	}
	names := splitList(*namesFlag)
	doomed := splitList(*unlinkFlag)
	if len(names) == 0 {
		fmt.Fprintln(w.fs.Output(), "server-churn: -names is empty")
		return errBadFlags
	}
	c := &churn{w: w, ctl: strings.TrimSuffix(*ctl, "/"), ino: map[string]uint64{}}
	all := append(append([]string{}, names...), doomed...)
	for _, n := range all {
		var st syscall.Stat_t
		if err := syscall.Lstat(n, &st); err != nil {
			return fmt.Errorf("before the churn, lstat %s: %w", n, err)
		}
		c.ino[n] = st.Ino
	}
	// The server side: one goroutine changes the names until the
	// lookups are done, always leaving a kept name in place.
	stop := make(chan struct{})
	serverDone := make(chan struct{})
	var changes atomic.Int64
	var serverErr error
	go func() {
		defer close(serverDone)
		rng := rand.New(rand.NewSource(time.Now().UnixNano()))
		left := append([]string{}, doomed...)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			n := names[rng.Intn(len(names))]
			var err error
			switch k := rng.Intn(4); {
			case k == 0:
				err = c.post("revoke", "path", "/"+n)
			case k == 1:
				err = c.post("revoke", "path", "/"+path.Dir(n))
			default:
				if err = c.post("rename", "from", "/"+n, "to", "/"+n+".moved"); err == nil {
					time.Sleep(*pause)
					err = c.post("rename", "from", "/"+n+".moved", "to", "/"+n)
				}
			}
			if err == nil && len(left) > 0 && i%8 == 7 {
				err = c.post("unlink", "path", "/"+left[0])
				if err == nil {
					c.gone.Store(left[0], true)
					left = left[1:]
				}
			}
			if err != nil {
				serverErr = err
				return
			}
			changes.Add(1)
			time.Sleep(*pause)
		}
	}()
	lookups := append(append([]string{}, all...), suffixed(names, ".moved")...)
	if *mix {
		c.mixed(lookups)
	} else {
		c.lockStep(lookups, *drop)
	}
	close(stop)
	<-serverDone
	w.extra["server_changes"] = changes.Load()
	if serverErr != nil {
		return fmt.Errorf("server side: %w", serverErr)
	}
	// Whatever the churn left unlinked is unlinked now, so that the
	// final state is known.
	for _, n := range doomed {
		if _, ok := c.gone.Load(n); !ok {
			if err := c.post("unlink", "path", "/"+n); err != nil {
				return fmt.Errorf("server side: %w", err)
			}
			c.gone.Store(n, true)
		}
	}
	// One more revocation of every kept name and its directory, now that
	// no lookup is in flight: the simulated server does not serialize a
	// lock it is granting against a change it makes meanwhile (a real
	// MDT does), so a lookup that raced the last change may hold a lock
	// on a name that has gone. After this the client must converge.
	seen := map[string]bool{}
	for _, n := range names {
		for _, p := range []string{"/" + n, path.Join("/", path.Dir(n))} {
			if seen[p] {
				continue
			}
			seen[p] = true
			if err := c.post("revoke", "path", p); err != nil {
				return fmt.Errorf("server side: %w", err)
			}
		}
	}
	c.settle(names, doomed, *settle)
	return nil
}

// churn is the state server-churn shares between its threads.
type churn struct {
	w    *workload
	ctl  string
	ino  map[string]uint64 // path -> inode at the start
	gone sync.Map          // path -> true once the server unlinked it
}

// base is the name a path had at the start (NAME for NAME.moved).
func (c *churn) base(p string) string {
	if b, ok := strings.CutSuffix(p, ".moved"); ok {
		if _, known := c.ino[b]; known {
			return b
		}
	}
	return p
}

// moves says whether the server moves or unlinks p or a directory above
// it.
func (c *churn) moves(p string) bool {
	for ; p != "." && p != "/" && p != ""; p = path.Dir(p) {
		if _, ok := c.ino[c.base(p)]; ok {
			return true
		}
	}
	return false
}

// lstat looks p up and checks what it finds.
func (c *churn) lstat(p string) {
	var st syscall.Stat_t
	err := syscall.Lstat(p, &st)
	c.w.ops.Add(1)
	c.checkInode("lstat", p, st.Ino, err)
}

// checkInode counts ENOENT as expected and an inode other than the name's
// own as a failure.
func (c *churn) checkInode(op, p string, ino uint64, err error) {
	switch {
	case err == nil:
		b := c.base(p)
		if want := c.ino[b]; ino != want {
			c.w.fail(op+" "+p, fmt.Errorf("inode %d, but %s was inode %d", ino, b, want))
		}
	case errors.Is(err, syscall.ENOENT):
		c.w.note(err)
	default:
		c.w.fail(op+" "+p, err)
	}
}

// lockStep releases every thread at once, round after round, on the same
// names.
func (c *churn) lockStep(names []string, drop bool) {
	deadline := time.Now().Add(c.w.duration)
	rounds := 0
	for time.Now().Before(deadline) {
		if drop {
			dropDentries()
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for t := 0; t < c.w.threads; t++ {
			wg.Add(1)
			go func(t int) {
				defer wg.Done()
				<-start
				for i := range names {
					// Half the threads go backwards, so a name
					// is looked up from both ends of the list.
					if t%2 == 1 {
						i = len(names) - 1 - i
					}
					c.lstat(names[i])
				}
			}(t)
		}
		close(start)
		wg.Wait()
		rounds++
	}
	c.w.extra["rounds"] = rounds
}

// mixed runs random operations on random names.
func (c *churn) mixed(names []string) {
	kinds := []string{"lstat", "stat", "readdir", "open", "access"}
	counts := make([]atomic.Int64, len(kinds))
	c.w.forEach(func(t int, rng *rand.Rand, i int) {
		p := names[rng.Intn(len(names))]
		k := rng.Intn(len(kinds))
		counts[k].Add(1)
		switch kinds[k] {
		case "lstat":
			c.lstat(p)
			return
		case "stat":
			var st syscall.Stat_t
			err := syscall.Stat(p, &st)
			c.w.ops.Add(1)
			c.checkInode("stat", p, st.Ino, err)
			return
		case "readdir":
			f, err := os.Open(path.Dir(p))
			if err == nil {
				_, err = f.Readdirnames(-1)
				f.Close()
			}
			c.w.ops.Add(1)
			switch {
			case errors.Is(err, syscall.ENOENT) && c.moves(path.Dir(p)):
				c.w.note(err)
			case err != nil:
				c.w.fail("readdir "+path.Dir(p), err)
			}
			return
		case "open":
			fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_NOFOLLOW, 0)
			c.w.ops.Add(1)
			if err == nil {
				var st syscall.Stat_t
				err = syscall.Fstat(fd, &st)
				syscall.Close(fd)
				c.checkInode("open", p, st.Ino, err)
				return
			}
			c.checkInode("open", p, 0, err)
		case "access":
			err := syscall.Access(p, 4)
			c.w.ops.Add(1)
			if err != nil {
				c.checkInode("access", p, 0, err)
			}
		}
	})
	per := map[string]int64{}
	for k, n := range kinds {
		per[n] = counts[k].Load()
	}
	c.w.extra["ops_by_kind"] = per
}

// settle waits until the client shows the server's final namespace: kept
// names at their inodes, no .moved forms, unlinked names gone.
func (c *churn) settle(names, doomed []string, within time.Duration) {
	deadline := time.Now().Add(within)
	start := time.Now()
	for {
		var wrong []string
		for _, n := range names {
			var st syscall.Stat_t
			if err := syscall.Lstat(n, &st); err != nil {
				wrong = append(wrong, fmt.Sprintf("%s: %v", n, err))
			} else if st.Ino != c.ino[n] {
				wrong = append(wrong, fmt.Sprintf("%s: inode %d, want %d", n, st.Ino, c.ino[n]))
			}
			if err := syscall.Lstat(n+".moved", &st); !errors.Is(err, syscall.ENOENT) {
				wrong = append(wrong, fmt.Sprintf("%s.moved: still there (%v)", n, err))
			}
		}
		for _, n := range doomed {
			var st syscall.Stat_t
			if err := syscall.Lstat(n, &st); !errors.Is(err, syscall.ENOENT) {
				wrong = append(wrong, fmt.Sprintf("%s: unlinked on the server, still there (%v)", n, err))
			}
		}
		if len(wrong) == 0 {
			c.w.extra["settle_seconds"] = time.Since(start).Seconds()
			return
		}
		if time.Now().After(deadline) {
			for _, s := range wrong {
				c.w.fail("settle", errors.New(s))
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// post calls the control API: POST /op?k=v&... . HTTP/1.0 by hand keeps
// net/http out of the agent.
func (c *churn) post(op string, kv ...string) error {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u, err := url.Parse(c.ctl)
	if err != nil {
		return fmt.Errorf("control API %q: %w", c.ctl, err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return fmt.Errorf("control API %s: %w", op, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	target := "/" + op + "?" + q.Encode()
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.0\r\nHost: %s\r\nContent-Length: 0\r\n\r\n", target, u.Host); err != nil {
		return fmt.Errorf("control API POST %s: %w", target, err)
	}
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("control API POST %s: %w", target, err)
	}
	body, _ := io.ReadAll(br)
	f := strings.Fields(status)
	if len(f) < 2 || f[1] != "200" {
		_, b, _ := strings.Cut(string(body), "\r\n\r\n")
		return fmt.Errorf("control API POST %s: %s %s", target, strings.TrimSpace(status), strings.TrimSpace(b))
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func suffixed(names []string, suffix string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + suffix
	}
	return out
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kregress/kregress/lustre/namespace"
	"github.com/kregress/kregress/lustre/probe"
	"github.com/kregress/kregress/lustre/server"
)

func init() {
	register(command{
		name:    "lustre-server",
		summary: "run the simulated Lustre server (MGS+MDT+OSTs) on the host",
		run:     runLustreServer,
	})
	register(command{
		name:    "lustre-probe",
		summary: "talk to a Lustre server with the Go protocol client (stat, ls, statfs, bench)",
		run:     runLustreProbe,
	})
}

// lustreServerSignals is replaced in tests.
var lustreServerSignals = func(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

func runLustreServer(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("lustre-server", "--listen ADDR --fsname NAME [--tree FILE | --generate SPEC] [--faults FILE] [--log-rpcs]", stderr)
	listen := fs.String("listen", "127.0.0.1:988", "TCP address for LNet (port 0 picks a free one)")
	fsname := fs.String("fsname", "testfs", "file system name (1-8 characters)")
	nid := fs.String("nid", "", "the only server NID to answer to (default: whatever NID the client dialled)")
	tree := fs.String("tree", "", "YAML namespace file (dirs, files, symlinks, links)")
	gen := fs.String("generate", "", "generated namespace, e.g. dirs=100,files=1000[,depth=N,size=N]")
	faultsFile := fs.String("faults", "", "YAML fault rules")
	osts := fs.Int("osts", 1, "number of OSTs in the client configuration")
	logRPCs := fs.Bool("log-rpcs", false, "log one line per RPC to stdout (opcode, xid, status, microseconds)")
	control := fs.String("control", "127.0.0.1:0", `control API address ("off" to disable)`)
	connDelay := fs.Duration("connect-delay", 20*time.Millisecond, "hold back *_CONNECT replies this long (0 for none; see server.Config.ConnectDelay)")
	evict := fs.Duration("evict-after", server.DefaultEvictAfter, "drop the exports and locks of a client whose connection has been gone this long (0: never)")
	idle := fs.Duration("idle-timeout", server.DefaultIdleTimeout, "close a connection that sends nothing this long (0: never)")
	frame := fs.Duration("frame-timeout", server.DefaultFrameTimeout, "close a connection whose message, once begun, takes longer (0: no bound)")
	maxConns := fs.Int("max-conns", server.DefaultMaxConns, "most connections open at once")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "lustre-server: unexpected arguments %q\n", fs.Args())
		return exitInfra
	}
	if *fsname == "" {
		fmt.Fprintln(stderr, "lustre-server: --fsname is empty: give 1-8 letters, digits or _")
		return exitInfra
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"connect-delay", *connDelay}, {"evict-after", *evict}, {"idle-timeout", *idle}, {"frame-timeout", *frame}} {
		if d.v < 0 {
			fmt.Fprintf(stderr, "lustre-server: --%s %v is negative\n", d.name, d.v)
			return exitInfra
		}
	}
	if *maxConns < 1 {
		fmt.Fprintf(stderr, "lustre-server: --max-conns %d: want at least 1\n", *maxConns)
		return exitInfra
	}
	// Zero on the command line means none, where the Config wants a
	// negative value.
	never := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1
		}
		return d
	}
	cfg := server.Config{Listen: *listen, FSName: *fsname, NID: *nid, TreeFile: *tree, Generate: *gen,
		FaultsFile: *faultsFile, OSTs: *osts, Log: stderr, ControlListen: *control, ConnectDelay: never(*connDelay),
		EvictAfter: never(*evict), IdleTimeout: never(*idle), FrameTimeout: never(*frame), MaxConns: *maxConns}
	if *logRPCs {
		cfg.LogRPCs = stdout
	}
	ctx, stop := lustreServerSignals(context.Background())
	defer stop()
	s, err := server.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "lustre-server: %v\n", err)
		return exitInfra
	}
	ctl := "off"
	if a := s.ControlAddr(); a != nil {
		ctl = "http://" + a.String()
	}
	fmt.Fprintf(stderr, "lustre-server: fsname %s listening on %s, control %s, %d inodes\n", *fsname, s.Addr(), ctl, s.Tree().Count())
	<-ctx.Done()
	s.Close()
	return exitOK
}

func runLustreProbe(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("lustre-probe", "--server HOST:PORT --fsname NAME (stat PATH | ls PATH | statfs | bench --op getattr --seconds N)", stderr)
	srv := fs.String("server", "127.0.0.1:988", "server LNet address")
	fsname := fs.String("fsname", "testfs", "file system name")
	nid := fs.String("nid", "", "server NID to dial (default HOST@tcp)")
	timeout := fs.Duration("timeout", 10*time.Second, "per-RPC timeout")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprintln(stderr, "lustre-probe: want a command: stat PATH, ls PATH, statfs or bench")
		return exitInfra
	}
	verb, vargs := rest[0], rest[1:]
	var benchOp string
	var benchSecs float64
	var benchConc int
	switch verb {
	case "stat", "ls":
		if len(vargs) != 1 {
			fmt.Fprintf(stderr, "lustre-probe: %s wants one PATH\n", verb)
			return exitInfra
		}
	case "statfs":
		if len(vargs) != 0 {
			fmt.Fprintln(stderr, "lustre-probe: statfs takes no arguments")
			return exitInfra
		}
	case "bench":
		bfs := newFlagSet("lustre-probe bench", "--op getattr --seconds N [--concurrency N]", stderr)
		op := bfs.String("op", "getattr", "operation: getattr, statfs or lookup")
		secs := bfs.Float64("seconds", 5, "how long to run")
		conc := bfs.Int("concurrency", 16, "requests in flight")
		if code, ok := parseFlags(bfs, vargs, stdout); !ok {
			return code
		}
		if *op != "getattr" && *op != "statfs" && *op != "lookup" {
			fmt.Fprintf(stderr, "lustre-probe: unknown bench op %q (getattr, statfs, lookup)\n", *op)
			return exitInfra
		}
		if *secs <= 0 || *secs > 3600 || *conc < 1 || *conc > 1024 {
			fmt.Fprintln(stderr, "lustre-probe: --seconds must be in (0,3600], --concurrency in [1,1024]")
			return exitInfra
		}
		benchOp, benchSecs, benchConc = *op, *secs, *conc
	default:
		fmt.Fprintf(stderr, "lustre-probe: unknown command %q\n", verb)
		return exitInfra
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := probe.Dial(ctx, probe.Config{Server: *srv, FSName: *fsname, ServerNID: *nid, Timeout: *timeout})
	if err != nil {
		fmt.Fprintf(stderr, "lustre-probe: %v\n", err)
		return exitInfra
	}
	defer c.Close()
	if err := c.Mount(ctx); err != nil {
		fmt.Fprintf(stderr, "lustre-probe: mount: %v\n", err)
		return exitFail
	}
	code := exitOK
	switch verb {
	case "stat":
		a, err := c.Stat(ctx, vargs[0])
		if err != nil {
			fmt.Fprintf(stderr, "lustre-probe: stat %s: %v\n", vargs[0], err)
			code = exitFail
			break
		}
		printAttr(stdout, vargs[0], a)
	case "ls":
		ents, err := c.ReadDir(ctx, vargs[0])
		if err != nil {
			fmt.Fprintf(stderr, "lustre-probe: ls %s: %v\n", vargs[0], err)
			code = exitFail
			break
		}
		for _, e := range ents {
			fmt.Fprintf(stdout, "%-8s %-28s %s\n", typeName(e.Mode), e.FID, e.Name)
		}
	case "statfs":
		st, err := c.Statfs(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "lustre-probe: statfs: %v\n", err)
			code = exitFail
			break
		}
		fmt.Fprintf(stdout, "bsize %d blocks %d bfree %d bavail %d files %d ffree %d namelen %d\n",
			st.Bsize, st.Blocks, st.Bfree, st.Bavail, st.Files, st.Ffree, st.Namelen)
	case "bench":
		n, errs, d := bench(ctx, c, benchOp, time.Duration(benchSecs*float64(time.Second)), benchConc)
		fmt.Fprintf(stdout, "%s: %d ops in %.2fs = %.0f ops/s (%d errors, %d in flight)\n", benchOp, n, d.Seconds(), float64(n)/d.Seconds(), errs, benchConc)
		if errs > 0 {
			code = exitFail
		}
	}
	if err := c.Unmount(ctx); err != nil {
		fmt.Fprintf(stderr, "lustre-probe: umount: %v\n", err)
		if code == exitOK {
			code = exitFail
		}
	}
	return code
}

func bench(ctx context.Context, c *probe.Client, op string, d time.Duration, conc int) (n, errs uint64, took time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var ops, bad atomic.Uint64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				var err error
				switch op {
				case "getattr":
					_, err = c.Getattr(context.Background(), c.Root)
				case "statfs":
					_, err = c.Statfs(context.Background())
				case "lookup":
					_, err = c.Lookup(context.Background(), c.Root, ".")
				}
				if err != nil {
					bad.Add(1)
					return
				}
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	return ops.Load(), bad.Load(), time.Since(start)
}

func typeName(mode uint32) string {
	switch mode & namespace.ModeType {
	case namespace.ModeDir:
		return "dir"
	case namespace.ModeRegular:
		return "file"
	case namespace.ModeSymlink:
		return "symlink"
	}
	return fmt.Sprintf("%#o", mode&namespace.ModeType)
}

func printAttr(w io.Writer, path string, a probe.Attr) {
	fields := map[string]string{
		"fid":   a.FID1.String(),
		"type":  typeName(a.Mode),
		"mode":  fmt.Sprintf("%04o", a.Mode&0o7777),
		"size":  fmt.Sprint(a.Size),
		"nlink": fmt.Sprint(a.Nlink),
		"uid":   fmt.Sprint(a.UID),
		"gid":   fmt.Sprint(a.GID),
		"mtime": time.Unix(a.Mtime, 0).UTC().Format(time.RFC3339),
	}
	if a.LinkTarget != "" {
		fields["target"] = a.LinkTarget
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(path)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, fields[k])
	}
	fmt.Fprintln(w, b.String())
}

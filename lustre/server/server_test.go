package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kregress/kregress/lustre/faults"
	"github.com/kregress/kregress/lustre/namespace"
	"github.com/kregress/kregress/lustre/probe"
	"github.com/kregress/kregress/lustre/ptlrpc"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func start(t testing.TB, cfg Config) (*Server, *syncBuf) {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.FSName == "" {
		cfg.FSName = "testfs"
	}
	logs := &syncBuf{}
	if cfg.Log == nil {
		cfg.Log = logs
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, logs
}

func mount(t testing.TB, s *Server, timeout time.Duration) *probe.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := probe.Dial(ctx, probe.Config{Server: s.Addr().String(), FSName: s.cfg.FSName, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Mount(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMountStatLsUmount runs the client's whole sequence against a tree
// read from YAML and checks every answer against the tree.
func TestMountStatLsUmount(t *testing.T) {
	rpcs := &syncBuf{}
	s, _ := start(t, Config{TreeFile: "testdata/tree.yaml", OSTs: 1, LogRPCs: rpcs})
	c := mount(t, s, 5*time.Second)
	ctx := context.Background()
	if c.Root != namespace.RootFID {
		t.Fatalf("root %v", c.Root)
	}
	a, err := c.Stat(ctx, "a/f")
	if err != nil {
		t.Fatal(err)
	}
	if a.Mode != namespace.ModeRegular|0o640 || a.Size != 4096 || a.UID != 7 || a.GID != 8 || a.Mtime != 1704164645 || a.Nlink != 2 {
		t.Fatalf("stat a/f = %+v", a.Body)
	}
	l, err := c.Stat(ctx, "a/l")
	if err != nil {
		t.Fatal(err)
	}
	if g, err := c.Getattr(ctx, l.FID1); err != nil || g.LinkTarget != "f" {
		t.Fatalf("readlink a/l = %q, %v", g.LinkTarget, err)
	}
	if _, err := c.Stat(ctx, "a/missing"); !probe.IsErrno(err, ptlrpc.ENOENT) {
		t.Fatalf("stat a/missing: %v, want ENOENT", err)
	}
	ents, err := c.ReadDir(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	if strings.Join(names, " ") != ". .. b f l" {
		t.Fatalf("ls a = %v", names)
	}
	st, err := c.Statfs(ctx)
	if err != nil || st.Files == 0 || st.Bsize != 4096 {
		t.Fatalf("statfs %+v %v", st, err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Unmount(ctx); err != nil {
		t.Fatal(err)
	}
	stats := s.Stats()
	if stats.Exports != 0 || stats.Locks != 0 {
		t.Fatalf("after unmount: %d exports, %d locks", stats.Exports, stats.Locks)
	}
	log := rpcs.String()
	for _, op := range []string{"MGS_CONNECT", "LDLM_ENQUEUE", "LLOG_ORIGIN_HANDLE_CREATE", "LLOG_ORIGIN_HANDLE_READ_HEADER",
		"LLOG_ORIGIN_HANDLE_NEXT_BLOCK", "MDS_CONNECT", "MDS_STATFS", "MDS_GET_ROOT", "OST_CONNECT", "MDS_GETATTR",
		"MDS_READPAGE", "LDLM_CANCEL", "OBD_PING", "MDS_DISCONNECT", "OST_DISCONNECT", "MGS_DISCONNECT"} {
		if !strings.Contains(log, "rpc "+op+" ") {
			t.Errorf("RPC log lacks %s:\n%s", op, log)
		}
	}
	if !strings.Contains(log, " status=0 us=") {
		t.Fatalf("RPC log lines lack status/us: %s", log)
	}
}

func TestGeneratedTreeReadDirPaging(t *testing.T) {
	s, _ := start(t, Config{Generate: "dirs=3,files=1000"})
	c := mount(t, s, 5*time.Second)
	ctx := context.Background()
	ents, err := c.ReadDir(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	// 1000 files over root + 3 dirs: 250 in the root, plus 3 dirs, . and ..
	if len(ents) != 250+3+2 {
		t.Fatalf("%d entries in /", len(ents))
	}
	seen := map[string]bool{}
	for _, e := range ents {
		if seen[e.Name] {
			t.Fatalf("duplicate %q", e.Name)
		}
		seen[e.Name] = true
	}
	if !sort.SliceIsSorted(ents, func(i, j int) bool { return ents[i].Hash < ents[j].Hash }) {
		t.Fatal("hashes not ascending")
	}
}

func TestFaults(t *testing.T) {
	// A fault from the configuration breaks the mount's root getattr once.
	s, _ := start(t, Config{TreeFile: "testdata/tree.yaml", Faults: []faults.Rule{{Op: "MDS_GETATTR", Error: "ESTALE", Count: 1}}})
	ctx := context.Background()
	c0, err := probe.Dial(ctx, probe.Config{Server: s.Addr().String(), FSName: "testfs", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c0.Mount(ctx); !probe.IsErrno(err, ptlrpc.ESTALE) {
		t.Fatalf("mount with an ESTALE getattr fault: %v", err)
	}
	c0.Close()
	c := mount(t, s, 2*time.Second)
	s.Faults().Add(faults.Rule{Op: "MDS_GETATTR", Error: "ESTALE", Count: 1})
	if _, err := c.Getattr(ctx, c.Root); !probe.IsErrno(err, ptlrpc.ESTALE) {
		t.Fatalf("getattr with ESTALE fault: %v", err)
	}
	if _, err := c.Getattr(ctx, c.Root); err != nil {
		t.Fatalf("getattr after the fault retired: %v", err)
	}
	// Name fault on the intent lookup: EIO for "f" only.
	s.Faults().Add(faults.Rule{Name: "f", Error: "EIO"})
	if _, err := c.Stat(ctx, "a/f"); !probe.IsErrno(err, ptlrpc.EIO) {
		t.Fatalf("stat a/f with EIO fault: %v", err)
	}
	if _, err := c.Stat(ctx, "a/l"); err != nil {
		t.Fatalf("stat a/l: %v", err)
	}
	s.Faults().Clear()
	// Delay.
	s.Faults().Add(faults.Rule{Op: "OBD_PING", Delay: 300 * time.Millisecond, Count: 1})
	t0 := time.Now()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Fatalf("delayed ping answered after %v", d)
	}
	// Drop: no reply, the call times out.
	s.Faults().Add(faults.Rule{Op: "OBD_PING", Drop: true, Count: 1})
	if err := c.Ping(ctx); err == nil || !strings.Contains(err.Error(), "no reply") {
		t.Fatalf("dropped ping: %v", err)
	}
	// Evict: ENOTCONN now and after.
	s.Faults().Add(faults.Rule{Op: "OBD_PING", Evict: true, Count: 1})
	if err := c.Ping(ctx); !probe.IsErrno(err, ptlrpc.ENOTCONN) {
		t.Fatalf("evicting ping: %v", err)
	}
	if _, err := c.Getattr(ctx, c.Root); !probe.IsErrno(err, ptlrpc.ENOTCONN) {
		t.Fatalf("getattr after eviction: %v", err)
	}
}

// TestControlAPI revokes, renames and unlinks behind a client's back
// through the HTTP control API.
func TestControlAPI(t *testing.T) {
	rpcs := &syncBuf{}
	s, _ := start(t, Config{TreeFile: "testdata/tree.yaml", LogRPCs: rpcs})
	c := mount(t, s, 5*time.Second)
	ctx := context.Background()
	base := "http://" + s.ControlAddr().String()
	post := func(path string, body string) map[string]any {
		t.Helper()
		resp, err := http.Post(base+path, "application/yaml", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		data, _ := io.ReadAll(resp.Body)
		json.Unmarshal(data, &out)
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, data)
		}
		return out
	}
	if _, err := c.Stat(ctx, "a/f"); err != nil {
		t.Fatal(err)
	}
	locks := s.Stats().Locks
	if locks == 0 {
		t.Fatal("no locks granted by lookups")
	}
	out := post("/revoke?path=a/f", "")
	if out["asts"].(float64) < 1 {
		t.Fatalf("revoke sent %v ASTs", out["asts"])
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.ASTs.Load() == 0 || s.Stats().Locks >= locks {
		if time.Now().After(deadline) {
			t.Fatalf("client got %d ASTs, server holds %d locks (had %d)", c.ASTs.Load(), s.Stats().Locks, locks)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(rpcs.String(), "ast LDLM_BL_CALLBACK") {
		t.Fatal("AST not in the RPC log")
	}
	post("/rename?from=a/f&to=a/renamed", "")
	if _, err := c.Stat(ctx, "a/f"); !probe.IsErrno(err, ptlrpc.ENOENT) {
		t.Fatalf("stat of renamed-away name: %v", err)
	}
	if a, err := c.Stat(ctx, "a/renamed"); err != nil || a.Size != 4096 {
		t.Fatalf("stat a/renamed: %+v %v", a, err)
	}
	post("/unlink?path=top", "")
	if _, err := c.Stat(ctx, "top"); !probe.IsErrno(err, ptlrpc.ENOENT) {
		t.Fatalf("stat of unlinked name: %v", err)
	}
	post("/faults", "- {op: MDS_STATFS, error: EIO}")
	if _, err := c.Statfs(ctx); !probe.IsErrno(err, ptlrpc.EIO) {
		t.Fatalf("statfs with EIO fault from the API: %v", err)
	}
	req, _ := http.NewRequest("DELETE", base+"/faults", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("DELETE /faults: %v", err)
	}
	if _, err := c.Statfs(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/faults", "application/yaml", strings.NewReader("- {op: NOPE, drop: true}"))
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("bad fault rule accepted: %v %v", resp.StatusCode, err)
	}
	resp, err = http.Post(base+"/unlink?path=nope", "", nil)
	if err != nil || resp.StatusCode != 409 {
		t.Fatalf("unlink of a missing name: %v %v", resp.StatusCode, err)
	}
	var st Stats
	r2, err := http.Get(base + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(r2.Body).Decode(&st)
	r2.Body.Close()
	if st.RPCs["MDS_CONNECT"] != 1 || st.Exports != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"fsname":   {Listen: "127.0.0.1:0", FSName: "much-too-long"},
		"nid":      {Listen: "127.0.0.1:0", NID: "bogus"},
		"both":     {Listen: "127.0.0.1:0", TreeFile: "x", Generate: "dirs=1"},
		"tree":     {Listen: "127.0.0.1:0", TreeFile: "testdata/absent.yaml"},
		"generate": {Listen: "127.0.0.1:0", Generate: "dirs=x"},
		"faults":   {Listen: "127.0.0.1:0", Faults: []faults.Rule{{Op: "NOPE", Drop: true}}},
		"listen":   {Listen: "256.0.0.1:0"},
	} {
		s, err := Start(context.Background(), cfg)
		if err == nil {
			s.Close()
			t.Errorf("%s: Start succeeded", name)
		}
	}
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary run kregress itself (TestLustreHelperProcess).
const helperEnv = "KREGRESS_TEST_RUN_MAIN"

// TestLustreHelperProcess is not a test: started by kregressProcess with
// helperEnv set, it runs kregress with the arguments after "--" and exits.
func TestLustreHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return // only a child of the lustre process tests runs it
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(mainWithArgs(args, os.Stdout, os.Stderr))
}

// kregressProcess starts `kregress args...` as a child process (this test
// binary in the part of kregress) that dies with the test.
func kregressProcess(t *testing.T, ctx context.Context, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^TestLustreHelperProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// rssMB is the resident set size of a process, from /proc.
func rssMB(t *testing.T, pid int) float64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("no VmRSS in /proc/%d/status", pid)
	}
	kb, _ := strconv.Atoi(string(m[1]))
	return float64(kb) / 1024
}

type lustreStats struct {
	RPCs    map[string]uint64 `json:"rpcs"`
	Open    int               `json:"open_connections"`
	Locks   int               `json:"locks"`
	Exports int               `json:"exports"`
	Evicted uint64            `json:"evicted_exports"`
}

// TestLustreDeadClientLocksFreed runs the real lustre-server and
// lustre-probe as processes. A probe that unmounts cancels its locks in
// batches (exit 0, "0 errors", no lock or export left); a probe killed
// in the middle of a lookup bench leaves its locks and exports with no
// connection, and the server drops them after --evict-after, and its RSS
// (read from /proc; the server returns freed memory to the system with
// debug.FreeOSMemory once many locks have gone) comes back to at most half
// of what the locks had added.
func TestLustreDeadClientLocksFreed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server and two probes as processes (~15s)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv := kregressProcess(t, ctx, "lustre-server", "--listen", "127.0.0.1:0", "--fsname", "testfs",
		"--generate", "dirs=2,files=10", "--evict-after", "1s", "--connect-delay", "0")
	errPipe, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); srv.Wait() }()
	var srvLog lustreBuf
	addrs := make(chan []string, 1)
	go func() {
		re := regexp.MustCompile(`listening on (\S+), control http://(\S+),`)
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			fmt.Fprintln(&srvLog, sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- m[1:]
			}
		}
	}()
	var addr, ctl string
	select {
	case a := <-addrs:
		addr, ctl = a[0], a[1]
	case <-time.After(20 * time.Second):
		t.Fatalf("the server did not start: %s", srvLog.String())
	}
	stats := func() lustreStats {
		t.Helper()
		resp, err := http.Get("http://" + ctl + "/stats")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st lustreStats
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	probeArgs := []string{"lustre-probe", "--server", addr, "--fsname", "testfs", "bench", "--op", "lookup"}
	pid := srv.Process.Pid
	base := rssMB(t, pid)

	// A probe that unmounts: every lock cancelled, in batches.
	p1 := kregressProcess(t, ctx, append(probeArgs, "--seconds", "1.5")...)
	out, err := p1.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "(0 errors,") {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	if st := stats(); st.Locks != 0 || st.Exports != 0 || st.RPCs["LDLM_CANCEL"] < 2 {
		t.Fatalf("after a probe unmounted: %d locks, %d exports, %d LDLM_CANCELs; want none left, in several cancels\nprobe: %s",
			st.Locks, st.Exports, st.RPCs["LDLM_CANCEL"], out)
	}

	// A probe killed with 100,000 locks or more.
	const want = 100000
	p2 := kregressProcess(t, ctx, append(probeArgs, "--seconds", "60")...)
	if err := p2.Start(); err != nil {
		t.Fatal(err)
	}
	var held lustreStats
	for deadline := time.Now().Add(40 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if held = stats(); held.Locks >= want {
			break
		}
		if time.Now().After(deadline) {
			p2.Process.Kill()
			p2.Wait()
			t.Fatalf("the probe holds only %d locks after 40s", held.Locks)
		}
	}
	p2.Process.Kill()
	p2.Wait()
	peak := rssMB(t, pid)
	if peak-base < 10 {
		t.Fatalf("RSS %.1f MB with %d locks, %.1f MB before: too little growth to tell whether it comes back", peak, held.Locks, base)
	}
	var st lustreStats
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if st = stats(); st.Locks == 0 && st.Exports == 0 && st.Open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("15s after the probe was killed: %d locks, %d exports, %d connections open (evict-after 1s)\n%s",
				st.Locks, st.Exports, st.Open, srvLog.String())
		}
	}
	if st.Evicted == 0 {
		t.Errorf("the locks went but no export was evicted: %+v", st)
	}
	var rss float64
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if rss = rssMB(t, pid); rss <= base+(peak-base)/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RSS %.1f MB 15s after the eviction; %.1f MB before the bench, %.1f MB with %d locks", rss, base, peak, held.Locks)
		}
	}
	t.Logf("RSS %.1f MB at start, %.1f MB with %d locks of a killed probe, %.1f MB after its eviction", base, peak, held.Locks, rss)
}

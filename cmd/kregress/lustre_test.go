package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type lustreBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lustreBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lustreBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func TestLustreCommandsHelpAndBadInput(t *testing.T) {
	for _, args := range [][]string{{"lustre-server", "--help"}, {"lustre-probe", "--help"}} {
		var out, errb bytes.Buffer
		if code := mainWithArgs(args, &out, &errb); code != exitOK || !strings.Contains(out.String(), "usage: kregress "+args[0]) {
			t.Errorf("%v: exit %d, stdout %q", args, code, out.String())
		}
	}
	for _, args := range [][]string{
		{"lustre-server", "--bogus"},
		{"lustre-server", "--generate", "dirs=x", "--listen", "127.0.0.1:0"},
		{"lustre-server", "--tree", "/nonexistent.yaml", "--listen", "127.0.0.1:0"},
		{"lustre-server", "--fsname", "waytoolongname", "--listen", "127.0.0.1:0"},
		{"lustre-server", "--fsname", "", "--listen", "127.0.0.1:0"},
		{"lustre-server", "--max-conns", "0", "--listen", "127.0.0.1:0"},
		{"lustre-server", "--evict-after", "-1s", "--listen", "127.0.0.1:0"},
		{"lustre-server", "--frame-timeout", "-5s", "--listen", "127.0.0.1:0"},
		{"lustre-probe", "--fsname", "", "statfs"},
		{"lustre-server", "extra-arg"},
		{"lustre-probe"},
		{"lustre-probe", "frob"},
		{"lustre-probe", "stat"},
		{"lustre-probe", "bench", "--op", "write"},
		{"lustre-probe", "--server", "127.0.0.1:1", "statfs"},
	} {
		var out, errb bytes.Buffer
		if code := mainWithArgs(args, &out, &errb); code != exitInfra {
			t.Errorf("%v: exit %d, want %d; stderr %q", args, code, exitInfra, errb.String())
		} else if errb.Len() == 0 {
			t.Errorf("%v: no message", args)
		}
	}
}

// TestLustreServerAndProbe runs lustre-server in-process and drives it with
// lustre-probe subcommands.
func TestLustreServerAndProbe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	old := lustreServerSignals
	lustreServerSignals = func(context.Context) (context.Context, context.CancelFunc) { return ctx, cancel }
	defer func() { lustreServerSignals = old }()
	var srvOut, srvErr lustreBuf
	done := make(chan int, 1)
	go func() {
		done <- mainWithArgs([]string{"lustre-server", "--listen", "127.0.0.1:0", "--fsname", "testfs",
			"--generate", "dirs=4,files=40", "--log-rpcs", "--connect-delay", "0"}, &srvOut, &srvErr)
	}()
	re := regexp.MustCompile(`listening on (\S+),`)
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(srvErr.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("server did not start: %s", srvErr.String())
		}
	}
	probe := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		code := mainWithArgs(append([]string{"lustre-probe", "--server", addr, "--fsname", "testfs"}, args...), &out, &errb)
		if code != want {
			t.Fatalf("lustre-probe %v: exit %d, want %d\nstdout %s\nstderr %s", args, code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	if out := probe(exitOK, "stat", "d0001/f000002"); !strings.Contains(out, "d0001/f000002 fid=[0x200000400:") || !strings.Contains(out, "type=file") {
		t.Fatalf("stat output %q", out)
	}
	if out := probe(exitOK, "ls", "/"); strings.Count(out, "\n") != 2+4+8 || !strings.Contains(out, "d0003") {
		t.Fatalf("ls output %q", out)
	}
	if out := probe(exitOK, "statfs"); !strings.Contains(out, "bsize 4096") {
		t.Fatalf("statfs output %q", out)
	}
	if out := probe(exitFail, "stat", "no/such"); !strings.Contains(out, "status -2") {
		t.Fatalf("missing name output %q", out)
	}
	if out := probe(exitOK, "bench", "--op", "getattr", "--seconds", "0.3"); !regexp.MustCompile(`getattr: \d+ ops in [0-9.]+s = \d+ ops/s \(0 errors`).MatchString(out) {
		t.Fatalf("bench output %q", out)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("server exit %d: %s", code, srvErr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
	if log := srvOut.String(); !strings.Contains(log, "rpc MDS_READPAGE ") || !strings.Contains(log, "rpc MGS_DISCONNECT ") {
		t.Fatalf("RPC log: %.500s", log)
	}
}

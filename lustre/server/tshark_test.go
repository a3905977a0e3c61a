package server

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kregress/kregress/lustre/probe"
	"github.com/kregress/kregress/lustre/ptlrpc"
)

// Expert severities in Wireshark 4.0 (_ws.expert.severity).
const wsSeverityError = 8388608

// TestTsharkAgrees captures a whole client session on loopback with
// dumpcap and has Wireshark's LNet and Lustre dissectors read it: every
// frame must decode without [Malformed Packet] or an expert error, and
// the requests it names must be exactly the ones the server logged, opcode
// for opcode, each with a reply.
//
// Two false alarms of Wireshark 4.0 are excused, each recognised narrowly:
// the zero padding of an llog block (LLOG_ORIGIN_HANDLE_NEXT_BLOCK replies,
// the case known beforehand), and the readdir bulk PUT to portal 14: the
// LNet dissector hands a PUT's payload to the Lustre dissector by portal,
// registers none for the bulk portals (8, 14, 33), leaves the 4096-byte
// page unread and reports "Buffer length mis-match" (lnet.bad_buflen) for
// every bulk transfer, whoever sends it. The pages themselves are checked
// by the probe client (mdt.ParseDirPages) in this and other tests.
func TestTsharkAgrees(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the packet capture in -short mode")
	}
	for _, tool := range []string{"dumpcap", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s not installed (Debian package tshark)", tool)
		}
	}
	rpcs := &syncBuf{}
	s, _ := start(t, Config{TreeFile: "testdata/tree.yaml", OSTs: 1, LogRPCs: rpcs})
	port := s.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndex(port, ":")+1:]

	pcap := filepath.Join(t.TempDir(), "session.pcapng")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cap := exec.CommandContext(ctx, "dumpcap", "-q", "-i", "lo", "-f", "tcp port "+port, "-w", pcap)
	stderr, err := cap.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cap.Start(); err != nil {
		t.Skipf("skipping: dumpcap does not start: %v", err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cap.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { cap.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cap.Process.Kill()
			<-done
		}
	}
	defer stop()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.HasPrefix(sc.Text(), "Capturing on") {
				ready <- ""
			}
		}
		ready <- strings.Join(lines, "\n")
	}()
	select {
	case msg := <-ready:
		if msg != "" {
			t.Skipf("skipping: dumpcap cannot capture on lo: %s", msg)
		}
	case <-time.After(20 * time.Second):
		t.Skip("skipping: dumpcap did not start capturing within 20s")
	}
	time.Sleep(500 * time.Millisecond) // the filter is attached after the message

	c := mount(t, s, 10*time.Second)
	if _, err := c.Stat(ctx, "a/f"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stat(ctx, "a/missing"); !probe.IsErrno(err, ptlrpc.ENOENT) {
		t.Fatalf("missing name: %v", err)
	}
	if _, err := c.ReadDir(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Statfs(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Revoke("a/f"); err != nil || n == 0 {
		t.Fatalf("revoke: %d ASTs, %v", n, err)
	}
	for deadline := time.Now().Add(5 * time.Second); c.ASTs.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no AST reached the client")
		}
	}
	time.Sleep(200 * time.Millisecond) // the client's cancel
	if err := c.Unmount(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()
	time.Sleep(300 * time.Millisecond)
	stop()

	out, err := exec.CommandContext(ctx, "tshark", "-r", pcap, "-d", "tcp.port=="+port+",lnet", "-T", "fields",
		"-E", "separator=/t", "-e", "frame.number", "-e", "lnet.msg_type", "-e", "lnet.ptl_index",
		"-e", "lnet.msg_dst_match_bits", "-e", "lustre.ptlrpc_body.pb_opc", "-e", "lustre.ptlrpc_body.pb_type",
		"-e", "_ws.malformed", "-e", "_ws.expert.severity", "-e", "_ws.expert.message").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	type rpc struct{ opc, replies int }
	seen := map[string]*rpc{} // by xid
	frames, lnetMsgs, excused, excusedBulk := 0, 0, 0, 0
	bulkAlarm := regexp.MustCompile(`^Capture:\d+ offset:96 \(length:0\) msg_type:1 ib_type:00$`)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		for len(f) < 9 {
			f = append(f, "")
		}
		frames++
		types, opcs, pbTypes, mbits := splitList(f[1]), splitList(f[4]), splitList(f[5]), splitList(f[3])
		portals := splitList(f[2])
		lnetMsgs += len(types)
		bad := f[6] != ""
		for _, sev := range splitList(f[7]) {
			if v, _ := strconv.Atoi(sev); v >= wsSeverityError {
				bad = true
			}
		}
		if bad {
			// The one excused case: an llog block reply (NEXT_BLOCK, 502).
			msgs := splitList(f[8])
			bulkOnly := contains(portals, "14") && len(msgs) > 0
			for _, m := range msgs {
				bulkOnly = bulkOnly && bulkAlarm.MatchString(m)
			}
			switch {
			case len(opcs) > 0 && allEqual(opcs, "502") && contains(pbTypes, "4713"):
				excused++
			case bulkOnly && f[6] != "":
				excusedBulk++
			default:
				t.Errorf("frame %s: malformed or expert error: %s", f[0], line)
			}
		}
		// Requests and replies carried by this frame, paired by position.
		if len(opcs) == len(pbTypes) && len(opcs) <= len(mbits) {
			// Messages without a ptlrpc body (bulk) have match bits but
			// no opcode; with several messages per frame the positions
			// of opcodes are those of the ptlrpc messages only, so pair
			// only frames whose every message is ptlrpc.
			if len(opcs) == len(mbits) {
				for i := range opcs {
					x := mbits[i]
					r := seen[x]
					if r == nil {
						r = &rpc{opc: -1}
						seen[x] = r
					}
					switch pbTypes[i] {
					case "4711":
						r.opc, _ = strconv.Atoi(opcs[i])
					case "4713", "4712":
						r.replies++
					}
				}
			}
		}
	}
	// The server's own log: one line per RPC with its xid.
	re := regexp.MustCompile(`^rpc (\S+) xid=(0x[0-9a-f]+) `)
	logged := 0
	for _, line := range strings.Split(rpcs.String(), "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		logged++
		want, ok := ptlrpc.OpByName(m[1])
		if !ok {
			t.Errorf("server logged unknown opcode %s", m[1])
			continue
		}
		r := seen[m[2]]
		if r == nil {
			t.Errorf("tshark did not see %s xid %s", m[1], m[2])
			continue
		}
		if r.opc != int(want) {
			t.Errorf("xid %s: server says %s (%d), tshark says opcode %d", m[2], m[1], want, r.opc)
		}
		if r.replies != 1 {
			t.Errorf("xid %s (%s): tshark saw %d replies", m[2], m[1], r.replies)
		}
		delete(seen, m[2])
	}
	for x, r := range seen {
		if r.opc == ptlrpc.LDLMBLCallback {
			continue // our AST and the client's reply to it
		}
		if r.opc >= 0 {
			t.Errorf("tshark saw request opcode %d xid %s that the server did not log", r.opc, x)
		}
	}
	t.Logf("tshark read %d frames, %d LNet messages; %d RPCs matched the server log; excused: %d llog-padding frames, %d bulk frames",
		frames, lnetMsgs, logged, excused, excusedBulk)
	if logged < 20 || excused == 0 {
		t.Fatalf("too little traffic checked: %d RPCs, %d llog blocks", logged, excused)
	}
	if t.Failed() {
		os.WriteFile(filepath.Join(os.TempDir(), "kregress-tshark-fields.txt"), out, 0o644)
		fmt.Println("tshark fields saved in", filepath.Join(os.TempDir(), "kregress-tshark-fields.txt"))
	}
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func allEqual(l []string, v string) bool {
	for _, x := range l {
		if x != v {
			return false
		}
	}
	return true
}

func contains(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

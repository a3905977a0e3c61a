package triage

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected JSON beside each testdata log")

// TestKernelLogs parses every testdata/kernel/*.log (real console logs of
// real kernels) and compares the reports with the .json beside it.
func TestKernelLogs(t *testing.T) {
	logs, err := filepath.Glob("testdata/kernel/*.log")
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) == 0 {
		t.Fatal("no testdata/kernel/*.log files")
	}
	for _, path := range logs {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			reps := Parse(data)
			if reps == nil {
				reps = []Report{}
			}
			got, err := json.MarshalIndent(reps, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			want := strings.TrimSuffix(path, ".log") + ".json"
			if *update {
				if err := os.WriteFile(want, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			exp, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it, then review it)", err)
			}
			if !bytes.Equal(got, exp) {
				t.Errorf("reports of %v differ from %v (run with -update and review the diff):\n%s", path, want, got)
			}
		})
	}
}

// TestLustreCorpus checks that each Lustre crash log quoted in Lustre's
// commit messages yields the report a Lustre maintainer would name.
func TestLustreCorpus(t *testing.T) {
	dir := "../../../shared/corpus/lustre"
	requireShared(t, dir)
	tests := []struct {
		file, title, typ string
		corrupted        bool
		lockdep          string
	}{
		{"01-lbug-assertion-LU-6794.txt", "LBUG: ASSERTION( atomic_read(&d->ld_ref) == NUM ) failed in lu_device_fini", "LBUG", false, ""},
		{"03-lbug-assertion-LU-14300.txt", "LBUG: ASSERTION( (((qmt_info(env)->qti_lqes_num) > NUM ? qmt_info(env)->qti_lqes : qmt_info(env)->qti_lqes_small)[(qmt_i", "LBUG", false, ""},
		// The quoted trace is introduced by "Call Trace TBD:", so its frames are untrusted.
		{"05-lbug-assertion-LU-17770.txt", "LBUG: ASSERTION( k < lgd->lqeg_num_used ) failed in qmt_map_lge_idx", "LBUG", true, ""},
		// The mail trimmed the stack backtrace.
		{"07-lockdep-recursive-LU-3409.txt", "possible deadlock in ll_md_blocking_ast", "LOCKDEP", true, "d_lock taken twice in ll_md_blocking_ast"},
		{"09-lockdep-recursive-LU-20422.txt", "possible deadlock in dt_read_lock", "LOCKDEP", true, "oo_dt.dd_sem taken twice in dt_read_lock (first taken in dt_write_lock)"},
		{"11-null-deref-LU-13920.txt", "BUG: unable to handle kernel NULL pointer dereference in thandle_get_sub_by_dt", "NULL-POINTER-DEREFERENCE", true, ""},
		{"13-kasan-LU-17419.txt", "KASAN: slab-out-of-bounds Read in server_start_targets", "KASAN-READ", false, ""},
		{"15-hung-task-LU-19046.txt", "INFO: task hung in mgc_fs_setup", "HANG", false, ""},
		{"17-warning-LU-19707.txt", "WARNING in ethtool_op_get_link", "WARNING", false, ""},
		{"19-kernel-bug-LU-13054.txt", "kernel BUG in htree_node_release_all", "BUG", false, ""},
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	if len(files) != len(tests) {
		t.Errorf("corpus has %d files, the table %d: add the new ones", len(files), len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			reps := Parse(data)
			if len(reps) != 1 {
				t.Fatalf("got %d reports %q, want 1", len(reps), titles(reps))
			}
			r := reps[0]
			if r.Title != tc.title || r.Type != tc.typ || r.Corrupted != tc.corrupted {
				t.Errorf("got %q %q corrupted=%v (%v), want %q %q corrupted=%v",
					r.Title, r.Type, r.Corrupted, r.CorruptedReason, tc.title, tc.typ, tc.corrupted)
			}
			if tc.lockdep != "" && (r.Lockdep == nil || r.Lockdep.Summary != tc.lockdep) {
				t.Errorf("lockdep %+v, want summary %q", r.Lockdep, tc.lockdep)
			}
		})
	}
}

// TestSeedOops checks the seed's Lustre oops: locking frames skipped, the
// Lustre frame named, the report bounded by the kernel's end marker.
func TestSeedOops(t *testing.T) {
	requireShared(t, "../../../shared/seeds")
	files, _ := filepath.Glob("../../../shared/seeds/*.txt")
	if len(files) == 0 {
		t.Fatal("no seed logs in ../shared/seeds")
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	reps := Parse(data)
	if len(reps) != 1 {
		t.Fatalf("got %d reports %q, want 1", len(reps), titles(reps))
	}
	r := reps[0]
	want := "BUG: unable to handle kernel NULL pointer dereference in ll_lookup_it_finish"
	if r.Title != want || r.Type != TypeNullDeref || r.Corrupted {
		t.Errorf("got %q %q corrupted=%v, want %q", r.Title, r.Type, r.Corrupted, want)
	}
	if len(r.Frames) < 3 || r.Frames[0] != "ll_lookup_it_finish" || r.Frames[1] != "ll_lookup_it" {
		t.Errorf("frames %q, want ll_lookup_it_finish, ll_lookup_it, ...", r.Frames)
	}
	if !strings.Contains(r.Report, "Call Trace:") {
		t.Errorf("report text lacks the call trace:\n%s", r.Report)
	}
}

// TestStreamMatchesParse feeds corpus logs line by line: the stream must
// find the same reports as Parse, each returned no later than its end.
func TestStreamMatchesParse(t *testing.T) {
	cases := corpusCases(t)
	for _, c := range cases {
		want := Parse(c.log)
		s := NewStream()
		var got []Report
		lines := strings.Split(strings.TrimSuffix(string(c.log), "\n"), "\n")
		for i, ln := range lines {
			for _, r := range s.Feed(ln) {
				if r.EndLine > i+1 {
					t.Errorf("%v: report %q returned at line %d, before its end %d", c.name, r.Title, i+1, r.EndLine)
				}
				got = append(got, r)
			}
		}
		got = append(got, s.Flush()...)
		if len(got) != len(want) {
			t.Errorf("%v: stream found %d reports, Parse %d", c.name, len(got), len(want))
			continue
		}
		seen := map[string]int{}
		for _, r := range want {
			seen[r.Title+"\x00"+string(rune(r.StartLine))]++
		}
		for _, r := range got {
			seen[r.Title+"\x00"+string(rune(r.StartLine))]--
		}
		for k, n := range seen {
			if n != 0 {
				t.Errorf("%v: stream and Parse disagree on %q", c.name, k)
			}
		}
	}
}

// TestStreamCompletesEarly checks that an oops is returned by the Feed of
// its end-of-trace line, without waiting for more output or Flush.
func TestStreamCompletesEarly(t *testing.T) {
	data, err := os.ReadFile("testdata/kernel/sysrq-crash-debian-6.1.log")
	if err != nil {
		t.Fatal(err)
	}
	s := NewStream()
	lines := strings.Split(string(data), "\n")
	for i, ln := range lines {
		if reps := s.Feed(ln); len(reps) > 0 {
			if !strings.Contains(ln, "Kernel Offset") {
				t.Errorf("report completed at line %d %q, want the Kernel Offset line", i+1, ln)
			}
			if reps[0].Title != "kernel panic: sysrq triggered crash" {
				t.Errorf("title %q", reps[0].Title)
			}
			return
		}
	}
	t.Fatal("no report completed before Flush")
}

// TestInterleavedCallers: reports of two tasks interleaved line by line
// are told apart by their printk caller ids.
func TestInterleavedCallers(t *testing.T) {
	a := []string{
		"[   10.000001][ T100] BUG: kernel NULL pointer dereference, address: 0000000000000008",
		"[   10.000002][ T100] RIP: 0010:ll_file_read+0x10/0x80 [lustre]",
		"[   10.000003][ T100] Call Trace:",
		"[   10.000004][ T100]  vfs_read+0x20/0x90",
		"[   10.000005][ T100] ---[ end trace 0000000000000000 ]---",
	}
	b := []string{
		"[   10.000001][ T200] WARNING: CPU: 1 PID: 200 at fs/dcache.c:100 d_splice_alias+0x1/0x2",
		"[   10.000002][ T200] RIP: 0010:d_splice_alias+0x1/0x2",
		"[   10.000003][ T200] Call Trace:",
		"[   10.000004][ T200]  ll_splice_alias+0x20/0x90 [lustre]",
		"[   10.000005][ T200] ---[ end trace 0000000000000000 ]---",
	}
	var log []string
	for i := range a {
		log = append(log, a[i], b[i])
	}
	reps := Parse([]byte(strings.Join(log, "\n")))
	got := titles(reps)
	want := []string{"BUG: unable to handle kernel NULL pointer dereference in ll_file_read", "WARNING in d_splice_alias"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("titles %q, want %q", got, want)
	}
	if reps[0].StartLine != 1 || reps[0].EndLine != 9 || reps[1].StartLine != 2 || reps[1].EndLine != 10 {
		t.Errorf("lines %d-%d and %d-%d, want 1-9 and 2-10", reps[0].StartLine, reps[0].EndLine, reps[1].StartLine, reps[1].EndLine)
	}
}

// TestBadInput: garbage, empty and huge lines neither panic nor report.
func TestBadInput(t *testing.T) {
	for _, in := range []string{"", "\n\n\n", "\x00\xff\xfe", strings.Repeat("x", 1<<20), "[ 1.0][ T1] ", "<1"} {
		if reps := Parse([]byte(in)); len(reps) != 0 {
			t.Errorf("Parse(%.20q) = %q, want no reports", in, titles(reps))
		}
	}
}

func TestDedup(t *testing.T) {
	reps := []Report{
		{Title: "KASAN: use-after-free Read in ll_file_read", AltTitles: []string{"bad-access in ll_file_read"}, Type: "KASAN-USE-AFTER-FREE-READ", StartLine: 10},
		{Title: "general protection fault in ll_file_read", AltTitles: []string{"bad-access in ll_file_read"}, Type: "DoS", StartLine: 50},
		{Title: "WARNING in foo", Type: "WARNING", StartLine: 70},
		{Title: "KASAN: use-after-free Read in ll_file_read", AltTitles: []string{"bad-access in ll_file_read"}, StartLine: 90},
		{Title: "WARNING in corrupted", Corrupted: true, StartLine: 100},
	}
	bugs := Dedup(reps)
	if len(bugs) != 3 {
		t.Fatalf("got %d bugs %+v, want 3", len(bugs), bugs)
	}
	b := bugs[0]
	if b.Title != reps[0].Title || b.Count != 3 || b.FirstSeen.Line != 10 || b.LastSeen.Line != 90 {
		t.Errorf("first bug %+v", b)
	}
	if !reflect.DeepEqual(b.AltTitles, []string{"bad-access in ll_file_read", "general protection fault in ll_file_read"}) {
		t.Errorf("alt titles %q", b.AltTitles)
	}
	if bugs[1].Title != "WARNING in foo" || bugs[1].Count != 1 || bugs[2].Title != "WARNING in corrupted" {
		t.Errorf("bugs %+v", bugs[1:])
	}
}

func TestShortLockName(t *testing.T) {
	for class, want := range map[string]string{
		"&(&dentry->d_lockref.lock)->rlock": "d_lock",
		"&(&dentry->d_lock)->rlock":         "d_lock",
		"&mo->oo_dt.dd_sem":                 "oo_dt.dd_sem",
		"&sb->s_type->i_mutex_key#3":        "i_mutex_key#3",
		"rtnl_mutex":                        "rtnl_mutex",
	} {
		if got := shortLockName(class); got != want {
			t.Errorf("shortLockName(%q) = %q, want %q", class, got, want)
		}
	}
}

// TestLockdepStructure checks the structure extracted from real lockdep
// reports of the corpus: a circular dependency and a recursive lock.
func TestLockdepStructure(t *testing.T) {
	byName := map[string]corpusCase{}
	for _, c := range corpusCases(t) {
		byName[c.name] = c
	}
	circ := Parse(byName["186"].log)[0].Lockdep
	if circ == nil || circ.Kind != "possible circular locking dependency" || circ.Task != "syz-executor3/5627" ||
		circ.Acquiring == nil || circ.Acquiring.Name != "sk_lock-AF_INET6" || circ.Acquiring.At != "do_ipv6_setsockopt.isra.8" ||
		circ.Held == nil || circ.Held.Name != "rtnl_mutex" || circ.Held.At != "rtnl_lock" || len(circ.Chain) != 3 ||
		circ.Chain[0].Index != 2 || circ.Chain[0].Lock.Name != "rtnl_mutex" || len(circ.Chain[0].Frames) == 0 {
		t.Errorf("circular: %+v", circ)
	}
	want := "sk_lock-AF_INET6 taken in do_ipv6_setsockopt.isra.8 while holding rtnl_mutex (taken in rtnl_lock); existing chain: rtnl_mutex -> xt[i].mutex -> sk_lock-AF_INET6"
	if circ != nil && circ.Summary != want {
		t.Errorf("summary %q, want %q", circ.Summary, want)
	}
	rec := Parse(byName["234"].log)[0].Lockdep
	if rec == nil || rec.Summary != "rtnl_mutex taken twice in rtnl_lock" || len(rec.HeldLocks) != 2 ||
		rec.HeldLocks[1].Index != 1 || rec.HeldLocks[1].Name != "sync_mutex" || rec.HeldLocks[1].At != "do_ip_vs_set_ctl" {
		t.Errorf("recursive: %+v", rec)
	}
}

// TestStreamCompletesDumpStackReport: a hung-task report has no end marker;
// the stream returns it at the </TASK> closing its trace.
func TestStreamCompletesDumpStackReport(t *testing.T) {
	var c corpusCase
	for _, x := range corpusCases(t) {
		if x.name == "1001" {
			c = x
		}
	}
	if c.name == "" {
		t.Fatal("corpus file 1001 is missing")
	}
	s := NewStream()
	for i, ln := range strings.Split(string(c.log), "\n") {
		if reps := s.Feed(ln); len(reps) > 0 {
			if !strings.HasSuffix(ln, "</TASK>") || reps[0].Title != c.title || reps[0].EndLine != i+1 {
				t.Errorf("report %q completed at line %d %q", reps[0].Title, i+1, ln)
			}
			return
		}
	}
	t.Fatal("no report completed before Flush")
}

func TestDemangle(t *testing.T) {
	for in, want := range map[string]string{
		"_Z8fakeNameiii": "fakeName", "_ZN2ns4funcEv": "ns::func", "_Z": "_Z",
		"_Z99x": "_Z99x", "do_sys_open": "do_sys_open", "_ZN2nsE": "ns", "_ZN2ns": "_ZN2ns",
		"_RNvCscSpY9Juk0HT_7___rustc17rust_begin_unwind":                                                        "__rustc::rust_begin_unwind",
		"_RNvNtNtCs9jEwPDbx20M_4core9panicking11panic_const24panic_const_sub_overflow":                          "core::panicking::panic_const::panic_const_sub_overflow",
		"_RNvMs3_NtCshgDM7dBCdno_11rust_binder7processNtB5_7Process10update_ref":                                "<rust_binder::process::Process>::update_ref",
		"_RNvXs1_CscPPBqWtAqum_11ashmem_rustNtB5_6AshmemNtNtCs43vyB533jt3_6kernel10miscdevice10MiscDevice4mmap": "<ashmem_rust::Ashmem as kernel::miscdevice::MiscDevice>::mmap",
		"_RNvB0_1x": "_RNvB0_1x", "_R": "_R", "_RIC1aE": "a", "_RINvC1a1bpE": "a::b::<_>",
	} {
		if got := demangle(in); got != want {
			t.Errorf("demangle(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMoreClasses covers report classes the corpora lack: Lustre's bare
// LBUG, the NMI watchdog's hard lockup, and a reboot seen as a second boot
// banner.
func TestMoreClasses(t *testing.T) {
	tests := []struct {
		name, log, title, typ string
	}{
		{"lbug", `[  100.000001] LustreError: 4242:0:(ldlm_lock.c:1234:ldlm_lock_destroy()) LBUG
[  100.000002] Pid: 4242, comm: ldlm_bl_01 6.1.0 #1 SMP
[  100.000003] Call Trace:
[  100.000004]  libcfs_call_trace+0x6f/0xa0 [libcfs]
[  100.000005]  lbug_with_loc+0x3f/0x70 [libcfs]
[  100.000006]  ldlm_lock_destroy+0x1f0/0x200 [ptlrpc]
[  100.000007]  ldlm_cli_cancel+0x21/0x40 [ptlrpc]
[  100.000008] Kernel panic - not syncing: LBUG
`, "LBUG in ldlm_lock_destroy", "LBUG"},
		{"hard-lockup", `[  50.000001] NMI watchdog: Watchdog detected hard LOCKUP on cpu 1
[  50.000002] Modules linked in: lustre(O)
[  50.000003] CPU: 1 PID: 77 Comm: ll_ost00_001 Not tainted 6.1.0 #1
[  50.000004] RIP: 0010:native_queued_spin_lock_slowpath+0x60/0x1e0
[  50.000005] Call Trace:
[  50.000006]  <NMI>
[  50.000007]  </NMI>
[  50.000008]  <TASK>
[  50.000009]  _raw_spin_lock+0x30/0x40
[  50.000010]  ofd_commitrw+0x10/0x90 [ofd]
[  50.000011]  tgt_brw_write+0x10/0x90 [ptlrpc]
[  50.000012]  kthread+0xc4/0xcc
[  50.000013]  ret_from_fork+0x1f/0x30
[  50.000014]  </TASK>
`, "BUG: hard lockup in ofd_commitrw", "HANG"}, // the innermost module frame names a lockup
		{"reboot", `[    0.000000] Linux version 6.1.0 (gcc) #1 SMP
[    1.000000] Run /init as init process
some output
[    0.000000] Linux version 6.1.0 (gcc) #1 SMP
`, "unexpected kernel reboot", "REBOOT"},
	}
	for _, tc := range tests {
		reps := Parse([]byte(tc.log))
		if len(reps) != 1 || reps[0].Title != tc.title || reps[0].Type != tc.typ {
			t.Errorf("%s: got %q, want one %q of type %s", tc.name, titles(reps), tc.title, tc.typ)
		}
	}
}

// TestPlainFrameMatchesRegexp: the hand-written frame matcher agrees with
// the frame expression on every line of the corpus and on edge cases.
func TestPlainFrameMatchesRegexp(t *testing.T) {
	lines := []string{"[<0>] f+0x1", "[0x] f+1", "[<0x12>] [<34>] g.isra.1+0x", " [<ff>]  f+0x", "f", "  ? f+0x1", "[<ab>] [<cd>] [<ef>] f+0x1", "[<ab>]f+0x"}
	for _, c := range corpusCases(t) {
		lines = append(lines, strings.Split(string(c.log), "\n")...)
	}
	for _, ln := range lines {
		_, body, _ := splitPrefix([]byte(ln))
		m := frameLines[0].FindSubmatch(body)
		name, ok := plainFrame(body)
		if (m != nil) != ok || ok && string(m[1]) != string(name) {
			t.Errorf("%q: regexp %q, hand-written %q %v", body, m, name, ok)
		}
	}
}

// TestStreamBounds: however many tasks start reports and however long a
// report runs, the stream holds a bounded number of bounded reports.
func TestStreamBounds(t *testing.T) {
	s := NewStream()
	for i := 0; i < 10000; i++ {
		s.Feed(fmt.Sprintf("[    1.%06d][ T%d] WARNING: CPU: 0 PID: %d at fs/a.c:1 f+0x1/0x2", i, i, i))
		s.Feed(fmt.Sprintf("[    1.%06d][ T%d] ---[ end trace 0000000000000000 ]---", i, i+50000))
		if len(s.open) > maxOpen || len(s.tailEnd) > maxTails {
			t.Fatalf("after %d tasks: %d open reports, %d tails", i, len(s.open), len(s.tailEnd))
		}
	}
	s = NewStream()
	s.Feed("[    1.0] BUG: soft lockup - CPU#0 stuck for 22s! [a:1]")
	n := 0
	for i := 0; i < 100000; i++ {
		n += len(s.Feed("[    1.1]  f+0x1/0x2 " + strings.Repeat("x", 100)))
		for _, p := range s.open {
			if len(p.text) > maxReportBytes+maxLineBytes {
				t.Fatalf("report text grew to %d bytes", len(p.text))
			}
		}
	}
	if n == 0 {
		t.Error("an endless report was never cut")
	}
}

// TestParseReaderMatchesParse reads each log through ParseReader: the same
// reports as Parse, in the same order, including for a log whose last line
// has no newline and one with a line longer than the read buffer.
func TestParseReaderMatchesParse(t *testing.T) {
	logs, err := filepath.Glob("testdata/kernel/*.log")
	if err != nil || len(logs) == 0 {
		t.Fatalf("testdata logs: %v %v", logs, err)
	}
	var inputs [][]byte
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, data, bytes.TrimSuffix(data, []byte("\n")))
		long := append(bytes.Repeat([]byte("x"), 200<<10), '\n')
		inputs = append(inputs, append(append(long, data...), long[:100<<10]...))
	}
	for _, c := range corpusCasesOptional(t) {
		inputs = append(inputs, c.log)
	}
	for i, data := range inputs {
		want := Parse(data)
		var got []Report
		err := ParseReader(bytes.NewReader(data), func(r Report) error {
			got = append(got, r)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("input %d: ParseReader gives %q, Parse %q", i, titles(got), titles(want))
		}
	}
}

// TestConsoleShapes: report shapes that real kernels print and
// syzkaller's rules miss, each from a real log (testdata/kernel/SOURCES.md
// says where each comes from): titles carry no names, counts or addresses.
func TestConsoleShapes(t *testing.T) {
	tests := []struct {
		file      string
		titles    []string
		corrupted []bool
	}{
		// A dentry refcount underflow at unmount: "still in use (-1)", then
		// WARN_ON(1) from the same place: one report with the WARNING's trace.
		{"dentry-underflow-debian-6.1.log", []string{
			"BUG: Dentry still in use in unmount",
			"VFS: Busy inodes after unmount (use-after-free)",
			"kernel BUG in generic_shutdown_super",
		}, []bool{false, false, false}},
		// Mail wrapped the count onto the next line and trimmed the trace.
		{"lustre-LU-14361-dentry-wrapped.log", []string{"BUG: Dentry still in use in unmount"}, []bool{true}},
		// Debian 6.1: stalls and soft lockups in a module are named by the
		// module's function, not "corrupted" or the syscall below it.
		{"module-stall-debian-6.1.log", []string{
			"INFO: rcu detected stall in crashmod_spin",
			"BUG: soft lockup in crashmod_spin",
			"BUG: soft lockup in crashmod_spin",
			"INFO: rcu detected stall in crashmod_spin",
			"BUG: soft lockup in crashmod_spin",
			"BUG: soft lockup in crashmod_spin",
		}, []bool{false, false, false, false, false, false}},
		// ASSERTION((x)) without the spaces LASSERT prints, wrapped.
		{"lustre-LU-18718-assertion-parens.log", []string{
			"LBUG: ASSERTION( (((inode->i_mode) & ADDR) == ADDR) ) failed in cl_file_inode_init",
		}, []bool{false}},
		// An old "[ INFO: ... ]" lockdep banner without "is trying to acquire".
		{"lustre-LU-7542-lockdep-old-banner.log", []string{"possible deadlock in sptlrpc_conf_client_adapt"}, []bool{false}},
	}
	for _, tc := range tests {
		data, err := os.ReadFile(filepath.Join("testdata/kernel", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		reps := Parse(data)
		var corrupted []bool
		for _, r := range reps {
			corrupted = append(corrupted, r.Corrupted)
		}
		if !reflect.DeepEqual(titles(reps), tc.titles) || !reflect.DeepEqual(corrupted, tc.corrupted) {
			t.Errorf("%s: got %q corrupted %v, want %q corrupted %v", tc.file, titles(reps), corrupted, tc.titles, tc.corrupted)
		}
		if tc.file == "dentry-underflow-debian-6.1.log" && len(reps) > 0 && !strings.Contains(reps[0].Report, "WARNING: CPU") {
			t.Errorf("%s: the WARNING is not part of the BUG's report:\n%s", tc.file, reps[0].Report)
		}
	}
}

// TestAssertionCondition: LASSERT's "ASSERTION( x )" and __LASSERT's
// "ASSERTION(x)" give the same condition; wrapped ones are joined.
func TestAssertionCondition(t *testing.T) {
	for in, want := range map[string]string{
		"f()) ASSERTION( a == 1 ) failed: msg":         "a == 1",
		"f()) ASSERTION(a == 1) failed":                "a == 1",
		"f()) ASSERTION((a) == 1) failed":              "(a) == 1",
		"f()) ASSERTION((((a) & 7)\n    == 1)) failed": "(((a) & 7) == 1)",
		"f()) ASSERTION( a == f(1 ) failed":            "a == f(1",
	} {
		if got, ok := assertionCondition([]byte(in)); !ok || got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

// TestStreamClosesStallAtTraceEnd: a self-detected stall and a soft
// lockup are returned by the Feed of their trace's last line, not when the
// next report begins (on a real system that is the stall timeout later).
func TestStreamClosesStallAtTraceEnd(t *testing.T) {
	data, err := os.ReadFile("testdata/kernel/module-stall-debian-6.1.log")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	s := NewStream()
	early := 0
	for i, ln := range lines {
		for _, r := range s.Feed(ln) {
			header := lines[r.StartLine-1]
			if !strings.Contains(header, "self-detected stall") && !strings.Contains(header, "soft lockup") {
				continue
			}
			early++
			if r.EndLine != i+1 || !strings.HasSuffix(ln, "</TASK>") {
				t.Errorf("%q (line %d) returned at line %d %q, want its </TASK> at line %d", r.Title, r.StartLine, i+1, ln, r.EndLine)
			}
		}
	}
	if early != 5 {
		t.Errorf("%d self-detected stalls and soft lockups returned by Feed, want 5", early)
	}
}

// TestStreamIdleClosesStall: an RCU stall detected by another CPU dumps the
// grace-period kthread's stack and then the stalled CPU's; after its last
// trace and a quiet period (Idle), it is returned whole, as Parse sees it.
func TestStreamIdleClosesStall(t *testing.T) {
	data, err := os.ReadFile("testdata/kernel/double-lock.log")
	if err != nil {
		t.Fatal(err)
	}
	var want *Report
	for _, r := range Parse(data) {
		if strings.Contains(r.Title, "rcu detected stall") {
			want = &r
			break
		}
	}
	if want == nil {
		t.Fatal("Parse finds no stall in double-lock.log")
	}
	s := NewStream()
	lines := strings.Split(string(data), "\n")
	for _, ln := range lines[:want.EndLine] {
		for _, r := range s.Feed(ln) {
			if r.Title == want.Title {
				t.Fatalf("stall returned by Feed at line %d, before Idle", r.EndLine)
			}
		}
	}
	got := s.Idle()
	if len(got) != 1 || !reflect.DeepEqual(got[0], *want) {
		t.Fatalf("Idle after line %d returned %q, want the stall %q as Parse gives it", want.EndLine, titles(got), want.Title)
	}
	if more := s.Idle(); len(more) != 0 {
		t.Errorf("a second Idle returned %q", titles(more))
	}
}

// TestSkipMatcherMatchesRegexp: the skip sets decide as the regular
// expression joining their patterns with "|" does, for every function name
// of the corpus and testdata logs and for names made to hit the edges.
func TestSkipMatcherMatchesRegexp(t *testing.T) {
	names := map[string]bool{"": true, "down": true, "xdown": true, "downx": true, "copyin": true,
		"_trap": true, "do_trap_x": true, "crc32": true, "crc": true, "kvfree": true, "kfree": true,
		"vmalloc": true, "kzalloc_node": true, "read_once_x_nocheck": true, "atomic64_try_cmpxchg": true}
	var logs [][]byte
	files, _ := filepath.Glob("testdata/kernel/*.log")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, data)
	}
	for _, c := range corpusCasesOptional(t) {
		logs = append(logs, c.log)
	}
	for _, data := range logs {
		for _, ln := range bytes.Split(data, []byte("\n")) {
			if f, ok := parseFrame(ln); ok {
				names[f.Func] = true
			}
		}
	}
	check := func(what string, patterns []string, m *skipMatcher) {
		re := regexp.MustCompile(strings.Join(patterns, "|"))
		for n := range names {
			if got, want := m.match(n), re.MatchString(n); got != want {
				t.Errorf("%s: %q skipped %v, the expression says %v", what, n, got, want)
			}
		}
	}
	check("global", skippedFrames, globalSkip.global)
	seen := map[string]bool{} // specs with the same own patterns decide alike
	for _, r := range rules {
		for _, f := range r.formats {
			if f.stack == nil || len(f.stack.skip) == 0 || seen[strings.Join(f.stack.skip, "|")] {
				continue
			}
			seen[strings.Join(f.stack.skip, "|")] = true
			check(r.kind+" "+f.tmpl, f.stack.skip, f.stack.skipper.own)
		}
	}
	t.Logf("%d names checked", len(names))
}

// TestCorpusDentryWarningOneReport: syzkaller's corpus file 624 has the
// dentry message followed by umount_check's WARN_ON(): one report.
func TestCorpusDentryWarningOneReport(t *testing.T) {
	path := filepath.Join(corpusDir, "624")
	requireShared(t, path)
	reps := Parse(readCorpusCase(t, path).log)
	if len(reps) != 1 || reps[0].Title != "BUG: Dentry still in use in unmount" || !strings.Contains(reps[0].Report, "WARNING: CPU") {
		t.Errorf("got %q, want one report 'BUG: Dentry still in use in unmount' holding the WARNING", titles(reps))
	}
}

// Lock sites of lockdep reports, in the current and the old (with the
// address in brackets) forms, are marked; other frames of lines with "at"
// in them are not.
func TestLockSiteFrames(t *testing.T) {
	for line, want := range map[string]bool{
		"[    3.304134]  #0: ffff8880007370a8 (&sb->s_type->i_mutex_key#5){.+.+}-{3:3}, at: walk_component+0x68/0xc1":    true,
		"[    2.015491] ffffffffa0002018 (crashmod_obj.lock){+.+.}-{2:2}, at: crashmod_double_lock+0x14/0x19 [crashmod]": true,
		"[  703.126701]  #0:  (rtnl_mutex){+.+.+.}, at: [<ffffffff822d37bc>] rtnl_lock+0x1c/0x20":                        true,
		"[  100.000000]        at: ll_splice_alias+0x38/0x1c0 [lustre]":                                                  true,
		"[    1.000000] WARNING: CPU: 0 PID: 1 at fs/namei.c:12 walk_component+0x68/0xc1":                                false,
		"[    1.000000] hardirqs last  enabled at (1234): [<ffffffff81000000>] _raw_spin_unlock_irq+0x1f/0x40":           false,
		"[    1.000000] RIP: 0010:seedfs_find+0x55/0x7a":                                                                 false,
		"[    1.000000]  seedfs_lookup+0x1e/0x40":                                                                        false,
	} {
		f, ok := ParseFrame(line)
		if !ok || f.Lock != want {
			t.Errorf("%q: frame %+v (%v), lock site %v, want %v", line, f, ok, f.Lock, want)
		}
	}
}

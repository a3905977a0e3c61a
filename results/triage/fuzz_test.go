package triage

import (
	"strings"
	"testing"
)

// FuzzStream feeds arbitrary lines: no panic, no hang, and every report has
// sane line numbers and a title.
func FuzzStream(f *testing.F) {
	f.Add("[    1.0] BUG: unable to handle kernel NULL pointer dereference at 0\n[    1.1] RIP: 0010:f+0x1/0x2\n[    1.2] Call Trace:\n[    1.3]  g+0x1/0x2\n[    1.4] ---[ end trace ]---")
	f.Add("WARNING: possible recursive locking detected\nx/1 is trying to acquire lock:\n(&l){+.+.}, at: f+0x1/0x2\n")
	f.Add("LustreError: 1:0:(a.c:1:f()) ASSERTION( x ) failed: y\nLustreError: 1:0:(a.c:1:f()) LBUG\nKernel panic - not syncing: LBUG")
	f.Add("[   10.1][ T1] INFO: task a:1 blocked for more than 120 seconds.\n[   10.2][ C0] Call Trace:\n")
	f.Add("BUG: Dentry x{i=1,n=y}  still in use (-1) [unmount of t t]\n------------[ cut here ]------------\nWARNING: CPU: 1 PID: 2 at fs/dcache.c:1 umount_check+0x1/0x2\nCall Trace:\n <TASK>\n f+0x1/0x2 [m]\n </TASK>")
	f.Add("rcu: INFO: rcu_preempt self-detected stall on CPU\nRIP: 0010:f+0x1/0x2 [m]\nCall Trace:\n <TASK>\n g+0x1/0x2\n </TASK>\nf()) ASSERTION((a)\n == 1)) failed")
	f.Fuzz(func(t *testing.T, in string) {
		s := NewStream()
		n := 0
		check := func(reps []Report) {
			for _, r := range reps {
				if r.Title == "" || r.StartLine < 1 || r.EndLine < r.StartLine || r.EndLine > n {
					t.Fatalf("bad report %q lines %d-%d after %d lines", r.Title, r.StartLine, r.EndLine, n)
				}
			}
		}
		for i, ln := range strings.Split(in, "\n") {
			n++
			check(s.Feed(ln))
			if i%7 == 6 {
				check(s.Idle()) // a quiet period
			}
		}
		check(s.Flush())
	})
}

// FuzzDemangle: arbitrary symbols neither panic nor hang the demanglers.
func FuzzDemangle(f *testing.F) {
	f.Add("_RNvXs1_CscPPBqWtAqum_11ashmem_rustNtB5_6AshmemNtNtCs43vyB533jt3_6kernel10miscdevice10MiscDevice4mmap")
	f.Add("_ZN2ns4funcEv")
	f.Add("_RINvB0_1aB0_E")
	f.Fuzz(func(t *testing.T, sym string) {
		demangle(sym)
	})
}

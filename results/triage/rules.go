package triage

import (
	"bytes"
	"regexp"
	"strings"
)

// This file holds the data that drives detection and titling: which lines
// start a report (a rule's header), and for each header the title formats
// tried in order. The tables follow syzkaller's pkg/report (linux.go)
// closely, so that a title from kregress and one from syzbot name the same
// bug alike: see NOTICE in this directory for the Apache-2.0 attribution and
// what differs. Rules for environments kregress never runs (trusty, gVisor's
// sentry, SYZFAIL) are left out. Each table is pinned by logs in the corpus
// tests.

// rx compiles a pattern after expanding the placeholders used in the tables:
// @PC@ a bracketed code address, @FUNC@ a function name followed by "." or
// "+" (captured), @SRC@ a source file:line (captured), @TASK@ a short task
// description.
func rx(pattern string) *regexp.Regexp {
	r := strings.NewReplacer(
		"@PC@", `\[\<?(?:0x)?[0-9a-f]+\>?\]`,
		"@FUNC@", `([a-zA-Z0-9_]+)(?:\.|\+)`,
		"@SRC@", `([a-zA-Z0-9-_/.]+\.[a-z]+:[0-9]+)`,
		"@TASK@", `[\s\S]{0,100}?`,
	)
	return regexp.MustCompile(r.Replace(pattern))
}

func rxs(patterns ...string) []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(patterns))
	for i, p := range patterns {
		out[i] = rx(p)
	}
	return out
}

// traceHere is the marker in stackSpec.steps meaning "parse a stack trace
// from here"; it is compared by identity.
var traceHere = regexp.MustCompile(`^\x00trace\x00$`)

// rule is one kind of report: the header substring that marks its first
// line, the lines that look like it but are not reports, and its title
// formats.
type rule struct {
	header  string
	require *regexp.Regexp // when set, the line must also match this
	ignore  []*regexp.Regexp
	formats []*format
	kind    string // short name for the class, for documentation and tests
}

// format turns a matched report into a title.
type format struct {
	// title must match the report for this format to apply.
	title *regexp.Regexp
	// report, when set, must also match, else the report is corrupted;
	// its captures (or title's when report is nil) are the title arguments.
	report *regexp.Regexp
	// tmpl is the title template: fmt verbs %[N]v name captures, then frames.
	tmpl string
	// alt are alternative title templates for deduplication.
	alt []string
	// more, when set, computes one more argument from the report text,
	// appended after the captures; false means the format does not match.
	more func(text []byte) (string, bool)
	// stack, when set, extracts the guilty frame(s) appended to the args.
	stack *stackSpec
	// noTrace: the report is not expected to contain a stack trace.
	noTrace bool
	// corrupted: a match means the report is damaged.
	corrupted bool
}

// stackSpec says how to find the guilty frame: steps are matched line by
// line in order; a capturing step yields a frame, traceHere parses a trace.
// alt steps are tried when steps fail.
type stackSpec struct {
	steps    []*regexp.Regexp
	altSteps []*regexp.Regexp
	skip     []string
	pick     func(frames []string) (string, int)
	// moduleFirst: a frame of a loadable module ("func+0x1/0x2 [mod]"),
	// the innermost one not skipped, names the report. Stalls and lockups
	// loop wherever their caller left them; when that is in a module (a
	// filesystem client under test), the module's function is the bug,
	// not the kernel entry point below it, and kernels whose stall reports
	// lack the interrupt frame that the steps look for still get a title.
	moduleFirst bool

	skipper *skipSet // the global skip list plus skip
}

// stepNeedles lists, for step expressions used on every line, substrings
// of which every match contains one; lines with none are not matched.
var stepNeedles = map[*regexp.Regexp][][]byte{}

func needles(re *regexp.Regexp, subs ...string) *regexp.Regexp {
	for _, s := range subs {
		stepNeedles[re] = append(stepNeedles[re], []byte(s))
	}
	return re
}

// stepMayMatch is a cheap necessary condition for re matching ln.
func stepMayMatch(re *regexp.Regexp, ln []byte) bool {
	ns, ok := stepNeedles[re]
	if !ok {
		return true
	}
	for _, n := range ns {
		if bytes.Contains(ln, n) {
			return true
		}
	}
	return false
}

// ripFrame matches the line naming the faulting instruction.
var ripFrame = needles(rx(`(?:IP|NIP|pc |PC is at):? (?:(?:[0-9]+:)?(?:@PC@ +){0,2}@FUNC@|(?:[0-9]+:)?0x[0-9a-f]+|(?:[0-9]+:)?@PC@ +\[< *\(null\)>\] +\(null\)|[0-9]+: +\(null\))`), "IP", "pc ", "PC is at")

// callTrace matches the start of a call trace.
var callTrace = needles(rx(`(?:Call (?:T|t)race:)|(?:Backtrace:)`), "race:")

// riscvStackStart is the last line of a RISC-V register dump before a trace.
var riscvStackStart = regexp.MustCompile(`status: [0-9a-f]{16} badaddr: [0-9a-f]{16} cause: [0-9a-f]{16}`)

// traceStarts match lines that begin a stack trace.
var traceStarts = []*regexp.Regexp{
	regexp.MustCompile(`Call (?:T|t)race`),
	regexp.MustCompile(`Allocated:`),
	regexp.MustCompile(`Allocated by task [0-9]+:`),
	regexp.MustCompile(`Freed:`),
	regexp.MustCompile(`Freed by task [0-9]+:`),
	regexp.MustCompile(`[^k] backtrace(?: \(crc [[:xdigit:]]*\))?:`),
	regexp.MustCompile(`Backtrace:`),
	regexp.MustCompile(`Uninit was stored to memory at`),
	riscvStackStart,
}

// traceStartNeedles holds, for each of traceStarts, a substring every
// match contains, to skip the expression cheaply.
var traceStartNeedles = [][]byte{
	[]byte("race"), []byte("Allocated:"), []byte("Allocated by task"), []byte("Freed:"),
	[]byte("Freed by task"), []byte("backtrace"), []byte("Backtrace:"),
	[]byte("Uninit was stored"), []byte("badaddr: "),
}

// isTraceStart reports whether ln begins a stack trace.
func isTraceStart(ln []byte) bool {
	for i, re := range traceStarts {
		if bytes.Contains(ln, traceStartNeedles[i]) && re.Match(ln) {
			return true
		}
	}
	return false
}

// frameLines match lines holding frames; captures are function names.
var frameLines = []*regexp.Regexp{
	rx(`^ *(?:@PC@ ){0,2}@FUNC@`),
	rx(`^ *@PC@ \(([a-zA-Z0-9_.]+)\) from @PC@ \(@FUNC@`),
}

// badTraceLines mark a trace that fault injection interleaved with.
var badTraceLines = []*regexp.Regexp{
	rx(`^( \[\<?(?:0x)?[0-9a-f]+\>?\])? should_fail(slab)?(\.[a-z0-9.]+)?\+0x`),
}

// syscallPrefixes are stripped from frames to name the syscall alike across
// architectures and kernel versions.
var syscallPrefixes = []string{
	"SYSC_", "SyS_", "sys_", "__x64_", "__ia32_", "__arm64_", "____sys_",
	"___sys_", "__sys_", "__se_", "__se_sys_", "__do_sys_", "compat_SYSC_",
	"compat_SyS_", "ksys_",
}

// skippedFrames are never guilty: sanitizer runtime, printing, locking,
// allocation, string and list helpers, and other plumbing. Each entry is a
// regular expression matched anywhere in the function name.
var skippedFrames = []string{
	"__sanitizer", "__asan", "kasan", "hwasan", "__msan", "kmsan",
	"kcsan_setup_watchpoint", "check_memory_region", "check_heap_object",
	"check_object", "read_word_at_a_time", "(read|write)_once_.*nocheck",
	"print_address_description", "panic", "invalid_op", "report_bug",
	"fixup_bug", "print_report", "print_usage_bug", "do_error",
	`_trap$|do_trap`, "show_stack", "dump_stack", "walk_stack",
	"dump_backtrace", "warn_slowpath", "warn_alloc", "warn_bogus", "__warn",
	"alloc_page", "k?v?(?:m|z|c)alloc", "krealloc", "kmem_cache",
	"allocate_slab", "__alloc_frozen_pages_noprof", "folio_(?:alloc|unlock)",
	"filemap_alloc_folio", "__filemap_get_folio", "find_or_create_page",
	"do_read_cache_folio", "read_cache_page", "pagecache_get_page",
	"grab_cache_page_write_begin", "slab_", "debug_object",
	"timer_is_static_object", "work_is_static_object", "__might_fault",
	"print_unlock", "imbalance_bug", "lockdep", "bh_enable", "bh_disable",
	"perf_trace", "lock_acquire", "lock_release", "lock_class", "mark_lock",
	"(reacquire|mark)_held_locks", "raw_spin_rq", "spin_lock", "spin_trylock",
	"spin_unlock", "read_lock", "read_trylock", "write_lock", "write_trylock",
	"read_unlock", "write_unlock", "^down$", "down_read", "down_write",
	"down_read_trylock", "down_write_trylock", "down_trylock", "up_read",
	"up_write", "^mutex_", "^__mutex_", "^rt_mutex_", "owner_on_cpu",
	"osq_lock", "osq_unlock",
	"atomic(64)?_(dec|inc|read|set|or|xor|and|add|sub|fetch|xchg|cmpxchg|try)",
	"(set|clear|change|test)_bit", "__wake_up", "^refcount_", "^kref_",
	"ref_tracker", "seqprop_assert", "memcpy", "memcmp", "memset", "memchr",
	"memmove", "memdup", "strcmp", "strncmp", "strcpy", "strlcpy", "strncpy",
	"strscpy", "strlen", "strstr", "strnstr", "strnlen", "strchr", "strdup",
	"strndup", "copy_to_user", "copy_from_user", "copy_to_iter",
	"copy_from_iter", "copy_page_to_iter", "copy_page_from_iter",
	"copy_folio_to_iter", "^copyin$", "^copyout$", "put_user", "get_user",
	"might_fault", "might_sleep", "list_add", "list_del", "list_replace",
	"list_move", "list_splice", "^rb_", "^__rb_", "_indirect_thunk_",
	"string", "pointer", "snprintf", "scnprintf", "kasprintf", "kvasprintf",
	"printk", "va_format", "dev_info", "dev_notice", "dev_warn", "dev_err",
	"dev_alert", "dev_crit", "dev_emerg", "program_check_exception",
	"program_check_common", "del_timer", "flush_work", "__cancel_work_timer",
	"cancel_work_sync", "try_to_grab_pending", "flush_workqueue",
	"drain_workqueue", "destroy_workqueue", "queue_work", "finish_wait",
	"kthread_stop", "kobject_", "add_uevent_var", "get_device_parent",
	"device_add", "device_del", "device_unregister", "device_destroy",
	"device_release", "devres_release_all", "hwrng_unregister",
	"i2c_del_adapter", "__unregister_client", "device_for_each_child",
	"rollback_registered", "unregister_netdev", "sysfs_remove",
	"device_remove_file", "tty_unregister_device", "dummy_urb_enqueue",
	"usb_kill_urb", "usb_kill_anchored_urbs", "usb_control_msg",
	"usb_hcd_submit_urb", "usb_submit_urb", "^complete$",
	"wait_for_completion", "^kv?free$", "kfree_skb", "readb$", "readw$",
	"readl$", "readq$", "writeb$", "writew$", "writel$", "writeq$",
	"logic_in", "logic_out", `^crc\d+`, "crc_itu_t", "__might_resched",
	"assertfail", "^iput$", "^iput_final$", "^ihold$", "hex_dump_to_buffer",
	"print_hex_dump", "^klist_", "(trace|lockdep)_(hard|soft)irq",
	"^(un)?lock_page", "stack_trace_consume_entry", "arch_stack_walk",
	"stack_trace_save", "insert_work", "__queue_delayed_work",
	"queue_delayed_work_on", "ida_free", "do_(kernel|translation)_fault",
	"do_mem_abort", "el1_abort", "el1h_64_sync(?:_handler)?", "print_tainted",
	"xas_(?:start|load|find)", "find_lock_entries",
	"truncate_inode_pages_range", "__phys_addr", "__fortify_report",
	"cleanup_srcu_struct", "rhashtable_lookup", "extract_(user|iter)_to_sg",
	"drop_nlink", "^get_taint$", "^put_device$", "lock_timer_base",
	"__timer_delete_sync", "sk_stop_timer_sync", "__mod_timer", "fast_dput",
	"dput", "mark_buffer_dirty",
	// Lustre's assertion and debug plumbing.
	"^libcfs_", "^lbug_with_loc", "^cfs_",
}

// midReportHeaders do not start a new report while one is open: they are
// consequences printed in the middle or at the end of another report.
var midReportHeaders = rxs(
	`invalid opcode: 0000`,
	`Kernel panic - not syncing`,
	`unregister_netdevice: waiting for`,
	`PANIC: double fault`,
	`Internal error:`,
	`LustreError: .*\) LBUG`,
	`\(\)\) LBUG`,
)

// infoWithStack are messages that carry a stack trace but are not bugs; seen
// inside a report they end it.
var infoWithStack = []string{
	"vmalloc: allocation failure:",
	"FAULT_INJECTION: forcing a failure",
	"FAULT_FLAG_ALLOW_RETRY missing",
}

// corruptedTitle matches titles that a merged timestamp has damaged.
var corruptedTitle = regexp.MustCompile(`\[ *[0-9]+\.[0-9]+\]`)

var warningRIP = needles(rx("(?:"+ripFrame.String()+"|--- interrupt: [0-9]+ at @FUNC@)"), "IP", "pc ", "PC is at", "--- interrupt: ")

func warningStack(skip ...string) *stackSpec {
	return &stackSpec{
		steps:    []*regexp.Regexp{warningRIP, traceHere},
		altSteps: []*regexp.Regexp{callTrace, traceHere},
		skip:     skip,
	}
}

func ripTrace(skip ...string) *stackSpec {
	return &stackSpec{steps: []*regexp.Regexp{ripFrame, callTrace, traceHere}, skip: skip}
}

// ripOrCallTrace is ripTrace, falling back to the call trace alone for
// reports quoted without registers.
func ripOrCallTrace(skip ...string) *stackSpec {
	s := ripTrace(skip...)
	s.altSteps = []*regexp.Regexp{callTrace, traceHere}
	return s
}

func callTraceOnly(skip ...string) *stackSpec {
	return &stackSpec{steps: []*regexp.Regexp{callTrace, traceHere}, skip: skip}
}

// rules is the table of report kinds, tried in this order on every line.
var rules = []*rule{
	{
		kind:   "bug",
		header: "BUG:",
		ignore: rxs("ODEBUG:", "Boot_DEBUG:", "xlog_status:", "DEBUG:", "BUG: no syscalls can create resource"),
		formats: []*format{
			{
				title:  rx(`BUG: KASAN:`),
				report: rx(`BUG: KASAN: ([a-z\-]+) in @FUNC@(?:.*\n)+?.*(Read|Write) (?:of size|at addr) (?:[0-9a-f]+)`),
				tmpl:   "KASAN: %[1]v %[3]v in %[4]v",
				alt:    []string{"bad-access in %[4]v"},
				stack: &stackSpec{
					steps: []*regexp.Regexp{rx(`BUG: KASAN: (?:[a-z\-]+) in @FUNC@`), callTrace, traceHere},
					skip:  []string{"kernel_fault", "tag_check", "mem_abort", "^el1_", "^el1h_"},
				},
			},
			{
				title:  rx(`BUG: KASAN:`),
				report: rx(`BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in @FUNC@`),
				tmpl:   "KASAN: invalid-free in %[2]v",
				alt:    []string{"invalid-free in %[2]v"},
				stack: &stackSpec{
					steps: []*regexp.Regexp{rx(`BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in @FUNC@`), callTrace, traceHere},
					skip:  []string{"slab_", "kfree", "vunmap", "vfree"},
				},
			},
			{title: rx(`BUG: KASAN: ([a-z\-]+) on address(?:.*\n)+?.*(Read|Write) of size ([0-9]+)`), tmpl: "KASAN: %[1]v %[2]v"},
			{title: rx(`BUG: KASAN: (.*)`), tmpl: "KASAN: %[1]v", corrupted: true},
			{
				title:  rx(`BUG: KMSAN: kernel-usb-infoleak`),
				report: rx(`BUG: KMSAN: kernel-usb-infoleak in @FUNC@`),
				tmpl:   "KMSAN: kernel-usb-infoleak in %[2]v",
				alt:    []string{"KMSAN origin in %[3]v"},
				stack: &stackSpec{
					steps: []*regexp.Regexp{traceHere, rx(`(Local variable .* created at:|Uninit was created at:)`), traceHere},
					skip:  []string{"alloc_skb", "usb_submit_urb", "usb_start_wait_urb", "usb_bulk_msg", "usb_interrupt_msg", "usb_control_msg"},
				},
				noTrace: true,
			},
			{
				title:  rx(`BUG: KMSAN:`),
				report: rx(`BUG: KMSAN: ([a-z\-]+) in @FUNC@`),
				tmpl:   "KMSAN: %[1]v in %[3]v",
				alt:    []string{"bad-access in %[3]v"},
				stack: &stackSpec{
					steps: []*regexp.Regexp{traceHere, rx(`(Local variable .* created at:|Uninit was created at:)`), traceHere},
					skip:  []string{"alloc_skb", "netlink_ack", "netlink_rcv_skb", "_encrypt$", "^(?:crypto|cipher|drbg|rng)_"},
				},
				noTrace: true,
			},
			{title: rx(`BUG: KCSAN: data-race`), report: rx(`BUG: KCSAN: (.*)`), tmpl: "KCSAN: %[1]v", noTrace: true},
			{title: rx(`BUG: KCSAN:`), report: rx(`BUG: KCSAN: (.*)`), tmpl: "KCSAN: %[1]v", noTrace: true},
			{
				title: rx(`BUG: KFENCE: (use-after-free|out-of-bounds) (read|write) in @FUNC@`),
				tmpl:  "KFENCE: %[1]v %[2]v in %[4]v",
				alt:   []string{"bad-access in %[4]v"},
				stack: &stackSpec{steps: []*regexp.Regexp{rx(`BUG: KFENCE: (?:[a-z\- ]+) in @FUNC@`), traceHere}},
			},
			{
				title:   rx(`BUG: KFENCE: invalid free in @FUNC@`),
				tmpl:    "KFENCE: invalid free in %[2]v",
				alt:     []string{"invalid-free in %[2]v"},
				noTrace: true,
				stack:   &stackSpec{steps: []*regexp.Regexp{rx(`BUG: KFENCE: (?:[a-z\- ]+) in @FUNC@`), traceHere}},
			},
			{
				title: rx(`BUG: KFENCE: invalid (read|write) in @FUNC@`),
				tmpl:  "KFENCE: invalid %[1]v in %[3]v",
				alt:   []string{"bad-access in %[3]v"},
				stack: &stackSpec{steps: []*regexp.Regexp{rx(`BUG: KFENCE: (?:[a-z\- ]+) in @FUNC@`), traceHere}},
			},
			{
				title:   rx(`BUG: KFENCE: memory corruption in @FUNC@`),
				tmpl:    "KFENCE: memory corruption in %[2]v",
				noTrace: true,
				stack:   &stackSpec{steps: []*regexp.Regexp{rx(`BUG: KFENCE: (?:[a-z\- ]+) in @FUNC@`), traceHere}},
			},
			{
				title: rx(`BUG: (?:unable to handle kernel paging request|unable to handle page fault for address|Unable to handle kernel data access)`),
				tmpl:  "BUG: unable to handle kernel paging request in %[1]v",
				alt:   []string{"bad-access in %[1]v"},
				stack: ripTrace(),
			},
			{
				title: rx(`BUG: (?:unable to handle kernel NULL pointer dereference|kernel NULL pointer dereference|Kernel NULL pointer dereference)`),
				tmpl:  "BUG: unable to handle kernel NULL pointer dereference in %[1]v",
				alt:   []string{"bad-access in %[1]v"},
				stack: ripTrace(),
			},
			{title: rx(`BUG: (?:unable to handle kernel|Unable to handle kernel)`), tmpl: "BUG: unable to handle kernel", corrupted: true},
			{
				title: rx(`BUG: (spinlock|rwlock) (lockup suspected|already unlocked|recursion|cpu recursion|bad magic|wrong owner|wrong CPU|trylock failure on UP)`),
				tmpl:  "BUG: %[1]v %[2]v in %[3]v",
				stack: callTraceOnly("spin_", "_lock", "_unlock"),
			},
			{
				title: rx(`BUG: soft lockup`),
				tmpl:  "BUG: soft lockup in %[1]v",
				alt:   []string{"stall in %[1]v"},
				stack: &stackSpec{steps: []*regexp.Regexp{ripFrame, callTrace, traceHere}, pick: pickStallFrame, moduleFirst: true},
			},
			{title: rx(`BUG: .*still has locks held!`), report: rx(`BUG: .*still has locks held!(?:.*\n)+?.*@PC@ +@FUNC@`), tmpl: "BUG: still has locks held in %[1]v"},
			{title: rx(`BUG: scheduling while atomic`), tmpl: "BUG: scheduling while atomic in %[1]v", stack: callTraceOnly("schedule")},
			{
				title:   rx(`BUG: lock held when returning to user space`),
				report:  rx(`BUG: lock held when returning to user space(?:.*\n)+?.*leaving the kernel with locks still held(?:.*\n)+?.*at: (?:@PC@ +)?@FUNC@`),
				tmpl:    "BUG: lock held when returning to user space in %[1]v",
				noTrace: true,
			},
			{
				title: rx(`BUG: bad unlock balance detected!`),
				tmpl:  "BUG: bad unlock balance in %[1]v",
				stack: &stackSpec{steps: []*regexp.Regexp{rx(`@PC@ +@FUNC@`), callTrace, traceHere}},
			},
			{title: rx(`BUG: held lock freed!`), report: rx(`BUG: held lock freed!(?:.*\n)+?.*@PC@ +@FUNC@`), tmpl: "BUG: held lock freed in %[1]v"},
			{title: rx(`BUG: Bad rss-counter state`), tmpl: "BUG: Bad rss-counter state", noTrace: true},
			{title: rx(`BUG: non-zero nr_ptes on freeing mm`), tmpl: "BUG: non-zero nr_ptes on freeing mm", noTrace: true},
			{title: rx(`BUG: non-zero nr_pmds on freeing mm`), tmpl: "BUG: non-zero nr_pmds on freeing mm", noTrace: true},
			{
				title: rx(`BUG: Dentry .* still in use`),
				// The count is negative when the refcount underflowed; mail
				// wraps the line before it.
				report: rx(`BUG: Dentry .* still in use\s*\(-?[0-9]+\) \[(unmount) of ([^\]]+)\]`),
				tmpl:   "BUG: Dentry still in use in %[1]v",
				alt:    []string{"BUG: Dentry still in use [%[1]v of %[2]v]"},
			},
			{
				title: rx(`BUG: Bad page (state|cache)`),
				tmpl:  "BUG: Bad page %[1]v in %[2]v",
				stack: &stackSpec{
					steps: []*regexp.Regexp{rx(`page last allocated`), traceHere},
					skip: []string{"(free|put|get|update|release)_page", "free_unref", "^_*folio",
						"truncate_inode_pages", "page_frag_free", "alloc", "vmap", "page_owner"},
				},
			},
			{title: rx(`BUG: Bad page map`), tmpl: "BUG: Bad page map"},
			{title: rx(`BUG: workqueue lockup`), tmpl: "BUG: workqueue lockup", noTrace: true},
			{
				title: rx(`BUG: sleeping function called from invalid context at (.*)`),
				tmpl:  "BUG: sleeping function called from invalid context in %[2]v",
				stack: callTraceOnly(),
			},
			{
				title: rx(`BUG: using ([a-z_]+)\(\) in preemptible`),
				tmpl:  "BUG: using %[1]v() in preemptible code in %[2]v",
				stack: callTraceOnly("dump_stack", "preemption", "preempt", "debug_", "processor_id", "this_cpu"),
			},
			{
				title:   rx(`BUG: workqueue leaked lock or atomic`),
				report:  rx(`BUG: workqueue leaked lock or atomic(?:.*\n)+?.*last function: ([a-zA-Z0-9_]+)\n`),
				tmpl:    "BUG: workqueue leaked lock or atomic in %[1]v",
				noTrace: true,
			},
			{
				title: rx(`BUG: memory leak`),
				tmpl:  "memory leak in %[1]v",
				stack: &stackSpec{
					steps: []*regexp.Regexp{rx(`backtrace(?: \(crc [[:xdigit:]]*\))?:`), traceHere},
					skip: []string{"kmemleak", "mmap", "kmem", "slab", "alloc", "create_object",
						"idr_get", "list_lru_init", "kasprintf", "kvasprintf",
						"pcpu_create", "strdup", "strndup", "memdup"},
				},
			},
			{
				title: rx(`BUG: .*stack guard page was hit at`),
				tmpl:  "BUG: stack guard page was hit in %[1]v",
				alt:   []string{"stack-overflow in %[1]v"},
				stack: &stackSpec{steps: []*regexp.Regexp{ripFrame, callTrace, traceHere}, pick: pickStallFrame},
			},
			{title: rx(`BUG: Invalid wait context`), tmpl: "WARNING: locking bug in %[1]v", stack: callTraceOnly("lock_sock", "release_sock")},
			{title: rx(`BUG:[[:space:]]*(?:\n|$)`), tmpl: "BUG: corrupted", corrupted: true},
		},
	},
	{
		kind:   "warning",
		header: "WARNING:",
		ignore: rxs(
			`WARNING: /etc/ssh/moduli does not exist, using fixed modulus`,
			`WARNING: workqueue cpumask: online intersect > possible intersect`,
			`WARNING: [Tt]he mand mount option`,
			`WARNING: Unsupported flag value\(s\) of 0x%x in DT_FLAGS_1`,
			`WARNING: Unprivileged eBPF is enabled with eIBRS`,
			`WARNING: fbcon: Driver '(.*)' missed to adjust virtual screen size (\((?:\d+)x(?:\d+) vs\. (?:\d+)x(?:\d+)\))`,
			`WARNING: See https.* for mitigation options.`,
			`WARNING: kernel not compiled with CPU_SRSO`,
			`EXT4-[Ff][Ss](?: \(.*\))?:`,
			`(?i)warning: .* uses (deprecated v2 capabilities|wireless extensions)`,
			`XFS \(\w+\): WARNING`,
		),
		formats: []*format{
			{
				title: rx(`WARNING: .*lib/debugobjects\.c.* (?:debug_print|debug_check|at)`),
				tmpl:  "WARNING: ODEBUG bug in %[1]v",
				stack: warningStack("debug_", "rcu", "hrtimer_", "timer_", "work_", "percpu_", "vunmap",
					"vfree", "__free_", "debug_check", "kobject_"),
			},
			{title: rx(`WARNING: .*mm/usercopy\.c.* (?:usercopy_warn|at)`), tmpl: "WARNING: bad usercopy in %[1]v", stack: warningStack("usercopy", "__check")},
			{title: rx(`WARNING: .*lib/kobject\.c.* (?:kobject_|at)`), tmpl: "WARNING: kobject bug in %[1]v", stack: warningStack("kobject_")},
			{title: rx(`WARNING: .*fs/proc/generic\.c.* (?:proc_register|at)`), tmpl: "WARNING: proc registration bug in %[1]v", stack: warningStack("proc_")},
			{title: rx(`WARNING: .*lib/refcount\.c.* (?:refcount_|at)`), tmpl: "WARNING: refcount bug in %[1]v", stack: warningStack("refcount", "kobject_")},
			{title: rx(`WARNING: .*kernel/locking/lockdep\.c.*lock_`), tmpl: "WARNING: locking bug in %[1]v", stack: warningStack("lock_sock", "release_sock")},
			{title: rx(`WARNING: .*still has locks held!`), report: rx(`WARNING: .*still has locks held!(?:.*\n)+?.*at: @FUNC@`), tmpl: "WARNING: still has locks held in %[1]v"},
			{title: rx(`WARNING: Nested lock was not taken`), tmpl: "WARNING: nested lock was not taken in %[1]v", stack: warningStack()},
			{
				title:   rx(`WARNING: lock held when returning to user space`),
				report:  rx(`WARNING: lock held when returning to user space(?:.*\n)+?.*leaving the kernel with locks still held(?:.*\n)+?.*at: (?:@PC@ +)?@FUNC@`),
				tmpl:    "WARNING: lock held when returning to user space in %[1]v",
				noTrace: true,
			},
			{title: rx(`WARNING: .*mm/.*\.c.* k?.?malloc`), tmpl: "WARNING: kmalloc bug in %[1]v", stack: warningStack("kmalloc", "krealloc", "slab", "kmem")},
			{title: rx(`WARNING: .*mm/vmalloc.c.*__vmalloc_node`), tmpl: "WARNING: zero-size vmalloc in %[1]v", stack: warningStack()},
			{
				title: rx(`WARNING: .* usb_submit_urb`),
				tmpl:  "WARNING in %[1]v/usb_submit_urb",
				stack: warningStack("usb_submit_urb", "usb_start_wait_urb", "usb_bulk_msg", "usb_interrupt_msg", "usb_control_msg"),
			},
			{title: rx(`WARNING: @SRC@ at 0x\d+, CPU#\d+`), tmpl: "WARNING in %[2]v", stack: warningStack()},
			{title: rx(`WARNING: .* at @SRC@ @FUNC@`), tmpl: "WARNING in %[3]v", stack: warningStack()},
			{title: rx(`WARNING: @SRC@ at @FUNC@`), tmpl: "WARNING in %[3]v", stack: warningStack()},
			{title: rx(`WARNING: \[.*\] @SRC@ at @FUNC@.*`), tmpl: "WARNING in %[3]v", stack: warningStack()},
			{
				title:  rx(`WARNING: possible circular locking dependency detected`),
				report: rx(`WARNING: possible circular locking dependency detected(?:.*\n)+?.*is trying to acquire lock`),
				tmpl:   "possible deadlock in %[1]v",
				stack: &stackSpec{
					steps: []*regexp.Regexp{rx(`at: (?:@PC@ +)?@FUNC@`), rx(`at: (?:@PC@ +)?@FUNC@`), traceHere},
					skip:  []string{"process_one_work", "flush_workqueue", "drain_workqueue", "destroy_workqueue"},
				},
			},
			{
				title:  rx(`WARNING: possible irq lock inversion dependency detected`),
				report: rx(`WARNING: possible irq lock inversion dependency detected(?:.*\n)+?.*just changed the state of lock(?:.*\n)+?.*at: (?:@PC@ +)?@FUNC@`),
				tmpl:   "possible deadlock in %[1]v",
			},
			{
				title: rx(`WARNING: .*-safe -> .*-unsafe lock order detected`),
				tmpl:  "possible deadlock in %[1]v",
				stack: &stackSpec{steps: []*regexp.Regexp{rx(`which became (?:.*) at:`), traceHere}},
			},
			{
				title:  rx(`WARNING: possible recursive locking detected`),
				report: rx(`WARNING: possible recursive locking detected(?:.*\n)+?.*is trying to acquire lock(?:.*\n)+?.*at: (?:@PC@ +)?@FUNC@`),
				tmpl:   "possible deadlock in %[1]v",
			},
			{
				title:  rx(`WARNING: inconsistent lock state`),
				report: rx(`WARNING: inconsistent lock state(?:.*\n)+?.*takes(?:.*\n)+?.*at: (?:@PC@ +)?@FUNC@`),
				tmpl:   "inconsistent lock state in %[2]v",
				stack:  callTraceOnly(),
			},
			{
				title:  rx(`WARNING: suspicious RCU usage`),
				report: rx(`WARNING: suspicious RCU usage(?:.*\n)+?.*?@SRC@`),
				tmpl:   "WARNING: suspicious RCU usage in %[2]v",
				stack:  callTraceOnly("rcu", "kmem", "slab"),
			},
			{title: rx(`WARNING: kernel stack regs at [0-9a-f]+ in [^ ]* has bad '([^']+)' value`), tmpl: "WARNING: kernel stack regs has bad '%[1]v' value", noTrace: true},
			{title: rx(`WARNING: kernel stack frame pointer at [0-9a-f]+ in [^ ]* has bad value`), tmpl: "WARNING: kernel stack frame pointer has bad value", noTrace: true},
			{
				title: rx(`WARNING: bad unlock balance detected!`),
				tmpl:  "WARNING: bad unlock balance in %[1]v",
				stack: &stackSpec{steps: []*regexp.Regexp{rx(`@PC@ +@FUNC@`), callTrace, traceHere}},
			},
			{title: rx(`WARNING: held lock freed!`), report: rx(`WARNING: held lock freed!(?:.*\n)+?.*at:(?: @PC@)? +@FUNC@`), tmpl: "WARNING: held lock freed in %[1]v"},
			{title: rx(`WARNING: kernel stack regs .* has bad 'bp' value`), tmpl: "WARNING: kernel stack regs has bad value", noTrace: true},
			{title: rx(`WARNING: kernel stack frame pointer .* has bad value`), tmpl: "WARNING: kernel stack regs has bad value", noTrace: true},
			{title: rx(`WARNING:[[:space:]]*(?:\n|$)`), tmpl: "WARNING: corrupted", corrupted: true},
		},
	},
	{
		kind:   "info",
		header: "INFO:",
		ignore: rxs(
			"INFO: lockdep is turned off", "INFO: Stall ended before state dump start",
			"INFO: NMI handler", "INFO: recovery required on readonly filesystem",
			"(handler|interrupt).*took too long", "INFO: sys_.* is not present in /proc/kallsyms",
			"INFO: no syscalls can create resource", "rmt_storage:INFO:", "_INFO:",
		),
		formats: []*format{
			{
				title:  rx(`INFO: possible circular locking dependency detected`),
				report: rx(`INFO: possible circular locking dependency detected \](?:.*\n)+?.*is trying to acquire lock(?:.*\n)+?.*at: @PC@ +@FUNC@`),
				tmpl:   "possible deadlock in %[1]v",
			},
			{
				title:  rx(`INFO: possible irq lock inversion dependency detected`),
				report: rx(`INFO: possible irq lock inversion dependency detected \](?:.*\n)+?.*just changed the state of lock(?:.*\n)+?.*at: @PC@ +@FUNC@`),
				tmpl:   "possible deadlock in %[1]v",
			},
			{
				title:  rx(`INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected`),
				report: rx(`INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected \](?:.*\n)+?.*is trying to acquire(?:.*\n)+?.*at: @PC@ +@FUNC@`),
				tmpl:   "possible deadlock in %[1]v",
			},
			{
				title:  rx(`INFO: possible recursive locking detected`),
				report: rx(`INFO: possible recursive locking detected \](?:.*\n)+?.*is trying to acquire lock(?:.*\n)+?.*at: @PC@ +@FUNC@`),
				tmpl:   "possible deadlock in %[1]v",
			},
			{
				title:  rx(`INFO: inconsistent lock state`),
				report: rx(`INFO: inconsistent lock state \](?:.*\n)+?.*takes(?:.*\n)+?.*at: @PC@ +@FUNC@`),
				tmpl:   "inconsistent lock state in %[1]v",
			},
			// Quoted in mail, these reports often have "at:" wrapped
			// onto the next line.
			{
				title:  rx(`INFO: possible recursive locking detected`),
				report: rx(`INFO: possible recursive locking detected \](?:.*\n)+?.*is trying to acquire lock(?:.*\n)+?.*at:\s*@PC@ +@FUNC@`),
				tmpl:   "possible deadlock in %[1]v",
			},
			{
				title:  rx(`INFO: possible circular locking dependency detected`),
				report: rx(`INFO: possible circular locking dependency detected \](?:.*\n)+?.*is trying to acquire lock(?:.*\n)+?.*at:\s*@PC@ +@FUNC@`),
				tmpl:   "possible deadlock in %[1]v",
			},
			// Old kernels' banner sometimes comes without the "is trying to
			// acquire" part: the lock is the one the trace was taking.
			{
				title: rx(`INFO: possible recursive locking detected \]`),
				tmpl:  "possible deadlock in %[1]v",
				stack: callTraceOnly(),
			},
			{
				title: rx(`INFO: rcu_(?:preempt|sched|bh|tasks) (?:self-)?detected(?: expedited)? stall`),
				tmpl:  "INFO: rcu detected stall in %[1]v",
				alt:   []string{"stall in %[1]v"},
				stack: &stackSpec{
					steps:       []*regexp.Regexp{rx(`apic_timer_interrupt`), ripFrame, traceHere},
					altSteps:    []*regexp.Regexp{rx(`(?:apic_timer_interrupt|Exception stack|el1h_64_irq)`), traceHere},
					skip:        []string{"apic_timer_interrupt", "rcu"},
					pick:        pickStallFrame,
					moduleFirst: true,
				},
			},
			{title: rx(`INFO: trying to register non-static key`), tmpl: "INFO: trying to register non-static key in %[1]v", stack: callTraceOnly("stack", "lock", "IRQ")},
			{
				title:  rx(`INFO: suspicious RCU usage`),
				report: rx(`INFO: suspicious RCU usage(?:.*\n)+?.*?@SRC@`),
				tmpl:   "INFO: suspicious RCU usage in %[2]v",
				stack:  callTraceOnly("rcu", "kmem", "slab"),
			},
			{
				title: rx(`INFO: task @TASK@ blocked (?:in I/O wait )?for more than [0-9]+ seconds`),
				tmpl:  "INFO: task hung in %[1]v",
				alt:   []string{"hang in %[1]v"},
				stack: &stackSpec{steps: []*regexp.Regexp{callTrace, traceHere}, pick: pickHungFrame},
			},
			{
				title: rx(`INFO: task @TASK@ can't die for more than .* seconds`),
				tmpl:  "INFO: task can't die in %[1]v",
				alt:   []string{"hang in %[1]v"},
				stack: callTraceOnly("schedule"),
			},
			{title: rx(`INFO: (Freed|Allocated) in (.*)`), tmpl: "INFO: %[1]v in %[2]v", corrupted: true},
			{title: rx(`INFO:[[:space:]]*(?:\n|$)`), tmpl: "INFO: corrupted", corrupted: true},
		},
	},
	{
		kind:   "fault",
		header: "Unable to handle kernel",
		formats: []*format{{
			title: rx(`Unable to handle kernel (paging request|NULL pointer dereference|access to user memory)`),
			tmpl:  "BUG: unable to handle kernel %[1]v in %[2]v",
			alt:   []string{"bad-access in %[2]v"},
			stack: ripTrace(),
		}},
	},
	{
		kind:    "gpf",
		header:  "general protection fault",
		ignore:  rxs(`general protection fault .* error:\d+ in `),
		formats: []*format{{title: rx(`general protection fault.*:`), tmpl: "general protection fault in %[1]v", alt: []string{"bad-access in %[1]v"}, stack: ripTrace()}},
	},
	{
		kind:    "stack-segment",
		header:  "stack segment: ",
		formats: []*format{{title: rx(`stack segment: `), tmpl: "stack segment fault in %[1]v", stack: ripTrace()}},
	},
	{
		kind:   "panic",
		header: "Kernel panic",
		formats: []*format{
			{
				title:   rx(`Kernel panic - not syncing: stack-protector:`),
				report:  rx(`Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: @FUNC@`),
				tmpl:    "kernel panic: stack is corrupted in %[1]v",
				noTrace: true,
			},
			{
				title:  rx(`Kernel panic - not syncing: stack-protector:`),
				report: rx(`Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: [a-f0-9]+`),
				tmpl:   "kernel panic: stack is corrupted in %[1]v",
				stack:  callTraceOnly("stack_chk"),
			},
			{
				title:  rx(`Kernel panic - not syncing: corrupted stack end`),
				report: rx(`Kernel panic - not syncing: corrupted stack end detected inside scheduler`),
				tmpl:   "kernel panic: corrupted stack end in %[1]v",
				alt:    []string{"stack-overflow in %[1]v"},
				stack:  &stackSpec{steps: []*regexp.Regexp{callTrace, traceHere}, skip: []string{"schedule", "retint_kernel"}, pick: pickStallFrame},
			},
			{
				title: rx(`Kernel panic - not syncing: kernel stack overflow`),
				tmpl:  "kernel stack overflow in %[1]v",
				alt:   []string{"stack-overflow in %[1]v"},
				stack: &stackSpec{steps: []*regexp.Regexp{callTrace, traceHere}, skip: []string{"bad_stack"}, pick: pickStallFrame},
			},
			{title: rx(`Kernel panic - not syncing: Attempted to kill init!`), tmpl: "kernel panic: Attempted to kill init!"},
			{title: rx(`Kernel panic - not syncing: Couldn't open N_TTY ldisc for [^ ]+ --- error -[0-9]+`), tmpl: "kernel panic: Couldn't open N_TTY ldisc"},
			{title: rx(`Kernel panic - not syncing: Fatal exception`), tmpl: "kernel panic: Fatal exception", corrupted: true},
			{title: rx(`Kernel panic - not syncing: panic_on_warn set`), tmpl: "kernel panic: panic_on_warn set", corrupted: true},
			{title: rx(`Kernel panic - not syncing: hung_task: blocked tasks`), tmpl: "kernel panic: hung_task: blocked tasks", corrupted: true},
			{title: rx(`Kernel panic - not syncing: LBUG`), tmpl: "LBUG", corrupted: true},
			{title: rx(`Kernel panic - not syncing: (.*)`), tmpl: "kernel panic: %[1]v"},
		},
	},
	{
		kind:    "double-fault",
		header:  "PANIC: double fault",
		formats: []*format{{title: rx(`PANIC: double fault`), tmpl: "PANIC: double fault in %[1]v", stack: &stackSpec{steps: []*regexp.Regexp{ripFrame}}}},
	},
	{
		kind:   "rust-panic",
		header: "rust_kernel: panicked",
		formats: []*format{{
			title:  rx(`rust_kernel: panicked`),
			report: rx(`rust_kernel: panicked at [^\n]*?\n(.+?)\n`),
			tmpl:   "%[1]v in %[2]v",
			stack:  callTraceOnly(regexp.QuoteMeta(`__rustc::rust_begin_unwind`)),
		}},
	},
	{
		kind:   "kernel-bug",
		header: "kernel BUG",
		formats: []*format{
			{title: rx(`kernel BUG at mm/usercopy.c`), tmpl: "BUG: bad usercopy in %[1]v", stack: callTraceOnly("usercopy", "__check")},
			{title: rx(`kernel BUG at lib/list_debug.c`), tmpl: "BUG: corrupted list in %[1]v", alt: []string{"bad-access in %[1]v"}, stack: callTraceOnly()},
			{title: rx(`kernel BUG at (.*)`), tmpl: "kernel BUG in %[2]v", stack: ripOrCallTrace("^skb_")},
		},
	},
	// Not in syzbot's tables: the NMI watchdog's hard lockup report, named
	// like the soft lockup.
	{
		kind:   "hard-lockup",
		header: "Watchdog detected hard LOCKUP",
		formats: []*format{{
			title: rx(`Watchdog detected hard LOCKUP on cpu`),
			tmpl:  "BUG: hard lockup in %[1]v",
			alt:   []string{"stall in %[1]v"},
			stack: &stackSpec{steps: []*regexp.Regexp{ripFrame, callTrace, traceHere}, altSteps: []*regexp.Regexp{callTrace, traceHere}, pick: pickStallFrame, moduleFirst: true},
		}},
	},
	{kind: "kernel-bug2", header: "Kernel BUG", formats: []*format{{title: rx(`Kernel BUG (.*)`), tmpl: "kernel BUG %[1]v"}}},
	{kind: "slab", header: "BUG kmalloc-", formats: []*format{{title: rx(`BUG kmalloc-.*: Object already free`), tmpl: "BUG: Object already free"}}},
	{kind: "divide", header: "divide error:", formats: []*format{{title: rx(`divide error: `), tmpl: "divide error in %[1]v", stack: &stackSpec{steps: []*regexp.Regexp{ripFrame}}}}},
	{kind: "divide2", header: "divide_error:", formats: []*format{{title: rx(`divide_error: `), tmpl: "divide error in %[1]v", stack: &stackSpec{steps: []*regexp.Regexp{ripFrame}}}}},
	{kind: "invalid-opcode", header: "invalid opcode:", formats: []*format{{title: rx(`invalid opcode: `), tmpl: "invalid opcode in %[1]v", stack: &stackSpec{steps: []*regexp.Regexp{ripFrame}}}}},
	{kind: "int3", header: "int3:", formats: []*format{{title: rx(`int3: `), tmpl: "int3 in %[1]v", stack: ripTrace()}}},
	{
		kind:   "ubsan",
		header: "UBSAN:",
		formats: []*format{
			{title: rx(`UBSAN:`), report: rx(`UBSAN: Undefined behaviour in`), tmpl: "UBSAN: undefined-behaviour in %[1]v", stack: callTraceOnly("ubsan", "overflow")},
			{title: rx(`UBSAN: array-index-out-of-bounds in`), tmpl: "UBSAN: array-index-out-of-bounds in %[1]v", alt: []string{"bad-access in %[1]v"}, stack: callTraceOnly("ubsan", "overflow")},
			{title: rx(`UBSAN:`), report: rx(`UBSAN: (.*?) in`), tmpl: "UBSAN: %[1]v in %[2]v", stack: callTraceOnly("ubsan", "overflow")},
		},
	},
	{
		kind:    "reboot",
		header:  "Booting the kernel.",
		ignore:  rxs(`Parsing ELF|Decompressing Linux|Unknown parameter '`),
		formats: []*format{{title: rx(`^Booting the kernel`), tmpl: "unexpected kernel reboot", noTrace: true}},
	},
	{
		kind:    "netdev",
		header:  "unregister_netdevice: waiting for",
		formats: []*format{{title: rx(`unregister_netdevice: waiting for (?:.*) to become free`), tmpl: "unregister_netdevice: waiting for DEV to become free", noTrace: true}},
	},
	{kind: "vfs-close", header: "VFS: Close: file count is 0", formats: []*format{{title: rx(`VFS: Close: file count is 0`), tmpl: "VFS: Close: file count is zero (use-after-free)", noTrace: true}}},
	{kind: "vfs-busy", header: "VFS: Busy inodes after unmount", formats: []*format{{title: rx(`VFS: Busy inodes after unmount`), tmpl: "VFS: Busy inodes after unmount (use-after-free)", noTrace: true}}},
	{kind: "internal-error", header: "Internal error:", formats: []*format{{title: rx(`Internal error:`), tmpl: "Internal error in %[1]v", alt: []string{"bad-access in %[1]v"}, stack: ripTrace()}}},
	{kind: "unhandled-fault", header: "Unhandled fault:", formats: []*format{{title: rx(`Unhandled fault:`), tmpl: "Unhandled fault in %[1]v", alt: []string{"bad-access in %[1]v"}, stack: ripTrace()}}},
	{kind: "alignment", header: "Alignment trap:", formats: []*format{{title: rx(`Alignment trap:`), tmpl: "Alignment trap in %[1]v", stack: ripTrace()}}},
	{
		kind:    "go-runtime",
		header:  "fatal error:",
		ignore:  rxs("ALSA", "fatal error: cannot create timer"),
		formats: []*format{{title: rx(`fatal error:`), tmpl: "go runtime error", noTrace: true}},
	},
	{
		kind:    "go-panic",
		header:  "panic:",
		require: rx(`(?:^|\] |^<[0-9]+>)panic: `),
		ignore:  rxs("_panic:", "xlog_status:", `ddb\.onpanic:`, `evtlog_status:`),
		formats: []*format{
			{title: rx(`panic:(.*)`), tmpl: "panic:%[1]v", noTrace: true},
		},
	},
	// Lustre's own assertions, which the kernel's detectors do not know:
	//   LustreError: PID:0:(file.c:LINE:function()) ASSERTION( expr ) failed: msg
	//   LustreError: PID:0:(file.c:LINE:function()) LBUG
	// Mail and tickets often wrap these lines, so the function may be on the
	// line before, and "failed" on the line after.
	{
		kind:    "lustre-assert",
		header:  "ASSERTION(",
		require: rx(`\(\)\)\s*ASSERTION\(|(?:^|\] |>)\s*ASSERTION\(`),
		formats: []*format{
			{
				title:  rx(`ASSERTION\(`),
				report: rx(`(?:^|\n)[^\n]*?([a-zA-Z0-9_]+)\(\)\)\s*ASSERTION\(`),
				more:   assertionCondition,
				tmpl:   "LBUG: ASSERTION( %[2]v ) failed in %[1]v",
				alt:    []string{"LBUG in %[1]v"},
				stack:  &stackSpec{steps: []*regexp.Regexp{callTrace, traceHere}},
			},
			{
				title:  rx(`ASSERTION\(`),
				report: rx(`ASSERTION\((?:.*\n)*?.*:([a-zA-Z0-9_]+)\(\)\) LBUG`),
				more:   assertionCondition,
				tmpl:   "LBUG: ASSERTION( %[2]v ) failed in %[1]v",
				alt:    []string{"LBUG in %[1]v"},
				stack:  &stackSpec{steps: []*regexp.Regexp{callTrace, traceHere}},
			},
		},
	},
	{
		kind:   "lustre-lbug",
		header: "()) LBUG",
		formats: []*format{{
			title: rx(`([a-zA-Z0-9_]+)\(\)\) LBUG`),
			tmpl:  "LBUG in %[1]v",
			stack: &stackSpec{steps: []*regexp.Regexp{callTrace, traceHere}},
		}},
	},
}

func init() {
	for _, r := range rules {
		for _, f := range r.formats {
			if f.stack == nil {
				continue
			}
			f.stack.skipper = newSkipSet(f.stack.skip)
		}
	}
}

// assertionCondition returns the condition of the first Lustre assertion
// in text: what LASSERT prints between "ASSERTION(" and its closing
// parenthesis, with or without the spaces inside ("ASSERTION( x )" and
// "ASSERTION((x))" alike), joined when mail or a ticket wrapped it over a
// few lines, white space collapsed.
func assertionCondition(text []byte) (string, bool) {
	const head, maxLines = "ASSERTION(", 4
	i := bytes.Index(text, []byte(head))
	if i < 0 {
		return "", false
	}
	rest := text[i+len(head):]
	depth, lines := 1, 1
	for j, c := range rest {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case '\n':
			lines++
		}
		if depth == 0 {
			return strings.Join(strings.Fields(string(rest[:j])), " "), true
		}
		if lines > maxLines {
			break
		}
	}
	// Unbalanced (a cut line): the condition runs to " ) failed" or the
	// end of its line.
	if e := bytes.IndexByte(rest, '\n'); e >= 0 {
		rest = rest[:e]
	}
	if e := bytes.Index(rest, []byte(" ) failed")); e >= 0 {
		rest = rest[:e]
	}
	return strings.Join(strings.Fields(string(rest)), " "), true
}

// stallAnchors are dispatch points (syscall entry, workqueue, timers, file
// and socket operations) below which a stall's representative frame lies.
var stallAnchors = rxs(
	"process_one_work", "do_syscall_", "do_fast_syscall_", "sysenter_dispatch",
	"tracesys_phase2", "el0_svc_handler", "invoke_syscall", "ret_fast_syscall",
	"netif_receive_skb", "do_softirq", "call_timer_fn", "_run_timers",
	"run_timer_softirq", "hrtimer_run", "run_ksoftirqd", "smpboot_thread_fn",
	"^kthread$", "start_secondary", "cpu_startup_entry", "ret_from_fork",
	"vfs_write", "vfs_read", "vfs_iter_read", "vfs_iter_write", "do_iter_read",
	"do_iter_write", "call_read_iter", "call_write_iter", "new_sync_read",
	"new_sync_write", "vfs_ioctl", "ksys_ioctl", "compat_ioctl",
	"compat_sys_ioctl", "blkdev_driver_ioctl", "blkdev_ioctl", "^call_read_iter",
	"^call_write_iter", "do_iter_readv_writev", "^call_mmap", "mmap_region",
	"do_mmap", "do_dentry_open", "vfs_open", "^sock_sendmsg", "^sock_recvmsg",
	"^sock_release", "^__sock_release", "^setsockopt$", "kernel_setsockopt",
	"sock_common_setsockopt", "^listen$", "kernel_listen", "sk_common_release",
	"^sock_mmap", "^accept$", "kernel_accept", "^sock_do_ioctl", "^sock_ioctl",
	"^compat_sock_ioctl", "^nfnetlink_rcv_msg", "^rtnetlink_rcv_msg",
	"^netlink_dump", "^(sys_)?(socketpair|connect|ioctl)", "__do_fault",
	"do_page_fault", "^page_fault$", "__fput", "task_work_run",
	"exit_to_usermode", "smp_call_function", "tasklet_action",
	"tasklet_hi_action",
)

// pickStallFrame names a stall by the frame just above the first dispatch
// anchor, since a stall's top frames are wherever the loop happened to be.
func pickStallFrame(frames []string) (string, int) {
	prev, prevIdx := frames[0], 0
	for i, f := range frames {
		for _, a := range stallAnchors {
			if !a.MatchString(f) {
				continue
			}
			if strings.Contains(f, "smp_call_function") {
				return "smp_call_function", i
			}
			return prev, prevIdx
		}
		prev, prevIdx = f, i
	}
	return "", -1
}

// pickHungFrame groups hangs behind RCU and rtnl together, and otherwise
// skips scheduler, locking and waiting frames.
func pickHungFrame(frames []string) (string, int) {
	anchors := []struct{ frame, name string }{
		{"rtnl_lock", ""}, {"synchronize_rcu", "synchronize_rcu"},
		{"synchronize_srcu", "synchronize_rcu"}, {"synchronize_net", "synchronize_rcu"},
		{"synchronize_sched", "synchronize_rcu"},
	}
	for i, f := range frames {
		for _, a := range anchors {
			if strings.Contains(f, a.frame) {
				if a.name != "" {
					return a.name, i
				}
				return f, i
			}
		}
	}
	skip := []string{"sched", "_lock", "_slowlock", "down", "rwsem", "completion", "kthread",
		"wait", "synchronize", "context_switch", "__switch_to", "cancel_delayed_work",
		"rcu_barrier"}
next:
	for i, f := range frames {
		for _, s := range skip {
			if strings.Contains(f, s) {
				continue next
			}
		}
		return f, i
	}
	return "", -1
}

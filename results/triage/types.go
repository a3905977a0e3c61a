package triage

import "strings"

// Report types, as syzbot names them, plus LBUG for Lustre assertions.
const (
	TypeUnknown         = ""
	TypeLockdep         = "LOCKDEP"
	TypeAtomicSleep     = "ATOMIC_SLEEP"
	TypeWarning         = "WARNING"
	TypeRefcountWarning = "REFCOUNT_WARNING"
	TypeHang            = "HANG"
	TypeDoS             = "DoS"
	TypeBug             = "BUG"
	TypeNullDeref       = "NULL-POINTER-DEREFERENCE"
	TypeMemorySafety    = "MEMORY_SAFETY_BUG"
	TypeMemoryLeak      = "LEAK"
	TypeUBSAN           = "UBSAN"
	TypeUBSANMemory     = "MEMORY_SAFETY_UBSAN"
	TypeReboot          = "REBOOT"
	TypeLBUG            = "LBUG"
	TypeKASANUnknown    = "KASAN-UNKNOWN"
	TypeKFENCEUnknown   = "KFENCE-UNKNOWN"
	TypeKMSANUnknown    = "KMSAN-UNKNOWN"
	TypeKCSANUnknown    = "KCSAN-UNKNOWN"
)

// typeTable maps title prefixes to types; the first matching row wins.
var typeTable = []struct {
	typ      string
	prefixes []string
}{
	{"KFENCE-USE-AFTER-FREE-WRITE", []string{"KFENCE: use-after-free write"}},
	{"KFENCE-USE-AFTER-FREE-READ", []string{"KFENCE: use-after-free read", "KFENCE: use-after-free"}},
	{"KFENCE-WRITE", []string{"KFENCE: invalid write", "KFENCE: out-of-bounds write"}},
	{"KFENCE-READ", []string{"KFENCE: invalid read", "KFENCE: out-of-bounds read", "KFENCE: out-of-bounds"}},
	{"KFENCE-MEMORY-CORRUPTION", []string{"KFENCE: memory corruption"}},
	{"KFENCE-INVALID-FREE", []string{"KFENCE: invalid free"}},
	{"KMSAN-UNINIT-VALUE", []string{"KMSAN: uninit-value"}},
	{"KMSAN-USE-AFTER-FREE-READ", []string{"KMSAN: kernel-infoleak-after-free", "KMSAN: kernel-usb-infoleak-after-free", "KMSAN: use-after-free"}},
	{"KMSAN-INFO-LEAK", []string{"KMSAN: kernel-infoleak", "KMSAN: kernel-usb-infoleak"}},
	{"KASAN-NULL-POINTER-DEREFERENCE-WRITE", []string{"KASAN: null-ptr-deref Write"}},
	{"KASAN-NULL-POINTER-DEREFERENCE-READ", []string{"KASAN: null-ptr-deref Read"}},
	{TypeNullDeref, []string{"BUG: unable to handle kernel NULL pointer dereference in"}},
	{"KASAN-WRITE", []string{
		"KASAN: global-out-of-bounds Write", "KASAN: out-of-bounds Write", "KASAN: slab-out-of-bounds Write",
		"KASAN: stack-out-of-bounds Write", "KASAN: user-memory-access Write", "KASAN: vmalloc-out-of-bounds Write",
		"KASAN: wild-memory-access Write"}},
	{"KASAN-READ", []string{
		"KASAN: global-out-of-bounds Read", "KASAN: invalid-access Read", "KASAN: out-of-bounds Read",
		"KASAN: slab-out-of-bounds Read", "KASAN: slab-out-of-bounds", "KASAN: stack-out-of-bounds Read",
		"KASAN: stack-out-of-bounds", "KASAN: unknown-crash Read", "KASAN: user-memory-access Read",
		"KASAN: vmalloc-out-of-bounds Read", "KASAN: wild-memory-access Read", "KASAN: wild-memory-access"}},
	{"KASAN-INVALID-FREE", []string{"KASAN: double-free or invalid-free", "KASAN: invalid-free"}},
	{"KASAN-USE-AFTER-FREE-WRITE", []string{"KASAN: slab-use-after-free Write", "KASAN: use-after-free Write"}},
	{"KASAN-USE-AFTER-FREE-READ", []string{"KASAN: slab-use-after-free Read", "KASAN: use-after-free Read", "KASAN: use-after-free"}},
	{TypeMemorySafety, []string{"BUG: corrupted list", "BUG: unable to handle kernel paging request"}},
	{TypeRefcountWarning, []string{"WARNING: refcount bug"}},
	{TypeUBSANMemory, []string{"UBSAN: array-index-out-of-bounds"}},
	{"KCSAN-DATARACE", []string{"KCSAN: data-race"}},
	{"KCSAN-ASSERT", []string{"KCSAN: assert: race in"}},
	{TypeLockdep, []string{
		"BUG: bad unlock balance in", "BUG: held lock freed in", "BUG: rwlock", "BUG: spinlock",
		"BUG: still has locks held in", "BUG: using", "WARNING: bad unlock balance in",
		"WARNING: held lock freed in", "WARNING: lock held", "WARNING: locking bug in",
		"WARNING: nested lock was not taken in", "WARNING: still has locks held in",
		"WARNING: suspicious RCU usage in", "inconsistent lock state in", "possible deadlock in"}},
	{TypeAtomicSleep, []string{"BUG: scheduling while atomic in", "BUG: sleeping function called from invalid context in"}},
	{TypeMemoryLeak, []string{"memory leak in"}},
	{TypeBug, []string{"BUG: bad usercopy in", "kernel BUG"}},
	{TypeWarning, []string{"WARNING in"}},
	{TypeUnknown, []string{"BUG: stack guard page was hit in", "WARNING: corrupted",
		"WARNING: kernel stack frame pointer has bad value", "WARNING: kernel stack regs has bad"}},
	{TypeHang, []string{"BUG: soft lockup in", "BUG: hard lockup in", "INFO: rcu detected stall in", "INFO: task can't die in", "INFO: task hung in"}},
	{TypeDoS, []string{
		"Alignment trap in", "BUG: Object already free", "Internal error in", "PANIC: double fault",
		"Unhandled fault in", "VFS: Busy inodes after unmount (use-after-free)",
		"VFS: Close: file count is zero (use-after-free)", "divide error in", "general protection fault in",
		"go runtime error", "int3 in", "invalid opcode in", "kernel panic:", "kernel stack overflow", "panic:",
		"rust_kernel panicked", "stack segment fault in",
		"unregister_netdevice: waiting for DEV to become free"}},
	{TypeLBUG, []string{"LBUG"}},
	{TypeReboot, []string{"unexpected kernel reboot"}},
	{TypeWarning, []string{"WARNING:"}},
	{TypeUnknown, []string{"BUG:", "INFO:"}},
	{TypeKASANUnknown, []string{"KASAN:"}},
	{TypeKFENCEUnknown, []string{"KFENCE:"}},
	{TypeKMSANUnknown, []string{"KMSAN:"}},
	{TypeUBSAN, []string{"UBSAN:"}},
	{TypeKCSANUnknown, []string{"KCSAN:"}},
}

// TitleType returns the report type of a title, TypeUnknown ("") when no
// row of the table names it.
func TitleType(title string) string {
	for _, row := range typeTable {
		for _, p := range row.prefixes {
			if strings.HasPrefix(title, p) {
				return row.typ
			}
		}
	}
	return TypeUnknown
}

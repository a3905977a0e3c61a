package triage

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Lockdep is the structure of a lockdep report: which lock was being taken
// where, which lock was held and where it was taken, the dependency chain,
// and the locks the task held, with a one-line summary.
type Lockdep struct {
	// Kind is the lockdep check that fired, e.g. "possible recursive
	// locking", "possible circular locking dependency".
	Kind string `json:"kind"`
	// Summary says it in one line, e.g. "d_lock taken twice in ll_splice_alias".
	Summary string `json:"summary"`
	// Task is "comm/pid" of the task that tripped the check.
	Task string `json:"task,omitempty"`
	// Acquiring is the lock being taken (or released, or whose state
	// changed), Held the lock it conflicts with.
	Acquiring *LockRef `json:"acquiring,omitempty"`
	Held      *LockRef `json:"held,omitempty"`
	// Chain is the existing dependency chain, newest link first, as
	// lockdep prints it ("-> #1 (class):" with the stack that made it).
	Chain []ChainLink `json:"chain,omitempty"`
	// HeldLocks are the locks the task held ("#0: ... at: f").
	HeldLocks []HeldLock `json:"held_locks,omitempty"`
}

// LockRef is one lock as lockdep prints it.
type LockRef struct {
	// Class is lockdep's class name, e.g. "&(&dentry->d_lock)->rlock".
	Class string `json:"class"`
	// Name is a short name for people, e.g. "d_lock".
	Name string `json:"name"`
	// State is lockdep's usage state, e.g. "{+.+.}-{2:2}".
	State string `json:"state,omitempty"`
	// At is the function that took the lock, without offsets.
	At string `json:"at,omitempty"`
}

// HeldLock is a lock in a "locks held by" list, with its "#N".
type HeldLock struct {
	Index int `json:"index"`
	LockRef
}

// ChainLink is one "-> #N (class):" entry of a dependency chain.
type ChainLink struct {
	Index  int      `json:"index"`
	Lock   LockRef  `json:"lock"`
	Frames []string `json:"frames,omitempty"`
}

var lockdepKinds = []struct{ marker, kind string }{
	{"possible recursive locking detected", "possible recursive locking"},
	{"possible circular locking dependency detected", "possible circular locking dependency"},
	{"inconsistent lock state", "inconsistent lock state"},
	{"bad unlock balance detected", "bad unlock balance"},
	{"held lock freed", "held lock freed"},
	{"suspicious RCU usage", "suspicious RCU usage"},
	{"possible irq lock inversion dependency detected", "possible irq lock inversion"},
	{"lock order detected", "irq-safe to irq-unsafe lock order"},
	{"lock held when returning to user space", "lock held when returning to user space"},
	{"still has locks held", "task exited with locks held"},
	{"Nested lock was not taken", "nested lock was not taken"},
}

var (
	lockLineRe  = regexp.MustCompile(`^\s*(?:#(\d+):\s*)?(?:[0-9a-f]{8,16} )?\((.+?)\)(\{[^}]*\}(?:-\{[^}]*\})?)?(?:, at:\s*(.*))?\s*$`)
	atFuncRe    = regexp.MustCompile(`(?:^|[\s>\]])([a-zA-Z_][a-zA-Z0-9_.]*)\+0x[0-9a-f]+`)
	chainLinkRe = regexp.MustCompile(`^\s*-> #(\d+) \((.+?)\)(\{[^}]*\}(?:-\{[^}]*\})?)?:\s*$`)
	taskRe      = regexp.MustCompile(`^\s*(\S+/\d+) (?:is trying to acquire|is trying to release|is freeing memory|\[[^\]]*\] takes|just changed the state)`)
	releaseRe   = regexp.MustCompile(`is trying to release lock \((.+?)\) at:\s*(.*)$`)
)

// parseLockdep extracts the structure of a lockdep report, or nil when text
// is not one.
func parseLockdep(text []byte) *Lockdep {
	first := text
	if i := bytes.IndexByte(text, '\n'); i >= 0 {
		first = text[:i]
	}
	var ld Lockdep
	for _, k := range lockdepKinds {
		if bytes.Contains(first, []byte(k.marker)) {
			ld.Kind = k.kind
			break
		}
	}
	if ld.Kind == "" {
		return nil
	}
	lines := strings.Split(string(text), "\n")
	section := ""
	var link *ChainLink
	for i := 0; i < len(lines); i++ {
		ln := strings.TrimRight(lines[i], " ")
		t := strings.TrimSpace(ln)
		if ld.Task == "" {
			if m := taskRe.FindStringSubmatch(ln); m != nil {
				ld.Task = m[1]
			}
		}
		switch {
		case strings.Contains(t, "is trying to acquire lock") || strings.Contains(t, "is trying to acquire:") ||
			strings.HasSuffix(t, "] takes:") || strings.Contains(t, "just changed the state of lock"):
			section = "acquiring"
			continue
		case strings.Contains(t, "is trying to release lock"):
			if m := releaseRe.FindStringSubmatch(t); m != nil {
				at := m[2]
				if at == "" && i+1 < len(lines) {
					at = lines[i+1]
				}
				ld.Acquiring = &LockRef{Class: m[1], Name: shortLockName(m[1]), At: funcOf(at)}
			}
			section = ""
			continue
		case strings.HasPrefix(t, "but task is already holding lock") || strings.HasPrefix(t, "but this lock was taken by another"):
			section = "held"
			continue
		case strings.HasPrefix(t, "the existing dependency chain"):
			section = "chain"
			continue
		case strings.Contains(t, "lock held by") || strings.Contains(t, "locks held by") ||
			strings.HasPrefix(t, "with a lock still held") || strings.Contains(t, "with a lock still held there"):
			section = "locks"
			link = nil
			continue
		case strings.HasPrefix(t, "other info that might help") || strings.HasPrefix(t, "stack backtrace:"):
			section = ""
			link = nil
			continue
		}
		switch section {
		case "acquiring", "held":
			ref, ok := lockRef(t, lines, &i)
			if !ok {
				continue
			}
			r := ref
			if section == "acquiring" && ld.Acquiring == nil {
				ld.Acquiring = &r
			} else if section == "held" && ld.Held == nil {
				ld.Held = &r
			}
			section = ""
		case "chain":
			if m := chainLinkRe.FindStringSubmatch(ln); m != nil {
				n, _ := strconv.Atoi(m[1])
				ld.Chain = append(ld.Chain, ChainLink{Index: n, Lock: LockRef{Class: m[2], Name: shortLockName(m[2]), State: m[3]}})
				link = &ld.Chain[len(ld.Chain)-1]
				continue
			}
			if link != nil && len(link.Frames) < 64 {
				if f := funcOf(t); f != "" && strings.HasPrefix(t, f) {
					link.Frames = append(link.Frames, f)
				}
			}
		case "locks":
			if !strings.HasPrefix(t, "#") && !strings.HasPrefix(t, "(") && !isHexWord(t) {
				continue
			}
			if m := lockLineRe.FindStringSubmatch(t); m != nil && len(ld.HeldLocks) < 64 {
				n, _ := strconv.Atoi(m[1])
				ref, _ := lockRef(t, lines, &i)
				ld.HeldLocks = append(ld.HeldLocks, HeldLock{Index: n, LockRef: ref})
			}
		}
	}
	// The chain's links name where each lock was first taken: the first
	// frame that is not locking plumbing.
	for i := range ld.Chain {
		for _, f := range ld.Chain[i].Frames {
			if !isLockingFrame(f) {
				ld.Chain[i].Lock.At = f
				break
			}
		}
	}
	ld.Summary = ld.summarize()
	return &ld
}

func isHexWord(t string) bool {
	i := strings.IndexByte(t, ' ')
	if i < 8 {
		return false
	}
	for _, c := range t[:i] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// lockRef parses a lock line; "at:" wrapped onto the next line is joined.
func lockRef(t string, lines []string, i *int) (LockRef, bool) {
	m := lockLineRe.FindStringSubmatch(t)
	if m == nil {
		return LockRef{}, false
	}
	at := m[4]
	if strings.HasSuffix(t, "at:") && *i+1 < len(lines) {
		*i++
		at = lines[*i]
	}
	return LockRef{Class: m[2], Name: shortLockName(m[2]), State: m[3], At: funcOf(at)}, true
}

func funcOf(s string) string {
	if m := atFuncRe.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

// lockMacros name struct members that source code reaches through macros.
var lockMacros = map[string]string{
	"d_lockref.lock":      "d_lock",
	"i_data.i_mmap_rwsem": "i_mmap_rwsem",
}

// shortLockName turns a lockdep class into the name a maintainer uses:
// "&(&dentry->d_lockref.lock)->rlock" becomes "d_lock".
func shortLockName(class string) string {
	// Workqueue pseudo-locks read best as printed.
	if strings.HasPrefix(class, "(wq_completion)") || strings.HasPrefix(class, "(work_completion)") {
		return class
	}
	s := class
	s = strings.TrimSuffix(s, "->rlock")
	s = strings.TrimSuffix(s, ".rlock")
	s = strings.Map(func(r rune) rune {
		if r == '&' || r == '(' || r == ')' {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSuffix(s, "->rlock")
	if i := strings.LastIndex(s, "->"); i >= 0 {
		s = s[i+2:]
	}
	if v, ok := lockMacros[s]; ok {
		return v
	}
	if i := strings.LastIndex(s, "."); i >= 0 && !strings.Contains(s[i:], "#") {
		if v, ok := lockMacros[s]; ok {
			return v
		}
	}
	return s
}

func isLockingFrame(f string) bool {
	for _, p := range []string{"lock", "down", "up_", "mutex", "rwsem", "acquire", "release", "spin", "_raw_", "validate_chain", "check_prev", "check_irq", "mark_"} {
		if strings.Contains(f, p) {
			return true
		}
	}
	return false
}

func (ld *Lockdep) summarize() string {
	acq, held := ld.Acquiring, ld.Held
	switch ld.Kind {
	case "possible recursive locking":
		if acq != nil {
			s := acq.Name + " taken twice"
			if acq.At != "" {
				s += " in " + acq.At
			}
			if held != nil && held.At != "" && held.At != acq.At {
				s += " (first taken in " + held.At + ")"
			}
			return s
		}
	case "possible circular locking dependency":
		if acq != nil && held != nil {
			s := fmt.Sprintf("%s taken in %s while holding %s (taken in %s)", acq.Name, orUnknown(acq.At), held.Name, orUnknown(held.At))
			if len(ld.Chain) > 0 {
				var names []string
				for _, l := range ld.Chain {
					names = append(names, l.Lock.Name)
				}
				s += "; existing chain: " + strings.Join(names, " -> ")
			}
			return s
		}
	case "inconsistent lock state":
		if acq != nil {
			return fmt.Sprintf("%s taken in %s with inconsistent irq state", acq.Name, orUnknown(acq.At))
		}
	case "bad unlock balance":
		if acq != nil {
			return fmt.Sprintf("%s released in %s but not held", acq.Name, orUnknown(acq.At))
		}
	}
	if acq != nil {
		return fmt.Sprintf("%s: %s in %s", ld.Kind, acq.Name, orUnknown(acq.At))
	}
	if len(ld.HeldLocks) > 0 {
		var names []string
		for _, l := range ld.HeldLocks {
			names = append(names, l.Name)
		}
		return fmt.Sprintf("%s with %s held", ld.Kind, strings.Join(names, ", "))
	}
	return ld.Kind
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

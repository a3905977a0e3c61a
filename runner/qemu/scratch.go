package qemu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// A VM's scratch directory (its QMP socket) is $TMPDIR/kregress-vm-*; its
// owner.lock is flocked by the runner and by QEMU's guard for as long as
// either lives. A kregress killed with SIGKILL cannot remove it, so every
// Start removes the scratch directories whose lock nobody holds.

const (
	scratchPattern = "kregress-vm-*"
	ownerLock      = "owner.lock"
	// legacyScratchAge is how old a scratch directory without an owner
	// lock (made by an older kregress, or one being created) must be to
	// be removed.
	legacyScratchAge = 10 * time.Minute
)

// newScratch makes a VM's scratch directory under tmp and locks it.
func newScratch(tmp string) (dir string, lock *os.File, err error) {
	dir, err = os.MkdirTemp(tmp, scratchPattern)
	if err != nil {
		return "", nil, fmt.Errorf("runner: scratch directory: %w", err)
	}
	lock, err = os.Create(filepath.Join(dir, ownerLock))
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("runner: locking scratch directory %s: %w", dir, err)
	}
	return dir, lock, nil
}

// sweepScratch removes the scratch directories under tmp whose owner is
// gone, and returns them.
func sweepScratch(tmp string) []string {
	dirs, _ := filepath.Glob(filepath.Join(tmp, scratchPattern))
	var removed []string
	for _, d := range dirs {
		if stale(d) && os.RemoveAll(d) == nil {
			removed = append(removed, d)
		}
	}
	return removed
}

// stale says whether no live process owns scratch directory d.
func stale(d string) bool {
	f, err := os.Open(filepath.Join(d, ownerLock))
	if errors.Is(err, os.ErrNotExist) {
		st, err := os.Stat(d)
		return err == nil && st.IsDir() && time.Since(st.ModTime()) > legacyScratchAge
	}
	if err != nil {
		return false
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}

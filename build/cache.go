package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kregress/kregress/internal/proc"
)

// lockFile holds an flock on a file until unlock.
type lockFile struct{ f *os.File }

// lock takes an exclusive flock on path (created if missing), waiting until
// it is free or ctx is done; while it waits, st says so once.
func lock(ctx context.Context, path string, st *status) (*lockFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("build: creating lock folder: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("build: opening lock: %w", err)
	}
	for said := false; ; said = true {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &lockFile{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("build: locking %s: %w", path, err)
		}
		if !said {
			st.note("waiting for " + path + ": another build holds it")
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("build: waiting for lock %s: %w", path, ended(ctx))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ended is ctx's error, reading as its cause when the canceler gave one
// ("SIGTERM received", "--timeout 3h0m0s expired") instead of "context
// canceled"; errors.Is still finds context.Canceled or DeadlineExceeded.
func ended(ctx context.Context) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if err == nil || cause == nil || cause == err {
		return err
	}
	return &endedError{err: err, cause: cause}
}

type endedError struct{ err, cause error }

func (e *endedError) Error() string   { return e.cause.Error() }
func (e *endedError) Unwrap() []error { return []error{e.err, e.cause} }

// held returns ctx under which every child process (package proc) keeps
// the lock open too, so that it is released only when the last process of
// the build is gone, even if kregress is killed.
func (l *lockFile) held(ctx context.Context) context.Context { return proc.WithHeld(ctx, l.f) }

func (l *lockFile) unlock() {
	if l != nil && l.f != nil {
		syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		l.f.Close()
	}
}

// fileDigest returns the hex SHA-256 of the file at path.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("build: hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

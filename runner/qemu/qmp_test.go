package qemu

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A QMP socket that accepts but never answers (a QEMU whose main loop is
// stuck) ends qmpRun at its timeout, not never.
func TestQMPRunTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qmp.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent
		}
	}()
	start := time.Now()
	err = qmpRun(path, 300*time.Millisecond, "quit")
	if took := time.Since(start); err == nil || !strings.Contains(err.Error(), "no answer within") || took > 2*time.Second {
		t.Errorf("qmpRun against a silent QMP: %v after %v", err, took)
	}
}

package realclient

import (
	"errors"
	"testing"
)

func TestLoad(t *testing.T) {
	c, err := Load()
	if errors.Is(err, ErrNoShared) {
		t.Skip("skipping: ../shared/lustre/PROTOCOL.md is absent")
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.Hello[0] != 0x00 || c.Hello[3] != 0xac || c.MGSConnect[0] != 0xc1 {
		t.Fatalf("unexpected bytes: % x / % x", c.Hello[:4], c.MGSConnect[:4])
	}
}

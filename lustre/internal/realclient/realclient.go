// Package realclient extracts the bytes a real lustre-release client sent,
// as recorded in the project's shared notes (../shared/lustre/PROTOCOL.md),
// so that tests can check the codecs against real input without copying
// the shared data into the repository.
package realclient

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// ErrNoShared is returned when the shared notes are absent; tests skip.
var ErrNoShared = errors.New("../shared/lustre/PROTOCOL.md is absent")

// Capture is what the notes record of one real client.
type Capture struct {
	// Hello is the first 72 bytes on a connection: the acceptor request
	// and the socklnd HELLO.
	Hello []byte
	// MGSConnect is the first MGS_CONNECT as received: the 24-byte ksock
	// header, the 72-byte LNet header and the 520-byte ptlrpc payload.
	MGSConnect []byte
}

// Path returns the location of PROTOCOL.md relative to this source file.
func Path() string {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	return filepath.Join(root, "..", "shared", "lustre", "PROTOCOL.md")
}

// Load reads the capture from the notes.
func Load() (*Capture, error) {
	data, err := os.ReadFile(Path())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNoShared
		}
		return nil, fmt.Errorf("realclient: %w", err)
	}
	c := &Capture{}
	// The HELLO block: indented lines whose hex words come before the
	// comment, starting at the one beginning "0071ceac".
	i := bytes.Index(data, []byte("    0071ceac"))
	if i < 0 {
		return nil, fmt.Errorf("realclient: no acceptor request in %s", Path())
	}
	c.Hello, err = hexBlock(data[i:], true)
	if err != nil {
		return nil, err
	}
	j := bytes.Index(data, []byte("    c1000000"))
	if j < 0 {
		return nil, fmt.Errorf("realclient: no MGS_CONNECT frame in %s", Path())
	}
	hdr, err := hexBlock(data[j:], false)
	if err != nil {
		return nil, err
	}
	k := bytes.Index(data[j:], []byte("    06000000"))
	if k < 0 {
		return nil, fmt.Errorf("realclient: no MGS_CONNECT payload in %s", Path())
	}
	payload, err := hexBlock(data[j+k:], false)
	if err != nil {
		return nil, err
	}
	c.MGSConnect = append(hdr, payload...)
	if len(c.Hello) != 72 || len(c.MGSConnect) != 24+72+520 {
		return nil, fmt.Errorf("realclient: extracted %d and %d bytes, want 72 and 616", len(c.Hello), len(c.MGSConnect))
	}
	return c, nil
}

// hexBlock decodes consecutive indented hex lines; with words it stops each
// line at the first token that is not an 8-digit hex word.
func hexBlock(data []byte, words bool) ([]byte, error) {
	var out []byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "    ") || strings.TrimSpace(line) == "" {
			break
		}
		for _, tok := range strings.Fields(line) {
			if words && len(tok) != 8 {
				break
			}
			b, err := hex.DecodeString(tok)
			if err != nil {
				if words {
					break
				}
				return nil, fmt.Errorf("realclient: bad hex %q: %w", tok, err)
			}
			out = append(out, b...)
		}
	}
	return out, nil
}

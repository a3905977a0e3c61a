package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress shows long work to a person: on a terminal, one live line that
// is rewritten in place; elsewhere, nothing unless verbose, then plain
// lines, so logs stay quiet and line-oriented.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	verbose bool
	start   time.Time
	last    int
}

func newProgress(w io.Writer, verbose bool) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &progress{w: w, tty: tty, verbose: verbose, start: time.Now()}
}

// Printf reports one step.
func (p *progress) Printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	el := time.Since(p.start).Seconds()
	switch {
	case p.tty:
		line := fmt.Sprintf("[%6.1fs] %s", el, msg)
		if width, _, err := term.GetSize(int(p.w.(*os.File).Fd())); err == nil && len(line) >= width {
			line = line[:width-1]
		}
		pad := ""
		if n := p.last - len(line); n > 0 {
			pad = strings.Repeat(" ", n)
		}
		fmt.Fprintf(p.w, "\r%s%s", line, pad)
		p.last = len(line)
	case p.verbose:
		fmt.Fprintf(p.w, "kregress: [%.1fs] %s\n", el, msg)
	}
}

// Done clears the live line.
func (p *progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.last > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.last))
		p.last = 0
	}
}

package build

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// status prints progress: on a terminal one live line per phase, rewritten
// in place; elsewhere one line per phase change and the notes.
type status struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	name     string
	started  time.Time
	lastDraw time.Time
	live     bool // a live line is on screen and needs ending
}

func newStatus(w io.Writer) *status {
	s := &status{w: w}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		s.tty = true
	}
	return s
}

// phase starts a phase, or changes its detail.
func (s *status) phase(name, detail string) {
	if s == nil || s.w == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != s.name {
		s.endLive()
		s.name, s.started = name, time.Now()
	}
	if s.tty {
		fmt.Fprintf(s.w, "\r\x1b[K[%s] %s", name, detail)
		s.live, s.lastDraw = true, time.Now()
		return
	}
	fmt.Fprintf(s.w, "[%s] %s\n", name, detail)
}

// progress updates the live line of the current phase; on a terminal at
// most ten times a second, elsewhere not at all.
func (s *status) progress(detail string) {
	if s == nil || s.w == nil || !s.tty {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.lastDraw) < 100*time.Millisecond {
		return
	}
	el := time.Since(s.started).Truncate(time.Second)
	fmt.Fprintf(s.w, "\r\x1b[K[%s %s] %s", s.name, el, detail)
	s.live, s.lastDraw = true, time.Now()
}

// note prints a line that stays.
func (s *status) note(msg string) {
	if s == nil || s.w == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLive()
	fmt.Fprintf(s.w, "%s\n", msg)
}

// done ends the live line.
func (s *status) done() {
	if s == nil || s.w == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLive()
}

func (s *status) endLive() {
	if s.live {
		fmt.Fprintln(s.w)
		s.live = false
	}
}

package build

import (
	"io"
	"sync"
	"time"

	"github.com/kregress/kregress/internal/progress"
)

// status reports a build's phases through kregress's one progress printer:
// the caller's, when Request.Progress is a *progress.Printer, else one of
// its own on the writer (a live line on a terminal, lines elsewhere).
type status struct {
	mu       sync.Mutex
	p        *progress.Printer
	own      bool // p was made here: done ends it
	name     string
	started  time.Time
	lastDraw time.Time
}

func newStatus(w io.Writer) *status {
	if w == nil {
		return nil
	}
	if p, ok := w.(*progress.Printer); ok {
		return &status{p: p}
	}
	return &status{p: progress.New(w, true), own: true}
}

// phase starts a phase, or changes its detail.
func (s *status) phase(name, detail string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	if name != s.name {
		s.name, s.started = name, time.Now()
	}
	s.mu.Unlock()
	s.p.Printf("[%s] %s", name, detail)
}

// progress updates the live line of the current phase; on a terminal at
// most ten times a second, elsewhere not at all.
func (s *status) progress(detail string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	if time.Since(s.lastDraw) < 100*time.Millisecond {
		s.mu.Unlock()
		return
	}
	s.lastDraw = time.Now()
	name, el := s.name, time.Since(s.started).Truncate(time.Second)
	s.mu.Unlock()
	s.p.Update("[%s %s] %s", name, el, detail)
}

// note prints a line that stays.
func (s *status) note(msg string) {
	if s == nil {
		return
	}
	s.p.Note("%s", msg)
}

// done ends the live line of a printer the build made itself.
func (s *status) done() {
	if s == nil || !s.own {
		return
	}
	s.p.Done()
}

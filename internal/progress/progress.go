// Package progress shows long work to a person. On a terminal it keeps one
// live line, rewritten in place, cut to the terminal's width (any width,
// 0 and 1 included) and ticking the elapsed time every second even while
// nothing reports, so a boot or a build never looks stuck. Elsewhere it
// prints plain lines only when asked to be verbose, so logs stay quiet and
// line-oriented. Lines that must stay (warnings) are printed in both cases.
//
// It is kregress's only progress printer: the command line makes one and
// hands it to the build (as its io.Writer) and to the jobs (as Printf).
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// tickEvery is how often the live line's elapsed time is redrawn.
const tickEvery = time.Second

// Printer is one live line on a terminal, or a plain line printer.
// Its methods are safe for concurrent use; a nil *Printer prints nothing.
type Printer struct {
	mu      sync.Mutex
	w       io.Writer
	fd      int // the terminal's descriptor when tty
	tty     bool
	verbose bool
	start   time.Time
	msg     string // the live line's text, without the elapsed time
	shown   int    // runes of the live line now on screen
	ticking bool
	stop    chan struct{}
}

// New returns a printer writing to w. w is a terminal when it is an
// *os.File that is one; verbose makes a printer that is not on a terminal
// print every step as a line.
func New(w io.Writer, verbose bool) *Printer {
	p := &Printer{w: w, verbose: verbose, start: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty, p.fd = true, int(f.Fd())
	}
	return p
}

// Printf reports a step: it becomes the live line on a terminal, and a
// line of its own when verbose elsewhere.
func (p *Printer) Printf(format string, args ...any) {
	if p == nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.tty:
		p.msg = msg
		p.draw()
		p.startTicking()
	case p.verbose:
		fmt.Fprintf(p.w, "kregress: [%.1fs] %s\n", time.Since(p.start).Seconds(), msg)
	}
}

// Update changes the live line's text on a terminal and prints nothing
// elsewhere: for fast-changing detail such as a compile's step count.
func (p *Printer) Update(format string, args ...any) {
	if p == nil || !p.tty {
		return
	}
	p.Printf(format, args...)
}

// Note prints a line that stays, on a terminal above the live line.
func (p *Printer) Note(format string, args ...any) {
	if p == nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintln(p.w, msg)
	if p.tty && p.msg != "" {
		p.draw()
	}
}

// Write makes the printer an io.Writer for code that reports progress as
// lines (the build): each non-empty line is a step.
func (p *Printer) Write(b []byte) (int, error) {
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimRight(l, "\r")
		if i := strings.LastIndexByte(l, '\r'); i >= 0 {
			l = l[i+1:]
		}
		if l = strings.TrimSpace(l); l != "" {
			p.Printf("%s", l)
		}
	}
	return len(b), nil
}

// Done clears the live line and stops the clock.
func (p *Printer) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	p.msg = ""
	if p.ticking {
		close(p.stop)
		p.ticking = false
	}
}

// startTicking redraws the live line every tickEvery until Done.
func (p *Printer) startTicking() {
	if p.ticking {
		return
	}
	p.ticking, p.stop = true, make(chan struct{})
	go func(stop chan struct{}) {
		t := time.NewTicker(tickEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.mu.Lock()
				if p.msg != "" {
					p.draw()
				}
				p.mu.Unlock()
			}
		}
	}(p.stop)
}

// draw rewrites the live line: elapsed time and message, cut to the
// terminal's width.
func (p *Printer) draw() {
	width := p.width()
	line := Fit(fmt.Sprintf("[%6.1fs] %s", time.Since(p.start).Seconds(), p.msg), width)
	n := len([]rune(line))
	old := p.shown
	if width > 0 {
		old = min(old, width-1) // the terminal may have shrunk
	}
	pad := ""
	if old > n {
		pad = strings.Repeat(" ", old-n)
	}
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	if pad != "" {
		// Put the cursor back after the text.
		fmt.Fprintf(p.w, "\r%s", line)
	}
	p.shown = n
}

// clear blanks the live line (on a terminal).
func (p *Printer) clear() {
	if p.tty && p.shown > 0 {
		n := p.shown
		if w := p.width(); w > 0 {
			n = min(n, w-1)
		}
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", n))
		p.shown = 0
	}
}

// width is the terminal's width in columns, 0 when it does not say.
func (p *Printer) width() int {
	w, _, err := term.GetSize(p.fd)
	if err != nil || w < 0 {
		return 0
	}
	return w
}

// Fit cuts line so that it fits a terminal of width columns without
// wrapping: at most width-1 runes, the last column left free for the
// cursor. A width of 0 means unknown (a pseudo-terminal nobody sized):
// the line is kept whole.
func Fit(line string, width int) string {
	if width <= 0 {
		return line
	}
	r := []rune(line)
	if len(r) < width {
		return line
	}
	return string(r[:width-1])
}

package progress

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal's two ends, the terminal sized to
// cols columns (0: never sized, as script(1) leaves it).
func openPTY(t *testing.T, cols int) (master, tty *os.File) {
	t.Helper()
	// Non-blocking, so that os.File's read deadlines work on it.
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("opening a pseudo-terminal: %v", err)
	}
	m := os.NewFile(uintptr(fd), "/dev/ptmx")
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pseudo-terminal number: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: uint16(cols)}); err != nil {
		t.Fatalf("sizing the pseudo-terminal: %v", err)
	}
	return m, s
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		if n /= 10; n == 0 {
			return string(b)
		}
	}
}

// drain reads what the terminal received so far.
func drain(t *testing.T, m *os.File) string {
	t.Helper()
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for {
		m.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := m.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.String()
		}
	}
}

// TestLiveLineAnyWidth draws on real pseudo-terminals of widths 0, 1, 2,
// 10 and 80 (script(1) gives 0): nothing panics and every drawn line
// stays within width-1 columns.
func TestLiveLineAnyWidth(t *testing.T) {
	long := "demo: boot: vmlinuz-6.1.0-56-amd64 with a message far longer than a narrow terminal, ünïcödé"
	for _, cols := range []int{0, 1, 2, 10, 80} {
		m, tty := openPTY(t, cols)
		p := New(tty, false)
		if !p.tty {
			t.Fatalf("width %d: the pseudo-terminal is not seen as a terminal", cols)
		}
		p.Printf("%s", long)
		p.Printf("short")
		p.Note("a warning that stays")
		p.Done()
		got := drain(t, m)
		if !strings.Contains(got, "a warning that stays") {
			t.Errorf("width %d: the note is missing from %q", cols, got)
		}
		for _, seg := range strings.FieldsFunc(got, func(r rune) bool { return r == '\r' || r == '\n' }) {
			if seg == "a warning that stays" {
				continue
			}
			if cols > 0 && utf8.RuneCountInString(seg) > cols-1 {
				t.Errorf("width %d: drew %q (%d columns)", cols, seg, utf8.RuneCountInString(seg))
			}
		}
		if cols == 0 && !strings.Contains(got, "ünïcödé") {
			t.Errorf("width 0 (unknown): the line was cut: %q", got)
		}
	}
}

// TestLiveLineTicks: with no new step the live line's elapsed time is
// redrawn (a boot that prints nothing for a minute still moves).
func TestLiveLineTicks(t *testing.T) {
	m, tty := openPTY(t, 80)
	p := New(tty, false)
	p.Printf("boot: vmlinuz")
	time.Sleep(2*tickEvery + tickEvery/2)
	got := drain(t, m)
	p.Done()
	if n := strings.Count(got, "boot: vmlinuz"); n < 3 {
		t.Errorf("the live line was drawn %d times in 2.5 ticks, want at least 3: %q", n, got)
	}
}

func TestNotTerminal(t *testing.T) {
	var quiet, verbose bytes.Buffer
	New(&quiet, false).Printf("step %d", 1)
	v := New(&verbose, true)
	v.Printf("step %d", 1)
	v.Update("compiled %d", 5)
	v.Note("warning: x")
	v.Write([]byte("[config] make olddefconfig\r\n[compile] make\n"))
	if quiet.Len() != 0 {
		t.Errorf("not verbose, not a terminal: printed %q", quiet.String())
	}
	got := verbose.String()
	for _, want := range []string{"] step 1\n", "warning: x\n", "] [config] make olddefconfig\n", "] [compile] make\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("verbose output lacks %q: %q", want, got)
		}
	}
	if strings.Contains(got, "compiled") {
		t.Errorf("Update printed a line off a terminal: %q", got)
	}
}

func TestFit(t *testing.T) {
	for _, c := range []struct {
		in    string
		width int
		want  string
	}{
		{"abc", 0, "abc"}, {"abc", 1, ""}, {"abc", 2, "a"}, {"abc", 3, "ab"}, {"abc", 4, "abc"}, {"äöü", 3, "äö"},
	} {
		if got := Fit(c.in, c.width); got != c.want {
			t.Errorf("Fit(%q, %d) = %q, want %q", c.in, c.width, got, c.want)
		}
	}
}

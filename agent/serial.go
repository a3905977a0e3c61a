package agent

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// findSerialPort waits for the virtio-serial port called name and returns
// its device node. The port appears a moment after virtio_console's probe,
// when the host's control message announcing it has been handled (about
// 10 ms under TCG): it is looked for every 2 ms, since the host waits for
// the ready line that follows.
func findSerialPort(name string) (string, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if dev := serialPortDevice("/sys/class/virtio-ports", "/dev", name); dev != "" {
			return dev, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no virtio-serial port %q after 5s (is CONFIG_VIRTIO_CONSOLE built in or virtio_console listed?)", name)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// serialPortDevice looks in the virtio-ports class directory for the port
// whose name file says name, and returns its node under dev ("" if none).
func serialPortDevice(class, dev, name string) string {
	files, _ := filepath.Glob(filepath.Join(class, "*", "name"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) == name {
			return filepath.Join(dev, filepath.Base(filepath.Dir(f)))
		}
	}
	return ""
}

// ServePort serves SSH on the virtio-serial port device dev: one
// connection at a time, for as long as the host keeps its end open. When
// the host closes its end (a dropped or retried connection), reads return
// end-of-file; the port is opened again for the next connection.
func (s *Server) ServePort(dev string) error {
	for {
		f, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("open virtio-serial port: %w", err)
		}
		s.handleConn(&portConn{File: f})
	}
}

// portConn is a virtio-serial port as the net.Conn the SSH server takes.
//
// The kernel lets one file at a time hold a port open, so the port can be
// opened again only once the last close has really closed it. An
// os.File's Close waits for that, but only in the first caller: a second,
// concurrent Close (the SSH transport's reader and handleConn both close
// the connection) returns at once. Close here is done once, and every
// caller waits for it.
type portConn struct {
	*os.File
	once sync.Once
	err  error
}

// Close closes the port and returns when it is closed, whoever called
// Close first.
func (c *portConn) Close() error {
	c.once.Do(func() { c.err = c.File.Close() })
	return c.err
}

func (*portConn) LocalAddr() net.Addr  { return portAddr("guest") }
func (*portConn) RemoteAddr() net.Addr { return portAddr("host") }

type portAddr string

func (portAddr) Network() string  { return "virtio-serial" }
func (a portAddr) String() string { return string(a) }

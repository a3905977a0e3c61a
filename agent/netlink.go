package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The guest's network is configured through rtnetlink directly rather
// than by running busybox's ip four times: each exec costs tens of
// milliseconds under TCG, on the path to the agent's ready line.

// rtnl is one NETLINK_ROUTE socket used for a few requests in turn.
type rtnl struct {
	fd  int
	seq uint32
}

// openRtnl opens and binds a NETLINK_ROUTE socket.
func openRtnl() (*rtnl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	return &rtnl{fd: fd}, nil
}

// nlMessage is one netlink message: an nlmsghdr and body.
func nlMessage(typ, flags uint16, seq uint32, body []byte) []byte {
	msg := make([]byte, 0, unix.SizeofNlMsghdr+len(body))
	msg = binary.NativeEndian.AppendUint32(msg, uint32(unix.SizeofNlMsghdr+len(body)))
	msg = binary.NativeEndian.AppendUint16(msg, typ)
	msg = binary.NativeEndian.AppendUint16(msg, flags)
	msg = binary.NativeEndian.AppendUint32(msg, seq)
	msg = binary.NativeEndian.AppendUint32(msg, 0)
	return append(msg, body...)
}

// ackError reads the errno of an NLMSG_ERROR message's data (nil for an
// acknowledgement).
func ackError(data []byte) error {
	if len(data) < 4 {
		return errors.New("short netlink ack")
	}
	if code := int32(binary.NativeEndian.Uint32(data)); code != 0 {
		return unix.Errno(-code)
	}
	return nil
}

func (r *rtnl) Close() error { return unix.Close(r.fd) }

// attr appends one rtattr carrying data, padded to 4 bytes.
func attr(b []byte, typ uint16, data []byte) []byte {
	n := unix.SizeofRtAttr + len(data)
	b = binary.NativeEndian.AppendUint16(b, uint16(n))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// request sends one message (body after the nlmsghdr) and waits for the
// kernel's acknowledgement; what names the request in errors.
func (r *rtnl) request(what string, typ uint16, flags uint16, body []byte) error {
	r.seq++
	msg := nlMessage(typ, flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK, r.seq, body)
	if err := unix.Sendto(r.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("%s: netlink send: %w", what, err)
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(r.fd, buf, 0)
		if err != nil {
			return fmt.Errorf("%s: netlink receive: %w", what, err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("%s: netlink reply: %w", what, err)
		}
		for _, m := range msgs {
			if m.Header.Seq != r.seq || m.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			if err := ackError(m.Data); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		}
	}
}

// linkUp sets IFF_UP on an interface.
func (r *rtnl) linkUp(ifindex int) error {
	b := make([]byte, 0, unix.SizeofIfInfomsg)
	b = append(b, unix.AF_UNSPEC, 0)
	b = binary.NativeEndian.AppendUint16(b, 0) // type
	b = binary.NativeEndian.AppendUint32(b, uint32(ifindex))
	b = binary.NativeEndian.AppendUint32(b, unix.IFF_UP) // flags
	b = binary.NativeEndian.AppendUint32(b, unix.IFF_UP) // change mask
	return r.request(fmt.Sprintf("set link %d up", ifindex), unix.RTM_NEWLINK, 0, b)
}

// addAddr gives an interface an IPv4 address with its prefix.
func (r *rtnl) addAddr(ifindex int, p netip.Prefix) error {
	a := p.Addr().As4()
	b := []byte{unix.AF_INET, byte(p.Bits()), 0, unix.RT_SCOPE_UNIVERSE}
	b = binary.NativeEndian.AppendUint32(b, uint32(ifindex))
	b = attr(b, unix.IFA_LOCAL, a[:])
	b = attr(b, unix.IFA_ADDRESS, a[:])
	return r.request("add address "+p.String(), unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, b)
}

// addDefaultRoute routes everything through gw on an interface.
func (r *rtnl) addDefaultRoute(ifindex int, gw netip.Addr) error {
	g := gw.As4()
	b := []byte{unix.AF_INET, 0, 0, 0, unix.RT_TABLE_MAIN, unix.RTPROT_BOOT, unix.RT_SCOPE_UNIVERSE, unix.RTN_UNICAST}
	b = binary.NativeEndian.AppendUint32(b, 0) // flags
	b = attr(b, unix.RTA_GATEWAY, g[:])
	b = attr(b, unix.RTA_OIF, binary.NativeEndian.AppendUint32(nil, uint32(ifindex)))
	return r.request("add default route via "+gw.String(), unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, b)
}

// configureNetwork brings lo and dev up, gives dev addr and routes
// through gw: what `ip link set up`, `ip addr add` and `ip route add
// default via` would do.
func configureNetwork(dev string, addr netip.Prefix, gw netip.Addr) error {
	lo, err := ifindex("/sys", "lo")
	if err != nil {
		return err
	}
	eth, err := ifindex("/sys", dev)
	if err != nil {
		return err
	}
	r, err := openRtnl()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.linkUp(lo); err != nil {
		return err
	}
	if err := r.linkUp(eth); err != nil {
		return err
	}
	if err := r.addAddr(eth, addr); err != nil {
		return err
	}
	return r.addDefaultRoute(eth, gw)
}

// ifindex reads a network interface's index from sysfs (mounted at sys):
// one small file, where net.InterfaceByName dumps every link and address
// over netlink, on the path to the agent's ready line.
func ifindex(sys, dev string) (int, error) {
	data, err := os.ReadFile(filepath.Join(sys, "class", "net", dev, "ifindex"))
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", dev, err)
	}
	i, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || i <= 0 {
		return 0, fmt.Errorf("interface %s: ifindex %q", dev, data)
	}
	return i, nil
}

package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// The agent powers the guest off when the ACPI power button is pressed
// (QMP system_powerdown), as a distribution's init would: the kernel's
// button driver announces the press on the "acpi_event" generic netlink
// family, to which the agent subscribes.

// acpiEventAttr is ACPI_GENL_ATTR_EVENT, the attribute holding a struct
// acpi_genl_event: device_class [20]byte, bus_id [15]byte, type u32,
// data u32.
const acpiEventAttr = 1

// sizeofGenlmsghdr is the generic netlink header: cmd, version, reserved u16.
const sizeofGenlmsghdr = 4

// watchPowerButton blocks until the power button is pressed and returns
// nil then, or returns an error when the kernel cannot tell (no ACPI, no
// networking, no button driver: the family is missing).
func watchPowerButton() error {
	fd, err := openNetlink(unix.NETLINK_GENERIC)
	if err != nil {
		return fmt.Errorf("acpi events: %w", err)
	}
	defer unix.Close(fd)
	group, err := genlGroup(fd, "acpi_event", "acpi_mc_group")
	if err != nil {
		return fmt.Errorf("acpi events: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, int(group)); err != nil {
		return fmt.Errorf("acpi events: join group %d: %w", group, err)
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOBUFS) {
				continue
			}
			return fmt.Errorf("acpi events: receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if len(m.Data) < sizeofGenlmsghdr {
				continue
			}
			for _, a := range parseAttrs(m.Data[sizeofGenlmsghdr:]) {
				if a.typ == acpiEventAttr && len(a.data) >= 20 {
					class := string(bytes.TrimRight(a.data[:20], "\x00"))
					if class == "button/power" {
						return nil
					}
				}
			}
		}
	}
}

// genlGroup asks the generic netlink controller for a family's multicast
// group id by name.
func genlGroup(fd int, family, group string) (uint32, error) {
	body := []byte{unix.CTRL_CMD_GETFAMILY, 1, 0, 0} // genlmsghdr: cmd, version
	body = attr(body, unix.CTRL_ATTR_FAMILY_NAME, append([]byte(family), 0))
	msg := nlMessage(unix.GENL_ID_CTRL, unix.NLM_F_REQUEST, 1, body)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("ask for family %s: %w", family, err)
	}
	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, fmt.Errorf("family %s: %w", family, err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return 0, fmt.Errorf("family %s: %w", family, err)
	}
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR {
			if err := ackError(m.Data); err != nil {
				return 0, fmt.Errorf("family %s: %w", family, err)
			}
			continue
		}
		if len(m.Data) < sizeofGenlmsghdr {
			continue
		}
		for _, a := range parseAttrs(m.Data[sizeofGenlmsghdr:]) {
			if a.typ != unix.CTRL_ATTR_MCAST_GROUPS {
				continue
			}
			for _, g := range parseAttrs(a.data) {
				var name string
				var id uint32
				for _, f := range parseAttrs(g.data) {
					switch f.typ {
					case unix.CTRL_ATTR_MCAST_GRP_NAME:
						name = string(bytes.TrimRight(f.data, "\x00"))
					case unix.CTRL_ATTR_MCAST_GRP_ID:
						if len(f.data) >= 4 {
							id = binary.NativeEndian.Uint32(f.data)
						}
					}
				}
				if name == group && id != 0 {
					return id, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("family %s has no group %s", family, group)
}

type rtattr struct {
	typ  uint16
	data []byte
}

// parseAttrs splits a run of netlink attributes; a malformed tail is
// ignored. The nested flag bit is masked off the type.
func parseAttrs(b []byte) []rtattr {
	var out []rtattr
	for len(b) >= 4 {
		n := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) & 0x3fff
		if n < 4 || n > len(b) {
			break
		}
		out = append(out, rtattr{typ: typ, data: b[4:n]})
		adv := (n + 3) &^ 3
		if adv > len(b) {
			break
		}
		b = b[adv:]
	}
	return out
}

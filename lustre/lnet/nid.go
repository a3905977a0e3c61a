// Package lnet speaks LNet over TCP (the socklnd LND) as a Lustre server or
// client does: the acceptor connection request, the socklnd HELLO handshake
// (protocol V2 and V3), the ksock message framing with its NOOP keepalives and
// zero-copy acknowledgements, and the 72-byte LNet header carrying PUT, GET,
// ACK and REPLY messages addressed by portal and match bits. It also answers
// the LNet ping (a GET on the reserved portal) that modern clients send
// during peer discovery.
//
// Only little-endian peers are accepted: a byte-swapped acceptor or HELLO
// magic is refused with an error naming the swapped value, since every
// Lustre client this server targets runs on x86-64.
package lnet

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// NID is a 64-bit LNet network identifier: the network (LND type and
// network number) in the upper 32 bits and the address in the lower 32.
type NID uint64

// LND types used in NIDs.
const (
	LNDSock = 2 // "tcp"
	LNDLo   = 9 // "lo"
)

// NIDLo is the loopback NID 0@lo that a ping reply must list first.
const NIDLo NID = NID(uint64(LNDLo) << 48)

// MakeNID builds a NID from an LND type, network number and address.
func MakeNID(lnd uint16, netnum uint16, addr uint32) NID {
	return NID(uint64(lnd)<<48 | uint64(netnum)<<32 | uint64(addr))
}

// TCPNID returns the tcp0 NID of an IPv4 address.
func TCPNID(ip netip.Addr) (NID, error) {
	if !ip.Is4() {
		return 0, fmt.Errorf("lnet: %v is not an IPv4 address", ip)
	}
	b := ip.As4()
	return MakeNID(LNDSock, 0, uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3])), nil
}

// LND returns the LND type of the NID.
func (n NID) LND() uint16 { return uint16(n >> 48) }

// NetNum returns the network number (the 1 in tcp1).
func (n NID) NetNum() uint16 { return uint16(n >> 32) }

// Addr returns the address part.
func (n NID) Addr() uint32 { return uint32(n) }

// String formats the NID as LNet does, e.g. "10.0.2.2@tcp" or "0@lo".
func (n NID) String() string {
	var net string
	switch n.LND() {
	case LNDSock:
		net = "tcp"
	case LNDLo:
		return strconv.FormatUint(uint64(n.Addr()), 10) + "@lo"
	default:
		return fmt.Sprintf("%#x@lnd%d", n.Addr(), n.LND())
	}
	if n.NetNum() != 0 {
		net += strconv.Itoa(int(n.NetNum()))
	}
	a := n.Addr()
	return fmt.Sprintf("%d.%d.%d.%d@%s", a>>24, a>>16&0xff, a>>8&0xff, a&0xff, net)
}

// ParseNID parses "A.B.C.D@tcp[N]" or "N@lo".
func ParseNID(s string) (NID, error) {
	addr, net, ok := strings.Cut(s, "@")
	if !ok {
		return 0, fmt.Errorf("lnet: NID %q has no @network", s)
	}
	switch {
	case net == "lo":
		v, err := strconv.ParseUint(addr, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("lnet: NID %q: bad lo address: %w", s, err)
		}
		return MakeNID(LNDLo, 0, uint32(v)), nil
	case strings.HasPrefix(net, "tcp"):
		num := uint64(0)
		if rest := net[3:]; rest != "" {
			v, err := strconv.ParseUint(rest, 10, 16)
			if err != nil {
				return 0, fmt.Errorf("lnet: NID %q: bad network number: %w", s, err)
			}
			num = v
		}
		ip, err := netip.ParseAddr(addr)
		if err != nil || !ip.Is4() {
			return 0, fmt.Errorf("lnet: NID %q: address is not IPv4", s)
		}
		n, _ := TCPNID(ip)
		return MakeNID(LNDSock, uint16(num), n.Addr()), nil
	}
	return 0, fmt.Errorf("lnet: NID %q: unsupported network %q (want tcpN or lo)", s, net)
}

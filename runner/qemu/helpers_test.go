package qemu

import (
	"fmt"
	"net"
	"strconv"
)

func itoa(i int) string { return strconv.Itoa(i) }

func freePortIs(port int) (bool, error) {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false, err
	}
	l.Close()
	return true, nil
}

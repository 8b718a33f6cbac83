// Package hostport checks ports on this host.
package hostport

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// ErrInUse means a process holds the port.
var ErrInUse = errors.New("in use on this host")

// Free reports whether nothing on this host listens on port, on any
// address: binding the wildcard address fails if any address holds it, and
// the loopback bind catches a holder of 127.0.0.1 where the wildcard is
// IPv6-only.
func Free(port int) error {
	for _, addr := range []string{":" + strconv.Itoa(port), "127.0.0.1:" + strconv.Itoa(port)} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("port %d is %w", port, ErrInUse)
			}
			return fmt.Errorf("checking port %d, %w", port, err)
		}
		_ = l.Close()
	}
	return nil
}

package hostport

import (
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFree(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		t.Run(addr, func(t *testing.T) {
			l, err := net.Listen("tcp", addr)
			require.NoError(t, err)
			port := l.Addr().(*net.TCPAddr).Port
			err = Free(port)
			assert.True(t, errors.Is(err, ErrInUse), "held port: %v", err)
			require.NoError(t, l.Close())
			assert.NoError(t, Free(port), "after close")
		})
	}
}

package tcpproxy

import (
	"bufio"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestForwardsBothWaysUntilClosed: bytes go to the target and its answer
// comes back, over several connections; after Close nothing is accepted.
func TestForwardsBothWaysUntilClosed(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				_, _ = c.Write([]byte("echo " + line))
			}()
		}
	}()
	p, err := Start("127.0.0.1", echo.Addr().String())
	require.NoError(t, err)
	for _, msg := range []string{"one\n", "two\n", "three\n"} {
		c, err := net.Dial("tcp", p.Addr())
		require.NoError(t, err)
		_, err = c.Write([]byte(msg))
		require.NoError(t, err)
		got, err := bufio.NewReader(c).ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "echo "+msg, got)
		c.Close()
	}
	require.NoError(t, p.Close())
	_, err = net.Dial("tcp", p.Addr())
	require.Error(t, err, "a closed proxy accepts nothing")
}

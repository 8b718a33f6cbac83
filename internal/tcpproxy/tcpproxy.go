// Package tcpproxy forwards TCP connections from one address to another. The
// tests and the benchmarks use it to let Docker containers reach a Temporal
// dev server that answers on loopback only: bound to any other single
// address, the dev server's frontend does not answer.
package tcpproxy

import (
	"io"
	"net"
)

// Proxy forwards every connection made to Addr to its target.
type Proxy struct {
	l    net.Listener
	done chan struct{}
}

// Start listens on a free port of ip and forwards each connection to
// target until Close.
func Start(ip, target string) (*Proxy, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, err
	}
	p := &Proxy{l: l, done: make(chan struct{})}
	go p.serve(target)
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Close stops accepting connections and returns once the accept loop has
// ended. Connections already made end when either side closes them.
func (p *Proxy) Close() error {
	err := p.l.Close()
	<-p.done
	return err
}

func (p *Proxy) serve(target string) {
	defer close(p.done)
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer in.Close()
			out, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer out.Close()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			_, _ = io.Copy(in, out)
		}()
	}
}

package docker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/internal/testimage"
	"github.com/msm-project/msm/providers/docker"
)

// pki is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as `docker --tlsverify` uses them, written as PEM files.
type pki struct {
	dir                       string
	pool                      *x509.CertPool
	server                    tls.Certificate
	ca, clientCert, clientKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	write := func(name, kind string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600))
		return p
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "msm test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	issue := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) (der []byte, key *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "msm test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips}
		der, err = x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		require.NoError(t, err)
		return der, key
	}
	p := pki{dir: dir, pool: x509.NewCertPool()}
	p.pool.AddCert(caCert)
	p.ca = write("ca.pem", "CERTIFICATE", caDER)
	srvDER, srvKey := issue(2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	p.server = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	cliDER, cliKey := issue(3, x509.ExtKeyUsageClientAuth, nil)
	p.clientCert = write("cert.pem", "CERTIFICATE", cliDER)
	keyDER, err := x509.MarshalECPrivateKey(cliKey)
	require.NoError(t, err)
	p.clientKey = write("key.pem", "EC PRIVATE KEY", keyDER)
	return p
}

// tlsEngine serves this machine's engine API over TLS with client
// certificates required, as a remote engine started with --tlsverify does,
// and returns its tcp:// endpoint.
func tlsEngine(t *testing.T, p pki) string {
	t.Helper()
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: "docker"})
	proxy.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", catalog.DefaultDockerSocket)
	}}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{p.server}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert,
	})
	require.NoError(t, err)
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "tcp://" + l.Addr().String()
}

// An engine reached over TLS: with the client certificate the worker's
// check passes and servers are listed; with another CA it fails, naming the
// engine.
func TestEngineOverTLS(t *testing.T) {
	img, err := testimage.Build()
	require.NoError(t, err)
	p := newPKI(t)
	endpoint := tlsEngine(t, p)
	m := func(tlsFiles catalog.EngineTLS) catalog.Manager {
		return catalog.Manager{Kind: catalog.KindDocker, Docker: catalog.Docker{Image: img},
			Servers: []catalog.Server{{Name: "remote", Address: "127.0.0.1", Endpoint: endpoint, TLS: tlsFiles}}}
	}
	good := docker.New(m(catalog.EngineTLS{CA: p.ca, Cert: p.clientCert, Key: p.clientKey}), "tls-owner")
	require.NoError(t, good.Check(context.Background()))
	list, err := good.List(context.Background(), "tls-owner")
	require.NoError(t, err)
	require.Empty(t, list)

	other := newPKI(t)
	bad := docker.New(m(catalog.EngineTLS{CA: other.ca, Cert: other.clientCert, Key: other.clientKey}), "tls-owner")
	require.ErrorContains(t, bad.Check(context.Background()), "manager.servers[0] (remote): the Docker engine at "+endpoint+" does not answer")
}

package dockertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLSFiles is what a client of an engine's TLS endpoint holds, as PEM: the
// CA that signed the engine's certificate, and the client certificate
// and key the engine accepts (docker --tlsverify's ca.pem, cert.pem and
// key.pem).
type TLSFiles struct {
	CA, Cert, Key []byte
}

// authority is a throwaway certificate authority.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newAuthority(name string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// issue signs a certificate for usage (server: for 127.0.0.1), returning
// it and its key as PEM.
func (a *authority) issue(name string, usage x509.ExtKeyUsage) (cert, key []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &k.PublicKey, a.key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

// clientTLS is a new authority's client certificate: what a client holds.
func clientTLS(a *authority) (TLSFiles, error) {
	cert, key, err := a.issue("pgdeck", x509.ExtKeyUsageClientAuth)
	if err != nil {
		return TLSFiles{}, err
	}
	return TLSFiles{CA: a.pem, Cert: cert, Key: key}, nil
}

// UntrustedTLS returns client files of an authority no private engine
// knows: the engine refuses its certificate, and the client does not
// trust the engine's.
func UntrustedTLS() (TLSFiles, error) {
	a, err := newAuthority("someone else's CA")
	if err != nil {
		return TLSFiles{}, fmt.Errorf("dockertest: %w", err)
	}
	return clientTLS(a)
}

// setupTLS makes an authority, the engine's certificate (written under
// dir/tls for dockerd) and a client's files, and picks a free port on
// 127.0.0.1; it returns the client's files, the tcp endpoint and dockerd's
// arguments.
func setupTLS(dir string) (TLSFiles, string, []string, error) {
	fail := func(err error) (TLSFiles, string, []string, error) {
		return TLSFiles{}, "", nil, fmt.Errorf("dockertest: TLS: %w", err)
	}
	a, err := newAuthority("pgdeck test engine CA")
	if err != nil {
		return fail(err)
	}
	cert, key, err := a.issue("127.0.0.1", x509.ExtKeyUsageServerAuth)
	if err != nil {
		return fail(err)
	}
	client, err := clientTLS(a)
	if err != nil {
		return fail(err)
	}
	tdir := filepath.Join(dir, "tls")
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return fail(err)
	}
	files := map[string][]byte{"ca.pem": a.pem, "server-cert.pem": cert, "server-key.pem": key}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(tdir, name), b, 0o600); err != nil {
			return fail(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	endpoint := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	args := []string{
		"--host", endpoint,
		"--tlsverify",
		"--tlscacert", filepath.Join(tdir, "ca.pem"),
		"--tlscert", filepath.Join(tdir, "server-cert.pem"),
		"--tlskey", filepath.Join(tdir, "server-key.pem"),
	}
	return client, endpoint, args, nil
}

package agent

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The server accepts its one key and exchanges keys with curve25519 only:
// a default client gets in and runs a command, a client that offers only
// ML-KEM does not, and neither does another key.
func TestServerHandshake(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	signer, _ := ssh.NewSignerFromKey(priv)
	srv, err := NewServer(base64.StdEncoding.EncodeToString(sshPub.Marshal()))
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewSignerFromKey(otherPriv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go srv.Serve(ln)
	dial := func(key ssh.Signer, kex []string) (*ssh.Client, error) {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			return nil, err
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		cfg := &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Config: ssh.Config{KeyExchanges: kex}}
		sc, chans, reqs, err := ssh.NewClientConn(c, "guest", cfg)
		if err != nil {
			c.Close()
			return nil, err
		}
		return ssh.NewClient(sc, chans, reqs), nil
	}
	c, err := dial(signer, nil)
	if err != nil {
		t.Fatalf("default client: %v", err)
	}
	sess, _ := c.NewSession()
	out, err := sess.Output("echo hi")
	if string(out) != "hi\n" || err != nil {
		t.Errorf("echo hi: %q, %v", out, err)
	}
	c.Close()
	if c, err := dial(signer, []string{ssh.KeyExchangeMLKEM768X25519}); err == nil {
		c.Close()
		t.Errorf("a client offering only %s got in", ssh.KeyExchangeMLKEM768X25519)
	}
	if c, err := dial(other, nil); err == nil {
		c.Close()
		t.Errorf("another key got in")
	}
}

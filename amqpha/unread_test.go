package amqpha

import (
	"net"
	"runtime"
	"testing"
	"time"
)

// TestUnread: bytes the peer sent that nobody read are seen in the
// kernel's buffer (the hang detector's proof that the broker answered);
// none once they are read.
func TestUnread(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SIOCINQ is Linux's") // the detector then relies on probes alone
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	peer, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer peer.Close()
	tc := &trackedConn{Conn: raw, sock: raw}
	if tc.unread() {
		t.Fatal("unread bytes before the peer sent any")
	}
	if _, err := peer.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !tc.unread(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("10 bytes sent over loopback never showed as unread")
		}
	}
	if n := unreadBytes(raw); n != 10 {
		t.Errorf("unreadBytes = %d, want 10", n)
	}
	buf := make([]byte, 10)
	if _, err := tc.Read(buf); err != nil {
		t.Fatal(err)
	}
	if tc.unread() {
		t.Error("unread bytes after reading them all")
	}
	if tc.idle(time.Now()) > time.Second {
		t.Error("a read did not count as activity")
	}
	if unreadBytes(&net.TCPConn{}) != 0 || unreadBytes(nil) != 0 {
		t.Error("unreadBytes of a connection without a socket is not 0")
	}
}

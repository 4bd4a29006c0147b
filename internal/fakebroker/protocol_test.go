package fakebroker

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// rawHandshake opens a TCP connection and completes the handshake by hand.
func rawHandshake(t *testing.T, s *Server) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(waitLong))
	br := newTestReader(nc)
	write := func(b []byte) {
		if _, err := nc.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	write(protocolHeader)
	br.expect(t, connStart)
	write(methodFrame(0, connStartOk, func(e *encoder) {
		_ = e.table(map[string]any{})
		e.shortstr("PLAIN")
		e.longstr("\x00guest\x00guest")
		e.shortstr("en_US")
	}))
	br.expect(t, connTune)
	write(methodFrame(0, connTuneOk, func(e *encoder) { e.short(10); e.long(4096); e.short(0) }))
	write(methodFrame(0, connOpen, func(e *encoder) { e.shortstr("/"); e.shortstr(""); e.bits(false) }))
	br.expect(t, connOpenOk)
	return nc
}

// testReader reads frames a raw test client receives.
type testReader struct{ r *bufio.Reader }

func newTestReader(nc net.Conn) *testReader { return &testReader{r: bufio.NewReader(nc)} }

// expect reads the next non-heartbeat frame and fails t unless it is method k.
func (tr *testReader) expect(t *testing.T, k methodKey) {
	t.Helper()
	for {
		f, err := readFrame(tr.r, 0)
		if err != nil {
			t.Fatalf("waiting for %s: %v", k, err)
		}
		if f.typ == frameHeartbeat {
			continue
		}
		d := decoder{b: f.payload}
		if got := (methodKey{d.short(), d.short()}); f.typ != frameMethod || got != k {
			t.Fatalf("got frame type %d %s, want %s", f.typ, got, k)
		}
		return
	}
}

func TestMalformedInput(t *testing.T) {
	s := Start(t)
	cases := map[string][]byte{
		"unknown frame type": appendFrame(nil, 9, 0, nil),
		"bad frame end":      append(appendFrame(nil, frameMethod, 0, []byte{0, 10, 0, 50})[:11], 0xAB),
		"too big":            appendFrame(nil, frameBody, 1, make([]byte, 5000)),
		"body without publish": append(methodFrame(1, chanOpen, func(e *encoder) { e.shortstr("") }),
			appendFrame(nil, frameBody, 1, []byte("x"))...),
		"garbage method":    appendFrame(nil, frameMethod, 0, []byte{0xff}),
		"channel above max": methodFrame(11, chanOpen, func(e *encoder) { e.shortstr("") }),
		"unknown channel":   methodFrame(7, qDeclare, func(e *encoder) { e.short(0); e.shortstr("q"); e.bits(); _ = e.table(nil) }),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			nc := rawHandshake(t, s)
			if _, err := nc.Write(data); err != nil {
				t.Fatal(err)
			}
			// The server answers with connection.close (possibly after
			// channel.open-ok) and then closes the socket.
			all, err := io.ReadAll(nc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(all, []byte{0, 10, 0, 50}) {
				t.Fatalf("no connection.close in %q", all)
			}
		})
	}
	waitFor(t, s, "connections gone", func() bool { return s.OpenConnections() == 0 })
}

func TestBadProtocolHeader(t *testing.T) {
	s := Start(t)
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = nc.Close() }()
	_ = nc.SetDeadline(time.Now().Add(waitLong))
	if _, err := nc.Write([]byte("AMQP\x00\x00\x08\x00")); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(nc)
	if err != nil || !bytes.Equal(all, protocolHeader) {
		t.Fatalf("got %q, %v", all, err)
	}
}

func TestCrossingChannelClose(t *testing.T) {
	s := Start(t)
	s.OnMethod(func(m *Method) Reply {
		if m.Name == "queue.declare" {
			return Reply{Refuse: 404}
		}
		return Reply{}
	})
	nc := rawHandshake(t, s)
	tr := newTestReader(nc)
	write := func(b []byte) {
		t.Helper()
		if _, err := nc.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	write(methodFrame(1, chanOpen, func(e *encoder) { e.shortstr("") }))
	tr.expect(t, chanOpenOk)
	write(methodFrame(1, qDeclare, func(e *encoder) { e.short(0); e.shortstr("q"); e.bits(); _ = e.table(nil) }))
	tr.expect(t, chanClose)
	// The client closes too before answering: the server answers close-ok,
	// ignores a publish, and frees the channel on the client's close-ok.
	write(methodFrame(1, chanClose, func(e *encoder) { e.short(200); e.shortstr("bye"); e.short(0); e.short(0) }))
	write(methodFrame(1, bPublish, func(e *encoder) { e.short(0); e.shortstr(""); e.shortstr("k"); e.bits() }))
	tr.expect(t, chanCloseOk)
	write(methodFrame(1, chanCloseOk, nil))
	waitFor(t, s, "channel freed", func() bool { return s.OpenChannels() == 0 })
	if len(s.Publishes()) != 0 {
		t.Fatal("publish on a closing channel recorded")
	}
	write(methodFrame(1, chanOpen, func(e *encoder) { e.shortstr("") }))
	tr.expect(t, chanOpenOk)
	write(methodFrame(0, connClose, func(e *encoder) { e.short(200); e.shortstr("bye"); e.short(0); e.short(0) }))
	tr.expect(t, connCloseOk)
	waitFor(t, s, "connection closed", func() bool { return s.OpenConnections() == 0 })
}

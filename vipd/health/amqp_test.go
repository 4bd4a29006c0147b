package health

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBroker speaks just enough AMQP 0-9-1 for the check: connection
// start/tune/open, channel.open, a passive queue.declare and the closes.
type fakeBroker struct {
	t      *testing.T
	ln     net.Listener
	vhosts map[string]bool
	queues map[string]bool
	silent bool // accept, then never answer (a hung broker)

	wg      sync.WaitGroup
	mu      sync.Mutex
	logins  []string // "user:password@vhost"
	passive []bool
	closed  int // connections the client closed (EOF after close-ok, or before)
}

func startBroker(t *testing.T, b *fakeBroker) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.t, b.ln = t, ln
	b.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.wg.Go(func() { b.serve(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); b.wg.Wait() })
	return b
}

func (b *fakeBroker) serve(c net.Conn) {
	defer c.Close()
	// Never outlive the test by much, whatever the client does.
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(r, hdr); err != nil || string(hdr) != "AMQP\x00\x00\x09\x01" {
		return
	}
	if b.silent {
		io.Copy(io.Discard, r) // until the client closes
		b.count()
		return
	}
	var p payload
	// connection.start: version 0-9, no server properties.
	p.u8(0).u8(9).u32(0).long("PLAIN AMQPLAIN").long("en_US")
	send(c, 0, 10, 10, p)
	m, args, err := readMethod(r)
	if err != nil || m != [2]uint16{10, 11} {
		return
	}
	a := args
	a.table()
	mech := a.short()
	resp := a.longstr()
	if mech != "PLAIN" {
		return
	}
	parts := strings.Split(resp, "\x00") // "\x00user\x00password"
	p = payload{}
	p.u16(2047).u32(131072).u16(60)
	send(c, 0, 10, 30, p) // tune
	if m, _, err = readMethod(r); err != nil || m != [2]uint16{10, 31} {
		return
	}
	m, args, err = readMethod(r)
	if err != nil || m != [2]uint16{10, 40} {
		return
	}
	vhost := args.short()
	b.mu.Lock()
	if len(parts) == 3 {
		b.logins = append(b.logins, parts[1]+":"+parts[2]+"@"+vhost)
	}
	b.mu.Unlock()
	if !b.vhosts[vhost] {
		p = payload{}
		p.u16(530).short("NOT_ALLOWED - vhost " + vhost + " not found").u16(10).u16(40)
		send(c, 0, 10, 50, p)
		readMethod(r) // close-ok
		return
	}
	p = payload{}
	send(c, 0, 10, 41, *p.short(""))
	for {
		m, args, err := readMethod(r)
		if err != nil {
			b.count()
			return
		}
		switch m {
		case [2]uint16{20, 10}: // channel.open
			p = payload{}
			send(c, 1, 20, 11, *p.u32(0))
		case [2]uint16{50, 10}: // queue.declare
			args.u16()
			q := args.short()
			bits := args.u8()
			b.mu.Lock()
			b.passive = append(b.passive, bits&1 == 1)
			b.mu.Unlock()
			p = payload{}
			if b.queues[q] {
				send(c, 1, 50, 11, *p.short(q).u32(3).u32(1))
			} else {
				send(c, 1, 20, 40, *p.u16(404).short("NOT_FOUND - no queue '" + q + "' in vhost '" + vhost + "'").u16(50).u16(10))
			}
		case [2]uint16{20, 41}: // channel.close-ok
		case [2]uint16{10, 50}: // connection.close
			send(c, 0, 10, 51, payload{})
		}
	}
}

func (b *fakeBroker) count() {
	b.mu.Lock()
	b.closed++
	b.mu.Unlock()
}

func (b *fakeBroker) addr(t *testing.T) AMQP {
	return AMQP{Addr: b.ln.Addr().(*net.TCPAddr).AddrPort(), Timeout: 2 * time.Second}
}

type payload struct{ bytes.Buffer }

func (p *payload) u8(v uint8) *payload   { p.WriteByte(v); return p }
func (p *payload) u16(v uint16) *payload { p.Write(binary.BigEndian.AppendUint16(nil, v)); return p }
func (p *payload) u32(v uint32) *payload { p.Write(binary.BigEndian.AppendUint32(nil, v)); return p }
func (p *payload) short(s string) *payload {
	p.u8(uint8(len(s)))
	p.WriteString(s)
	return p
}
func (p *payload) long(s string) *payload {
	p.u32(uint32(len(s)))
	p.WriteString(s)
	return p
}

// args reads method arguments.
type args struct{ b []byte }

func (a *args) take(n int) []byte {
	if n > len(a.b) {
		n = len(a.b)
	}
	v := a.b[:n]
	a.b = a.b[n:]
	return v
}
func (a *args) u8() uint8 {
	if v := a.take(1); len(v) == 1 {
		return v[0]
	}
	return 0
}
func (a *args) u16() uint16 {
	if v := a.take(2); len(v) == 2 {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}
func (a *args) u32() uint32 {
	if v := a.take(4); len(v) == 4 {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}
func (a *args) short() string   { return string(a.take(int(a.u8()))) }
func (a *args) longstr() string { return string(a.take(int(a.u32()))) }
func (a *args) table()          { a.take(int(a.u32())) }

func send(w io.Writer, ch, class, method uint16, p payload) {
	var f payload
	f.u8(1).u16(ch).u32(uint32(4 + p.Len())).u16(class).u16(method)
	f.Write(p.Bytes())
	f.u8(0xCE)
	w.Write(f.Bytes())
}

// readMethod reads frames until a method frame and returns its class and
// method ids and arguments (heartbeats are skipped).
func readMethod(r *bufio.Reader) ([2]uint16, args, error) {
	for {
		h := make([]byte, 7)
		if _, err := io.ReadFull(r, h); err != nil {
			return [2]uint16{}, args{}, err
		}
		size := binary.BigEndian.Uint32(h[3:])
		if size > 1<<20 {
			return [2]uint16{}, args{}, fmt.Errorf("frame of %d bytes", size)
		}
		body := make([]byte, size+1)
		if _, err := io.ReadFull(r, body); err != nil {
			return [2]uint16{}, args{}, err
		}
		if h[0] != 1 || size < 4 {
			continue
		}
		return [2]uint16{binary.BigEndian.Uint16(body), binary.BigEndian.Uint16(body[2:])}, args{body[4:size]}, nil
	}
}

func TestAMQP(t *testing.T) {
	b := startBroker(t, &fakeBroker{vhosts: map[string]bool{"/": true, "/prod": true}, queues: map[string]bool{"health": true}})
	cases := []struct {
		name   string
		c      AMQP
		ok     bool
		login  string
		errHas string
	}{
		{name: "handshake as guest", ok: true, login: "guest:guest@/"},
		{name: "user, password, vhost", c: AMQP{User: "monitor", Password: "hunter2", VHost: "/prod"}, ok: true, login: "monitor:hunter2@/prod"},
		{name: "passive declare of an existing queue", c: AMQP{Queue: "health"}, ok: true, login: "guest:guest@/"},
		{name: "missing queue", c: AMQP{Queue: "gone"}, login: "guest:guest@/", errHas: `queue "gone" in vhost "/"`},
		{name: "missing vhost", c: AMQP{User: "monitor", Password: "hunter2", VHost: "/nope"}, login: "monitor:hunter2@/nope", errHas: "NOT_ALLOWED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b.mu.Lock()
			b.logins, b.passive = nil, nil
			b.mu.Unlock()
			chk := b.addr(t)
			chk.User, chk.Password, chk.VHost, chk.Queue = c.c.User, c.c.Password, c.c.VHost, c.c.Queue
			r := chk.Check(context.Background())
			t.Logf("%v in %v", r.Err, r.Duration)
			if r.OK != c.ok || (r.Err == nil) != c.ok {
				t.Fatalf("Check = %+v, want OK %v", r, c.ok)
			}
			if r.Err != nil && !strings.Contains(r.Err.Error(), c.errHas) {
				t.Errorf("error %q lacks %q", r.Err, c.errHas)
			}
			if r.Err != nil && strings.Contains(r.Err.Error(), "hunter2") {
				t.Errorf("error shows the password: %v", r.Err)
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if len(b.logins) != 1 || b.logins[0] != c.login {
				t.Errorf("broker saw logins %q, want %q", b.logins, c.login)
			}
			for _, p := range b.passive {
				if !p {
					t.Error("queue declared without the passive flag")
				}
			}
			if (c.c.Queue != "") != (len(b.passive) == 1) {
				t.Errorf("%d queue declarations, queue %q", len(b.passive), c.c.Queue)
			}
		})
	}
}

func TestAMQPHungBrokerTimesOutAndLeavesNothing(t *testing.T) {
	b := startBroker(t, &fakeBroker{silent: true})
	chk := b.addr(t)
	chk.Timeout = 300 * time.Millisecond
	chk.Password = "hunter2"
	r := chk.Check(context.Background())
	t.Log(r.Err)
	if r.OK || !errors.Is(r.Err, ErrTimeout) || !strings.Contains(r.Err.Error(), "AMQP handshake not done within 300ms") {
		t.Fatalf("Check = %+v, want a handshake timeout", r)
	}
	if r.Duration < 300*time.Millisecond {
		t.Errorf("gave up after %v, before its timeout", r.Duration)
	}
	var ce *CheckError
	if !errors.As(r.Err, &ce) || ce.Check != "AMQP_CHECK" || strings.Contains(r.Err.Error(), "hunter2") {
		t.Errorf("error %v", r.Err)
	}
	// The socket was closed: the broker sees EOF (goleak in TestMain checks
	// amqp091-go's reader goroutine is gone too).
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		n := b.closed
		b.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the check left its connection open")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAMQPStopsWithContext(t *testing.T) {
	b := startBroker(t, &fakeBroker{silent: true})
	chk := b.addr(t)
	chk.Timeout = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	r := chk.Check(ctx)
	if r.OK || !errors.Is(r.Err, context.Canceled) || errors.Is(r.Err, ErrTimeout) {
		t.Fatalf("Check = %+v, want context.Canceled", r)
	}
}

func TestAMQPRefused(t *testing.T) {
	chk := AMQP{Addr: closedPort(t), Timeout: time.Second}
	r := chk.Check(context.Background())
	if r.OK || errors.Is(r.Err, ErrTimeout) || !strings.Contains(r.Err.Error(), "connect: ") {
		t.Fatalf("Check = %+v, want a refused connect", r)
	}
}

func TestAMQPLogValueHidesPassword(t *testing.T) {
	c := &AMQP{User: "monitor", Password: "hunter2", VHost: "/prod"}
	if s := logString(c); strings.Contains(s, "hunter2") || !strings.Contains(s, "user=monitor") || !strings.Contains(s, "vhost=/prod") {
		t.Errorf("log: %s", s)
	}
	if s := fmt.Sprintf("%v %+v %#v", *c, *c, *c); strings.Contains(s, "hunter2") {
		t.Errorf("fmt: %s", s)
	}
}

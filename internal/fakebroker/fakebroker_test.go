package fakebroker

import (
	"bytes"
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const waitLong = 5 * time.Second

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), waitLong)
	t.Cleanup(cancel)
	return c
}

// dial connects an amqp091 client and closes it at cleanup (before the server).
func dial(t *testing.T, s *Server) *amqp.Connection {
	t.Helper()
	return dialConfig(t, s, amqp.Config{})
}

func dialConfig(t *testing.T, s *Server, cfg amqp.Config) *amqp.Connection {
	t.Helper()
	conn, err := amqp.DialConfig(s.URL(), cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.CloseDeadline(time.Now().Add(2 * time.Second)) })
	return conn
}

func confirmChannel(t *testing.T, conn *amqp.Connection) *amqp.Channel {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	return ch
}

func publish(t *testing.T, ch *amqp.Channel, key string, mandatory bool, msg amqp.Publishing) *amqp.DeferredConfirmation {
	t.Helper()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx(t), "", key, mandatory, false, msg)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return dc
}

func waitConfirm(t *testing.T, dc *amqp.DeferredConfirmation) bool {
	t.Helper()
	ack, err := dc.WaitContext(ctx(t))
	if err != nil {
		t.Fatalf("confirm %d: %v", dc.DeliveryTag, err)
	}
	return ack
}

func waitFor(t *testing.T, s *Server, what string, cond func() bool) {
	t.Helper()
	if err := s.WaitFor(ctx(t), cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v, ok := <-c:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
		return v
	case <-time.After(waitLong):
		t.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

func TestPublishAcked(t *testing.T) {
	s := Start(t)
	conn := dial(t, s)
	ch := confirmChannel(t, conn)
	if _, err := ch.QueueDeclare("q", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		dc := publish(t, ch, "q", true, amqp.Publishing{Body: []byte("hello"), MessageId: "m"})
		if !waitConfirm(t, dc) {
			t.Fatalf("publish %d nacked", i)
		}
		if dc.DeliveryTag != uint64(i) {
			t.Fatalf("delivery tag %d, want %d", dc.DeliveryTag, i)
		}
	}
	ps := s.Publishes()
	if len(ps) != 3 {
		t.Fatalf("%d publishes recorded, want 3", len(ps))
	}
	p := ps[2]
	if p.Seq != 3 || p.RoutingKey != "q" || !p.Mandatory || string(p.Body) != "hello" || p.Props.MessageID != "m" || p.Conn != 1 || p.Channel != 1 {
		t.Fatalf("unexpected publish record %+v", p)
	}
	if s.Connections() != 1 || s.OpenConnections() != 1 || s.ChannelOpens() != 1 || s.OpenChannels() != 1 {
		t.Fatalf("counters: conns %d open %d chans %d open %d",
			s.Connections(), s.OpenConnections(), s.ChannelOpens(), s.OpenChannels())
	}
	var names []string
	for _, m := range s.Methods() {
		names = append(names, m.Name)
	}
	want := "connection.start-ok connection.open channel.open confirm.select queue.declare"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("methods %q, want %q", got, want)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, "channel closed", func() bool { return s.OpenChannels() == 0 })
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, "connection closed", func() bool { return s.OpenConnections() == 0 })
}

func TestPropertiesRoundTrip(t *testing.T) {
	s := Start(t)
	conn := dial(t, s)
	ch := confirmChannel(t, conn)
	ts := time.Unix(1700000000, 0)
	msg := amqp.Publishing{
		ContentType: "text/plain", ContentEncoding: "gzip", DeliveryMode: 2, Priority: 5,
		CorrelationId: "c", ReplyTo: "r", Expiration: "60000", MessageId: "id", Timestamp: ts,
		Type: "t", UserId: "guest", AppId: "app",
		Headers: amqp.Table{"s": "x", "i": int32(-7), "l": int64(1 << 40), "b": true, "f": 1.5,
			"nested": amqp.Table{"a": []any{"y", int32(2)}}, "bytes": []byte{1, 2}, "dec": amqp.Decimal{Scale: 2, Value: 314}},
		Body: []byte("body"),
	}
	waitConfirm(t, publish(t, ch, "any", false, msg))
	p := s.Publishes()[0]
	want := Properties{
		ContentType: "text/plain", ContentEncoding: "gzip", DeliveryMode: 2, Priority: 5,
		CorrelationID: "c", ReplyTo: "r", Expiration: "60000", MessageID: "id", Timestamp: ts,
		Type: "t", UserID: "guest", AppID: "app",
	}
	got := p.Props
	got.Headers = nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("properties %+v, want %+v", got, want)
	}
	h := p.Props.Headers
	nested, _ := h["nested"].(map[string]any)
	arr, _ := nested["a"].([]any)
	if h["s"] != "x" || h["i"] != int32(-7) || h["l"] != int64(1<<40) || h["b"] != true || h["f"] != 1.5 ||
		len(arr) != 2 || arr[0] != "y" || arr[1] != int32(2) || !bytes.Equal(h["bytes"].([]byte), []byte{1, 2}) ||
		h["dec"] != (Decimal{Scale: 2, Value: 314}) {
		t.Fatalf("headers %#v", h)
	}

	// And back to a consumer.
	if _, err := ch.QueueDeclare("props", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume("props", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver("props", p.Props, p.Body); err != nil {
		t.Fatal(err)
	}
	d := recv(t, deliveries, "delivery")
	if d.MessageId != "id" || d.CorrelationId != "c" || !d.Timestamp.Equal(ts) || d.Priority != 5 ||
		d.Headers["s"] != "x" || d.Headers["l"] != int64(1<<40) || string(d.Body) != "body" {
		t.Fatalf("delivery %+v", d)
	}
}

func TestNack(t *testing.T) {
	s := Start(t)
	s.OnPublish(func(p *Publish) Reply { return Reply{Nack: p.Seq == 2} })
	ch := confirmChannel(t, dial(t, s))
	for i := 1; i <= 3; i++ {
		if ack := waitConfirm(t, publish(t, ch, "k", false, amqp.Publishing{})); ack != (i != 2) {
			t.Fatalf("publish %d: ack %v", i, ack)
		}
	}
}

func TestReturn(t *testing.T) {
	s := Start(t)
	ch := confirmChannel(t, dial(t, s))
	returns := ch.NotifyReturn(make(chan amqp.Return, 4))
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 4))

	// Unroutable by default: mandatory to the default exchange, no such queue.
	if err := ch.PublishWithContext(ctx(t), "", "nowhere", true, false, amqp.Publishing{MessageId: "m1", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	r := recv(t, returns, "return")
	if r.ReplyCode != 312 || r.ReplyText != "NO_ROUTE" || r.MessageId != "m1" || r.RoutingKey != "nowhere" || string(r.Body) != "x" {
		t.Fatalf("return %+v", r)
	}
	if c := recv(t, confirms, "confirm"); !c.Ack || c.DeliveryTag != 1 {
		t.Fatalf("confirm %+v", c)
	}

	// Forced by the hook.
	s.OnPublish(func(*Publish) Reply { return Reply{Return: true} })
	if err := ch.PublishWithContext(ctx(t), "amq.topic", "a.b", false, false, amqp.Publishing{MessageId: "m2"}); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, returns, "return"); r.MessageId != "m2" || r.Exchange != "amq.topic" {
		t.Fatalf("return %+v", r)
	}
	if c := recv(t, confirms, "confirm"); !c.Ack || c.DeliveryTag != 2 {
		t.Fatalf("confirm %+v", c)
	}

	// The "unroutable" prefix, on any exchange.
	s.OnPublish(nil)
	if err := ch.PublishWithContext(ctx(t), "amq.direct", "unroutable.1", true, false, amqp.Publishing{MessageId: "m3"}); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, returns, "return"); r.MessageId != "m3" {
		t.Fatalf("return %+v", r)
	}
	recv(t, confirms, "confirm")
}

func TestHoldRelease(t *testing.T) {
	s := Start(t)
	s.OnPublish(func(*Publish) Reply { return Reply{Hold: true} })
	ch := confirmChannel(t, dial(t, s))
	var dcs []*amqp.DeferredConfirmation
	for range 3 {
		dcs = append(dcs, publish(t, ch, "k", false, amqp.Publishing{}))
	}
	waitFor(t, s, "held confirms", func() bool { return s.Held() == 3 })
	select {
	case <-dcs[0].Done():
		t.Fatal("held publish confirmed")
	case <-time.After(50 * time.Millisecond):
	}
	if n := s.Release(false); n != 3 {
		t.Fatalf("released %d, want 3", n)
	}
	for i, dc := range dcs {
		if waitConfirm(t, dc) {
			t.Fatalf("publish %d acked, want nack", i+1)
		}
	}
	if n := s.Release(true); n != 0 {
		t.Fatalf("second release answered %d", n)
	}
}

func TestCloseChannel(t *testing.T) {
	s := Start(t)
	s.OnMethod(func(m *Method) Reply {
		if m.Name == "queue.declare" && m.Queue == "locked" {
			return Reply{CloseChannel: 405, Text: "RESOURCE_LOCKED - nope"}
		}
		return Reply{}
	})
	conn := dial(t, s)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	_, err = ch.QueueDeclare("locked", false, false, false, false, nil)
	var aerr *amqp.Error
	if !errors.As(err, &aerr) || aerr.Code != 405 {
		t.Fatalf("declare error %v", err)
	}
	e := recv(t, closes, "channel close")
	if e.Code != 405 || !e.Server || e.Reason != "RESOURCE_LOCKED - nope" {
		t.Fatalf("close %+v", e)
	}
	waitFor(t, s, "channel freed", func() bool { return s.OpenChannels() == 0 })
	// The connection survives and the channel id can be used again.
	ch2, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch2.QueueDeclare("free", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
}

func TestRefusePublishClosesChannel404(t *testing.T) {
	s := Start(t)
	s.OnPublish(func(p *Publish) Reply {
		if p.Seq == 1 {
			return Reply{CloseChannel: 404, Text: "NOT_FOUND - no exchange 'x' in vhost '/'"}
		}
		return Reply{}
	})
	ch := confirmChannel(t, dial(t, s))
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	if _, err := ch.PublishWithDeferredConfirmWithContext(ctx(t), "x", "k", false, false, amqp.Publishing{}); err != nil {
		t.Fatal(err)
	}
	e := recv(t, closes, "channel close")
	if e.Code != 404 || !e.Server {
		t.Fatalf("close %+v", e)
	}
}

func TestCloseConnection(t *testing.T) {
	s := Start(t)
	s.OnPublish(func(*Publish) Reply { return Reply{CloseConnection: 320} })
	conn := dial(t, s)
	closes := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch := confirmChannel(t, conn)
	publish(t, ch, "k", false, amqp.Publishing{})
	e := recv(t, closes, "connection close")
	if e.Code != 320 || !e.Server || e.Reason != "CONNECTION_FORCED" {
		t.Fatalf("close %+v", e)
	}
	waitFor(t, s, "connection gone", func() bool { return s.OpenConnections() == 0 && s.OpenChannels() == 0 })
}

func TestCloseConnections(t *testing.T) {
	s := Start(t)
	c1, c2 := dial(t, s), dial(t, s)
	n1 := c1.NotifyClose(make(chan *amqp.Error, 1))
	n2 := c2.NotifyClose(make(chan *amqp.Error, 1))
	s.CloseConnections(320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'")
	for _, n := range []chan *amqp.Error{n1, n2} {
		if e := recv(t, n, "close"); e.Code != 320 || !strings.Contains(e.Reason, "shutdown") {
			t.Fatalf("close %+v", e)
		}
	}
	waitFor(t, s, "connections gone", func() bool { return s.OpenConnections() == 0 })
	if s.Connections() != 2 {
		t.Fatalf("Connections() = %d", s.Connections())
	}
}

func TestDrop(t *testing.T) {
	s := Start(t)
	s.OnMethod(func(m *Method) Reply { return Reply{Drop: m.Name == "queue.declare"} })
	conn := dial(t, s)
	closes := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("q", false, false, false, false, nil); err == nil {
		t.Fatal("declare succeeded on a dropped connection")
	}
	if e := recv(t, closes, "connection close"); e == nil || e.Server {
		t.Fatalf("close %+v", e)
	}
	if !conn.IsClosed() {
		t.Fatal("client connection not closed")
	}
	waitFor(t, s, "connection gone", func() bool { return s.OpenConnections() == 0 })
}

func TestDropConnections(t *testing.T) {
	s := Start(t)
	conn := dial(t, s)
	closes := conn.NotifyClose(make(chan *amqp.Error, 1))
	s.DropConnections()
	recv(t, closes, "connection close")
	waitFor(t, s, "connection gone", func() bool { return s.OpenConnections() == 0 })
}

func TestBlock(t *testing.T) {
	s := Start(t)
	conn := dial(t, s)
	blocks := conn.NotifyBlocked(make(chan amqp.Blocking, 2))
	ch := confirmChannel(t, conn)
	waitConfirm(t, publish(t, ch, "k", false, amqp.Publishing{}))

	s.Block("low on memory")
	if b := recv(t, blocks, "blocked"); !b.Active || b.Reason != "low on memory" {
		t.Fatalf("blocking %+v", b)
	}
	dc := publish(t, ch, "k", false, amqp.Publishing{MessageId: "during"})
	time.Sleep(50 * time.Millisecond)
	if n := len(s.Publishes()); n != 1 {
		t.Fatalf("%d publishes while blocked, want 1", n)
	}
	select {
	case <-dc.Done():
		t.Fatal("publish confirmed while blocked")
	default:
	}

	s.Unblock()
	if b := recv(t, blocks, "unblocked"); b.Active {
		t.Fatalf("blocking %+v", b)
	}
	if !waitConfirm(t, dc) {
		t.Fatal("nacked")
	}
	if ps := s.Publishes(); len(ps) != 2 || ps[1].Props.MessageID != "during" {
		t.Fatalf("publishes %+v", ps)
	}
}

func TestBlockReleaseWrites(t *testing.T) {
	s := Start(t)
	s.OnPublish(func(*Publish) Reply { return Reply{Hold: true} })
	ch := confirmChannel(t, dial(t, s))
	dc := publish(t, ch, "k", false, amqp.Publishing{})
	waitFor(t, s, "held", func() bool { return s.Held() == 1 })
	s.Block("test")
	if s.Release(true) != 1 {
		t.Fatal("nothing released")
	}
	if !waitConfirm(t, dc) {
		t.Fatal("nacked")
	}
	s.Unblock()
}

func TestStopReading(t *testing.T) {
	s := Start(t)
	ch := confirmChannel(t, dial(t, s))
	s.StopReading()
	dc := publish(t, ch, "k", false, amqp.Publishing{})
	time.Sleep(50 * time.Millisecond)
	if len(s.Publishes()) != 0 {
		t.Fatal("publish read while reading is stopped")
	}
	s.ResumeReading()
	if !waitConfirm(t, dc) {
		t.Fatal("nacked")
	}
}

func TestHeartbeats(t *testing.T) {
	s := Start(t, WithHeartbeat(1))
	conn := dialConfig(t, s, amqp.Config{Heartbeat: time.Second})
	closes := conn.NotifyClose(make(chan *amqp.Error, 1))
	// The client times out after 1.5 s without a frame; the server's
	// heartbeats keep an idle connection alive.
	time.Sleep(2 * time.Second)
	if conn.IsClosed() {
		t.Fatal("idle connection timed out")
	}
	// A hung node sends no heartbeats: the client gives up.
	s.StopReading()
	defer s.ResumeReading()
	recv(t, closes, "heartbeat timeout")
}

func TestLargeBody(t *testing.T) {
	s := Start(t)
	conn := dial(t, s)
	ch := confirmChannel(t, conn)
	body := make([]byte, 300<<10)
	for i := range body {
		body[i] = byte(i * 7)
	}
	waitConfirm(t, publish(t, ch, "big", false, amqp.Publishing{Body: body}))
	if got := s.Publishes()[0].Body; !bytes.Equal(got, body) {
		t.Fatalf("published body differs: %d bytes", len(got))
	}
	deliveries, err := ch.Consume("big", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver("big", Properties{}, body); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, deliveries, "delivery"); !bytes.Equal(d.Body, body) {
		t.Fatalf("delivered body differs: %d bytes", len(d.Body))
	}
}

func TestDelayHoldsOnlyItsChannel(t *testing.T) {
	s := Start(t)
	s.OnPublish(func(p *Publish) Reply {
		if p.Channel == 1 && p.Seq == 1 {
			return Reply{Delay: 300 * time.Millisecond}
		}
		return Reply{}
	})
	conn := dial(t, s)
	ch1, ch2 := confirmChannel(t, conn), confirmChannel(t, conn)
	start := time.Now()
	first := publish(t, ch1, "k", false, amqp.Publishing{})
	second := publish(t, ch1, "k", false, amqp.Publishing{})
	other := publish(t, ch2, "k", false, amqp.Publishing{})
	waitConfirm(t, other)
	if d := time.Since(start); d >= 300*time.Millisecond {
		t.Fatalf("other channel held for %v", d)
	}
	select {
	case <-second.Done():
		t.Fatal("confirm overtook a delayed one on its channel")
	default:
	}
	waitConfirm(t, first)
	waitConfirm(t, second)
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("delayed confirm after %v", d)
	}
}

func TestHandshakeRefused(t *testing.T) {
	s := Start(t)
	s.OnMethod(func(m *Method) Reply {
		if m.Name == "connection.open" {
			return Reply{CloseConnection: 530, Text: "NOT_ALLOWED - access to vhost '/' refused"}
		}
		return Reply{}
	})
	_, err := amqp.Dial(s.URL())
	var aerr *amqp.Error
	if !errors.As(err, &aerr) || aerr.Code != 530 {
		t.Fatalf("dial error %v", err)
	}
	if s.Connections() != 0 {
		t.Fatalf("Connections() = %d", s.Connections())
	}
	ms := s.Methods()
	if len(ms) != 2 || ms[0].User != "guest" || ms[0].Mechanism != "PLAIN" || ms[1].Vhost != "/" {
		t.Fatalf("methods %+v", ms)
	}

	s.OnMethod(func(m *Method) Reply {
		if m.Name == "connection.start-ok" {
			return Reply{CloseConnection: 403, Text: "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN"}
		}
		return Reply{}
	})
	_, err = amqp.Dial(s.URL())
	if !errors.As(err, &aerr) || aerr.Code != 403 {
		t.Fatalf("dial error %v", err)
	}
	waitFor(t, s, "refused connections gone", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 0
	})
}

func TestBlockNewConnection(t *testing.T) {
	s := Start(t)
	s.Block("disk alarm")
	conn := dial(t, s) // the handshake completes while blocked
	// The connection is not read until Unblock.
	ch := make(chan error, 1)
	go func() {
		_, err := conn.Channel()
		ch <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if s.ChannelOpens() != 0 {
		t.Fatal("channel.open read while blocked")
	}
	s.Unblock()
	if err := recv(t, ch, "channel"); err != nil {
		t.Fatal(err)
	}
}

func TestOpenOverNetConn(t *testing.T) {
	s := Start(t, WithChannelMax(5), WithFrameMax(8192))
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := amqp.Open(nc, amqp.Config{SASL: []amqp.Authentication{&amqp.PlainAuth{Username: "u", Password: "p"}}, Vhost: "/"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if conn.Config.ChannelMax != 5 || conn.Config.FrameSize != 8192 {
		t.Fatalf("tuned channel-max %d frame-max %d", conn.Config.ChannelMax, conn.Config.FrameSize)
	}
	ch := confirmChannel(t, conn)
	body := bytes.Repeat([]byte("z"), 20000)
	waitConfirm(t, publish(t, ch, "k", false, amqp.Publishing{Body: body}))
	if !bytes.Equal(s.Publishes()[0].Body, body) {
		t.Fatal("body differs")
	}
	if props := s.ClientProperties(); props["product"] == nil {
		t.Fatalf("client properties %v", props)
	}
}

func TestCloseTwiceAndWithOpenClients(t *testing.T) {
	s, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := amqp.Dial(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	closes := conn.NotifyClose(make(chan *amqp.Error, 1))
	s.StopReading() // a reader blocked in the gate must still end
	s.Close()
	s.Close()
	recv(t, closes, "connection close")
	if _, err := amqp.Dial(s.URL()); err == nil {
		t.Fatal("dial after Close succeeded")
	}
}

func TestNothingAfterChannelClose(t *testing.T) {
	s := Start(t)
	s.OnPublish(func(p *Publish) Reply {
		if p.Seq == 1 {
			return Reply{CloseChannel: 406, Delay: 200 * time.Millisecond}
		}
		return Reply{}
	})
	conn := dial(t, s)
	connCloses := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch := confirmChannel(t, conn)
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	for range 3 {
		if err := ch.PublishWithContext(ctx(t), "", "k", false, false, amqp.Publishing{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, s, "publishes", func() bool { return len(s.Publishes()) == 3 })
	if e := recv(t, closes, "channel close"); e.Code != 406 || e.Reason != "PRECONDITION_FAILED" {
		t.Fatalf("close %+v", e)
	}
	waitFor(t, s, "channel freed", func() bool { return s.OpenChannels() == 0 })
	// Had the confirms of publishes 2 and 3 been sent after channel.close,
	// amqp091-go would have closed the connection.
	ch2 := confirmChannel(t, conn)
	waitConfirm(t, publish(t, ch2, "k", false, amqp.Publishing{}))
	select {
	case e := <-connCloses:
		t.Fatalf("connection closed: %v", e)
	default:
	}
}

func TestReleaseChannel(t *testing.T) {
	s := Start(t)
	s.OnPublish(func(*Publish) Reply { return Reply{Hold: true} })
	conn := dial(t, s)
	ch1, ch2 := confirmChannel(t, conn), confirmChannel(t, conn)
	d1 := publish(t, ch1, "k", false, amqp.Publishing{})
	d2 := publish(t, ch2, "k", false, amqp.Publishing{})
	waitFor(t, s, "held", func() bool { return s.Held() == 2 })
	if n := s.ReleaseChannel(1, 2, true); n != 1 {
		t.Fatalf("released %d", n)
	}
	waitConfirm(t, d2)
	select {
	case <-d1.Done():
		t.Fatal("other channel released")
	case <-time.After(20 * time.Millisecond):
	}
	// Closing a channel forgets its held confirms.
	if err := ch1.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, "forgotten", func() bool { return s.Held() == 0 })
}

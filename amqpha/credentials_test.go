package amqpha

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/internal/fakebroker"
)

func TestCheckSecret(t *testing.T) {
	const secret = "tok-3f9a1c"
	for _, tc := range []struct {
		secret, reason string
		frameMax       int
		ok             bool
	}{
		{secret, "", defaultFrameMax, true},
		{secret, "rotated", defaultFrameMax, true},
		{strings.Repeat("j", 100_000), strings.Repeat("r", 255), defaultFrameMax, true},
		{"", "x", defaultFrameMax, false},
		{secret + "\x00" + secret, "", defaultFrameMax, false},
		{secret, strings.Repeat("r", 256), defaultFrameMax, false},
		{secret + strings.Repeat("j", defaultFrameMax), "", defaultFrameMax, false},
		{secret + strings.Repeat("j", 5000), "", 4096, false},
	} {
		err := checkSecret(tc.secret, tc.reason, tc.frameMax, 0)
		if tc.ok != (err == nil) {
			t.Errorf("checkSecret(%d bytes, %d bytes, %d) = %v, want ok %v", len(tc.secret), len(tc.reason), tc.frameMax, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrInvalidArgument) || strings.Contains(err.Error(), secret)) {
			t.Errorf("error %q: want ErrInvalidArgument without the secret", err)
		}
	}
}

func FuzzCheckSecret(f *testing.F) {
	f.Add("token", "reason", 131072, 0)
	f.Add("a\x00b", "", 4096, 300)
	f.Fuzz(func(t *testing.T, s, reason string, frameMax, login int) {
		secret := "zq" + s + "qz" // a marker an error could only hold by repeating it
		login = max(login, 0) % (2 * frameMinSize)
		err := checkSecret(secret, reason, frameMax, login)
		if err == nil {
			if strings.IndexByte(secret, 0) >= 0 || len(reason) > 255 {
				t.Fatalf("accepted a secret PLAIN or update-secret cannot carry")
			}
			if login > 0 && login+len(secret) > frameMinSize {
				t.Fatalf("accepted a %d-byte secret with a %d-byte login around it", len(secret), login)
			}
			return
		}
		if !errors.Is(err, ErrInvalidArgument) || strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q: want ErrInvalidArgument without the secret", err)
		}
	})
}

func TestSecretReplacesOnlyPasswords(t *testing.T) {
	var cr credentials
	ext := &amqp.ExternalAuth{}
	cfg := amqp.Config{SASL: []amqp.Authentication{
		&amqp.PlainAuth{Username: "app", Password: "old"},
		&amqp.AMQPlainAuth{Username: "app", Password: "old"},
		ext,
	}}
	got, v := cr.apply(cfg)
	if v != 0 || got.SASL[0].(*amqp.PlainAuth).Password != "old" {
		t.Fatalf("before UpdateSecret: version %d, %v", v, got.SASL[0])
	}
	cr.set("new", "r")
	got, v = cr.apply(cfg)
	if v != 1 {
		t.Errorf("version %d, want 1", v)
	}
	if p := got.SASL[0].(*amqp.PlainAuth); p.Username != "app" || p.Password != "new" {
		t.Errorf("PLAIN: %+v", p)
	}
	if p := got.SASL[1].(*amqp.AMQPlainAuth); p.Username != "app" || p.Password != "new" {
		t.Errorf("AMQPLAIN: %+v", p)
	}
	if got.SASL[2] != ext {
		t.Errorf("EXTERNAL replaced: %v", got.SASL[2])
	}
	if cfg.SASL[0].(*amqp.PlainAuth).Password != "old" {
		t.Errorf("the caller's config was changed")
	}
}

func TestUpdateSecretTellsEveryLiveConnection(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	c := fakeClient(t, srv.URL(), func(cfg *Config) { cfg.Connections = 2 })
	ctx := testCtx(t, 10*time.Second)
	if err := srv.WaitFor(ctx, func() bool { return srv.OpenConnections() == 2 }); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateSecret(ctx, "tok-1", "rotated"); err != nil {
		t.Fatalf("UpdateSecret: %v", err)
	}
	// The broker may count a connection open before the client has it
	// (its dial still returning): that one is told as its dial ends.
	if err := srv.WaitFor(ctx, func() bool { return countMethods(srv, "connection.update-secret") >= 2 }); err != nil {
		t.Errorf("%d update-secrets, want one per live connection (2)", countMethods(srv, "connection.update-secret"))
	}
	if got := countMethods(srv, "connection.update-secret"); got != 2 {
		t.Errorf("%d update-secrets, want one per live connection (2)", got)
	}
	// A later connection logs in with the secret and needs no push.
	srv.DropConnections()
	if err := srv.WaitFor(ctx, func() bool { return srv.OpenConnections() == 2 && c.Node() != "" }); err != nil {
		t.Fatal(err)
	}
	if got := countMethods(srv, "connection.update-secret"); got != 2 {
		t.Errorf("%d update-secrets after reconnecting, want still 2", got)
	}
}

func countMethods(srv *fakebroker.Server, name string) int {
	n := 0
	for _, m := range srv.Methods() {
		if m.Name == name {
			n++
		}
	}
	return n
}

func TestUpdateSecretRefusedIsAnError(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.OnMethod(func(m *fakebroker.Method) fakebroker.Reply {
		if m.Name == "connection.update-secret" {
			return fakebroker.Reply{CloseConnection: amqp.NotAllowed, Text: "Secret update was refused"}
		}
		return fakebroker.Reply{}
	})
	var logs strings.Builder
	c := fakeClient(t, srv.URL(), func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	const secret = "tok-0b7e55"
	err := c.UpdateSecret(testCtx(t, 10*time.Second), secret, "rotated")
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.NotAllowed {
		t.Fatalf("UpdateSecret = %v, want the broker's 530", err)
	}
	c.Close(testCtx(t, 10*time.Second))
	if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
		t.Errorf("the secret is in the error or the logs:\n%v\n%s", err, logs.String())
	}
}

func TestUpdateSecretReturnsByCtx(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.OnMethod(func(m *fakebroker.Method) fakebroker.Reply {
		if m.Name == "connection.update-secret" {
			return fakebroker.Reply{Delay: time.Second}
		}
		return fakebroker.Reply{}
	})
	c := fakeClient(t, srv.URL(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.UpdateSecret(ctx, "tok", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("UpdateSecret = %v, want DeadlineExceeded", err)
	}
	if err := c.Close(testCtx(t, 10*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.UpdateSecret(context.Background(), "tok", ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("UpdateSecret after Close = %v, want ErrClosed", err)
	}
}

// syncWriter serializes writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func TestSecretSetDuringALoginIsPushedBeforeUse(t *testing.T) {
	srv := fakebroker.Start(t)
	c := fakeClient(t, srv.URL(), func(cfg *Config) { cfg.FailFast = false })
	ctx := testCtx(t, 10*time.Second)
	var once sync.Once
	set := make(chan error, 1)
	srv.OnMethod(func(m *fakebroker.Method) fakebroker.Reply {
		if m.Name == "connection.start-ok" {
			// The dial read the secret before this: it logs in with the
			// old one, and must be told the new one before it is used.
			once.Do(func() { set <- c.UpdateSecret(ctx, "tok-new", "rotated") })
		}
		return fakebroker.Reply{}
	})
	srv.DropConnections()
	if err := <-set; err != nil {
		t.Fatalf("UpdateSecret: %v", err)
	}
	if err := srv.WaitFor(ctx, func() bool { return c.Node() != "" }); err != nil {
		t.Fatal(err)
	}
	if got := countMethods(srv, "connection.update-secret"); got != 1 {
		t.Errorf("%d update-secrets, want 1 (the new connection, told by its dial)", got)
	}
}

// A secret too long for a login frame: live connections would take it
// (connection.update-secret comes after connection.tune), but every later
// login sends it in connection.start-ok, before tune, where a broker need
// accept no frame over AMQP's frame-min-size (RabbitMQ before 4.1 accepts
// none: frame_too_large): the next failover could never log in.
func TestUpdateSecretRefusesASecretTooLongToLogIn(t *testing.T) {
	srv := fakebroker.Start(t)
	c := fakeClient(t, srv.URL(), nil)
	ctx := testCtx(t, 10*time.Second)
	long := "tok-" + strings.Repeat("j", frameMinSize)
	err := c.UpdateSecret(ctx, long, "rotated")
	if !errors.Is(err, ErrInvalidArgument) || strings.Contains(err.Error(), long) {
		t.Fatalf("UpdateSecret(%d bytes) = %v, want ErrInvalidArgument without the secret", len(long), err)
	}
	if got := countMethods(srv, "connection.update-secret"); got != 0 {
		t.Errorf("%d update-secrets sent for a refused secret", got)
	}
	// The longest secret that still fits the login is taken.
	fits := strings.Repeat("k", frameMinSize-c.creds.overhead())
	if err := c.UpdateSecret(ctx, fits, "rotated"); err != nil {
		t.Fatalf("UpdateSecret(%d bytes, which fits): %v", len(fits), err)
	}
	if err := c.UpdateSecret(ctx, fits+"k", "rotated"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("UpdateSecret(%d bytes, one too many) = %v, want ErrInvalidArgument", len(fits)+1, err)
	}
}

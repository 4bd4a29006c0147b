package amqpha

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestCheckPublishingNamesTheField(t *testing.T) {
	long := strings.Repeat("x", 256)
	self := amqp.Table{}
	self["me"] = self
	deep := amqp.Table{}
	for range maxTableDepth + 2 {
		deep = amqp.Table{"d": deep}
	}
	for _, tc := range []struct {
		name, exchange, key string
		msg                 amqp.Publishing
		field               string // "" means valid
	}{
		{name: "empty", msg: amqp.Publishing{}},
		{name: "255 bytes everywhere", exchange: long[:255], key: long[:255], msg: amqp.Publishing{MessageId: long[:255], CorrelationId: long[:255]}},
		{name: "exchange", exchange: long, field: "exchange"},
		{name: "routing key", key: long, field: "routing key"},
		{name: "MessageId", msg: amqp.Publishing{MessageId: long}, field: "MessageId"},
		{name: "CorrelationId", msg: amqp.Publishing{CorrelationId: long}, field: "CorrelationId"},
		{name: "ContentType", msg: amqp.Publishing{ContentType: long}, field: "ContentType"},
		{name: "ContentEncoding", msg: amqp.Publishing{ContentEncoding: long}, field: "ContentEncoding"},
		{name: "ReplyTo", msg: amqp.Publishing{ReplyTo: long}, field: "ReplyTo"},
		{name: "Expiration", msg: amqp.Publishing{Expiration: long}, field: "Expiration"},
		{name: "Type", msg: amqp.Publishing{Type: long}, field: "Type"},
		{name: "UserId", msg: amqp.Publishing{UserId: long}, field: "UserId"},
		{name: "AppId", msg: amqp.Publishing{AppId: long}, field: "AppId"},
		{name: "DeliveryMode 3", msg: amqp.Publishing{DeliveryMode: 3}, field: "DeliveryMode"},
		{name: "Expiration not a number", msg: amqp.Publishing{Expiration: "1h"}, field: "Expiration"},
		{name: "Expiration negative", msg: amqp.Publishing{Expiration: "-1"}, field: "Expiration"},
		{name: "Expiration past 32 bits", msg: amqp.Publishing{Expiration: "4294967296"}, field: "Expiration"},
		{name: "Expiration with a leading zero", msg: amqp.Publishing{Expiration: "010"}, field: "Expiration"},
		{name: "Expiration 0 and the largest", msg: amqp.Publishing{Expiration: "4294967295"}},
		{name: "header key", msg: amqp.Publishing{Headers: amqp.Table{long: 1}}, field: "Headers key"},
		{name: "nested map", msg: amqp.Publishing{Headers: amqp.Table{"m": map[string]any{"a": 1}}}, field: `Headers["m"]`},
		{name: "uint64", msg: amqp.Publishing{Headers: amqp.Table{"u": uint64(1)}}, field: `Headers["u"]`},
		{name: "[]string", msg: amqp.Publishing{Headers: amqp.Table{"s": []string{"a"}}}, field: `Headers["s"]`},
		{name: "int over 32 bits", msg: amqp.Publishing{Headers: amqp.Table{"i": math.MaxInt32 + 1}}, field: `Headers["i"]`},
		{name: "bad value in an array", msg: amqp.Publishing{Headers: amqp.Table{"a": []any{1, uint(2)}}}, field: `Headers["a"][1]`},
		{name: "long key in a nested table", msg: amqp.Publishing{Headers: amqp.Table{"t": amqp.Table{long: "v"}}}, field: `Headers["t"] key`},
		{name: "table containing itself", msg: amqp.Publishing{Headers: self}, field: "Headers"},
		{name: "too deep", msg: amqp.Publishing{Headers: deep}, field: "Headers"},
		{name: "headers larger than a frame", msg: amqp.Publishing{Headers: amqp.Table{"big": strings.Repeat("b", defaultFrameMax)}}, field: "Headers"},
		{name: "every valid type", msg: amqp.Publishing{Headers: amqp.Table{
			"nil": nil, "bool": true, "byte": byte(1), "int8": int8(-1), "int16": int16(-2), "uint16": uint16(2),
			"int": math.MaxInt32, "int32": int32(3), "uint32": uint32(4), "int64": int64(math.MaxInt64),
			"float32": float32(1.5), "float64": 2.5, "string": long, "bytes": []byte(long), "time": time.Unix(1, 0),
			"decimal": amqp.Decimal{Scale: 2, Value: 314}, "array": []any{"a", 1, amqp.Table{"x": 1}}, "table": amqp.Table{"y": "z"},
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPublishing(tc.exchange, tc.key, &tc.msg, defaultFrameMax)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused a valid message: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("err = %v, want ErrInvalidMessage", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err = %v, does not name %s", err, tc.field)
			}
		})
	}
}

func TestCheckConsumerNamesTheField(t *testing.T) {
	long := strings.Repeat("q", 256)
	for _, tc := range []struct {
		name  string
		queue string
		cfg   ConsumerConfig
		field string
	}{
		{name: "defaults", queue: "q"},
		{name: "largest prefetch", queue: "q", cfg: ConsumerConfig{Prefetch: math.MaxUint16}},
		{name: "queue", queue: long, field: "queue"},
		{name: "tag", queue: "q", cfg: ConsumerConfig{Tag: long}, field: "ConsumerConfig.Tag"},
		{name: "prefetch over 16 bits", queue: "q", cfg: ConsumerConfig{Prefetch: math.MaxUint16 + 1}, field: "ConsumerConfig.Prefetch"},
		{name: "negative prefetch", queue: "q", cfg: ConsumerConfig{Prefetch: -1}, field: "ConsumerConfig.Prefetch"},
		{name: "negative concurrency", queue: "q", cfg: ConsumerConfig{Concurrency: -1}, field: "ConsumerConfig.Concurrency"},
		{name: "huge concurrency", queue: "q", cfg: ConsumerConfig{Concurrency: 1 << 30}, field: "ConsumerConfig.Concurrency"},
		{name: "more handlers than prefetch", queue: "q", cfg: ConsumerConfig{Prefetch: 2, Concurrency: 3}},
		{name: "args", queue: "q", cfg: ConsumerConfig{Args: amqp.Table{"x-priority": uint64(1)}}, field: `ConsumerConfig.Args["x-priority"]`},
		{name: "args larger than a frame", queue: "q", cfg: ConsumerConfig{Args: amqp.Table{"x": strings.Repeat("a", defaultFrameMax)}}, field: "ConsumerConfig.Args"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkConsumer(tc.queue, &tc.cfg, defaultFrameMax)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused valid settings: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err = %v, want ErrInvalidArgument naming %s", err, tc.field)
			}
		})
	}
}

func TestIsEncodingError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{amqp.ErrClosed, false},
		{&net.OpError{Op: "write", Net: "tcp", Err: syscall.EPIPE}, false},
		{fmt.Errorf("wrapped: %w", io.EOF), false},
		{net.ErrClosed, false},
		{amqp.Table{"u": uint64(1)}.Validate(), true},
	} {
		if got := isEncodingError(tc.err); got != tc.want {
			t.Errorf("isEncodingError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

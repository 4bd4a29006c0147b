package amqpha

import (
	"fmt"
	"math"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// What the protocol refuses is refused here, before any channel sees it:
// amqp091-go checks header value types only, and a short string over 255
// bytes fails in the middle of writing a frame, which closes the whole
// connection. Publishing such a message again would close the next
// connection too.

// maxShortString is the longest AMQP short string, in bytes: names,
// routing keys, consumer tags, table keys, most message properties.
const maxShortString = 255

// maxTableDepth bounds the nesting of tables and arrays. It also stops a
// table that contains itself, which would otherwise recurse forever.
const maxTableDepth = 32

// invalid returns an error for field that errors.Is matches against kind.
func invalid(kind error, field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", kind, field, fmt.Sprintf(format, args...))
}

func checkShortString(kind error, field, s string) error {
	if len(s) > maxShortString {
		return invalid(kind, field, "%d bytes, the protocol allows at most %d", len(s), maxShortString)
	}
	return nil
}

// checkTable checks that t can be written as an AMQP field table and
// returns the size it takes on the wire.
func checkTable(kind error, field string, t amqp.Table) (int, error) {
	return tableSize(kind, field, t, 0)
}

func tableSize(kind error, field string, t amqp.Table, depth int) (int, error) {
	if depth > maxTableDepth {
		return 0, invalid(kind, field, "tables nested more than %d deep", maxTableDepth)
	}
	n := 4
	for k, v := range t {
		if err := checkShortString(kind, field+" key", k); err != nil {
			return 0, err
		}
		m, err := fieldSize(kind, field+"["+quoteKey(k)+"]", v, depth)
		if err != nil {
			return 0, err
		}
		n += 1 + len(k) + m
	}
	return n, nil
}

// quoteKey shows a table key in an error, cut short if long.
func quoteKey(k string) string {
	if len(k) > 40 {
		return fmt.Sprintf("%q…", k[:40])
	}
	return fmt.Sprintf("%q", k)
}

// fieldSize is the wire size of one table or array value, with its type
// octet. The types are those amqp091-go writes.
func fieldSize(kind error, field string, v any, depth int) (int, error) {
	switch v := v.(type) {
	case nil:
		return 1, nil
	case bool, byte, int8:
		return 2, nil
	case int16, uint16:
		return 3, nil
	case int:
		// amqp091-go writes an int as a signed 32-bit integer: a larger
		// value would silently arrive as another number.
		if v < math.MinInt32 || v > math.MaxInt32 {
			return 0, invalid(kind, field, "int %d does not fit in 32 bits; use int64", v)
		}
		return 5, nil
	case int32, uint32, float32:
		return 5, nil
	case int64, float64, time.Time:
		return 9, nil
	case amqp.Decimal:
		return 6, nil
	case string:
		return 5 + len(v), nil
	case []byte:
		return 5 + len(v), nil
	case []any:
		if depth >= maxTableDepth {
			return 0, invalid(kind, field, "arrays nested more than %d deep", maxTableDepth)
		}
		n := 5
		for i, x := range v {
			m, err := fieldSize(kind, fmt.Sprintf("%s[%d]", field, i), x, depth+1)
			if err != nil {
				return 0, err
			}
			n += m
		}
		return n, nil
	case amqp.Table:
		m, err := tableSize(kind, field, v, depth+1)
		return 1 + m, err
	}
	hint := ""
	switch v.(type) {
	case map[string]any:
		hint = " (use amqp091.Table for a nested table)"
	case []string, []int, []int64, []float64, []bool:
		hint = " (use []any for an array)"
	case uint, uint64:
		hint = " (use int64 or uint32)"
	}
	return 0, invalid(kind, field, "a %T cannot be sent in an AMQP table%s", v, hint)
}

// propertiesOverhead is what a content header frame holds besides the
// properties: class, weight, body size and property flags, plus the frame's
// own header and end octet.
const propertiesOverhead = 2 + 2 + 8 + 2 + 8

// checkPublishing checks a message, its exchange and routing key before
// anything is sent, and returns an error matching ErrInvalidMessage that
// names the field at fault. frameMax is the negotiated frame size (0:
// unknown): the properties must fit in one frame.
func checkPublishing(exchange, key string, msg *amqp.Publishing, frameMax int) error {
	k := ErrInvalidMessage
	for _, f := range [...]struct {
		name, v string
	}{
		{"exchange", exchange}, {"routing key", key},
		{"ContentType", msg.ContentType}, {"ContentEncoding", msg.ContentEncoding},
		{"CorrelationId", msg.CorrelationId}, {"ReplyTo", msg.ReplyTo},
		{"Expiration", msg.Expiration}, {"MessageId", msg.MessageId},
		{"Type", msg.Type}, {"UserId", msg.UserId}, {"AppId", msg.AppId},
	} {
		if err := checkShortString(k, f.name, f.v); err != nil {
			return err
		}
	}
	if msg.Expiration != "" {
		// RabbitMQ reads a per-message TTL in milliseconds, 0 to 2^32-1,
		// and closes the channel on anything else.
		if n, err := strconv.ParseUint(msg.Expiration, 10, 32); err != nil || strconv.FormatUint(n, 10) != msg.Expiration {
			return invalid(k, "Expiration", "%q, want milliseconds as a decimal integer from 0 to 4294967295", msg.Expiration)
		}
	}
	if msg.DeliveryMode > amqp.Persistent {
		return invalid(k, "DeliveryMode", "%d, want 0 (persistent), 1 (transient) or 2 (persistent)", msg.DeliveryMode)
	}
	size := 0
	if msg.Headers != nil {
		n, err := checkTable(k, "Headers", msg.Headers)
		if err != nil {
			return err
		}
		size = n
	}
	if frameMax > 0 {
		// Short strings take their length plus one octet; fixed-size
		// properties are counted generously.
		size += propertiesOverhead + 32 + len(msg.ContentType) + len(msg.ContentEncoding) +
			len(msg.CorrelationId) + len(msg.ReplyTo) + len(msg.Expiration) + len(msg.MessageId) +
			len(msg.Type) + len(msg.UserId) + len(msg.AppId) + 11
		if size > frameMax {
			return invalid(k, "Headers", "the message properties take about %d bytes, more than the connection's frame size (%d)", size, frameMax)
		}
	}
	return nil
}

// methodOverhead bounds what a method frame holds besides its names and
// argument table: frame header and end, class and method ids, reserved
// fields, flags and the short strings' length octets.
const methodOverhead = 8 + 4 + 2 + 16

// checkFrame refuses a method whose arguments would not fit in one frame
// of frameMax bytes: the broker would close the whole connection.
func checkFrame(what string, size, frameMax int) error {
	if frameMax > 0 && size > frameMax {
		return invalid(ErrInvalidArgument, what, "the request takes about %d bytes, more than the connection's frame size (%d)", size, frameMax)
	}
	return nil
}

// checkConsumer checks what Consume sends the broker, and returns an error
// matching ErrInvalidArgument that names the field at fault. frameMax is
// the negotiated frame size (0: unknown).
func checkConsumer(queue string, cfg *ConsumerConfig, frameMax int) error {
	k := ErrInvalidArgument
	if err := checkShortString(k, "queue", queue); err != nil {
		return err
	}
	if err := checkShortString(k, "ConsumerConfig.Tag", cfg.Tag); err != nil {
		return err
	}
	if cfg.Prefetch < 0 || cfg.Prefetch > math.MaxUint16 {
		return invalid(k, "ConsumerConfig.Prefetch", "%d, want 0 (the default, %d) to %d", cfg.Prefetch, defaultPrefetch, math.MaxUint16)
	}
	if cfg.Concurrency < 0 || cfg.Concurrency > math.MaxUint16 {
		return invalid(k, "ConsumerConfig.Concurrency", "%d, want 0 (the default, 1) to %d (more handlers than the largest prefetch never run)", cfg.Concurrency, math.MaxUint16)
	}
	if err := cfg.Retry.check(); err != nil {
		return err
	}
	size, err := checkTable(k, "ConsumerConfig.Args", cfg.Args)
	if err != nil {
		return err
	}
	return checkFrame("ConsumerConfig.Args", methodOverhead+len(queue)+len(cfg.Tag)+size, frameMax)
}

// checkDeclaration checks the names (pairs of field name and value) and
// the argument table of a declaration, and returns an error matching
// ErrInvalidArgument that names the field at fault.
func checkDeclaration(frameMax int, what string, args amqp.Table, names ...string) error {
	size := methodOverhead
	for i := 0; i+1 < len(names); i += 2 {
		if err := checkShortString(ErrInvalidArgument, what+"."+names[i], names[i+1]); err != nil {
			return err
		}
		size += len(names[i+1])
	}
	n, err := checkTable(ErrInvalidArgument, what+".Args", args)
	if err != nil {
		return err
	}
	return checkFrame(what+".Args", size+n, frameMax)
}

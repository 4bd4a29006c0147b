package fakebroker

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"time"
)

// Decimal is the AMQP decimal field value: Value scaled down by 10^Scale.
// Tables decoded from the client hold it for the 'D' type, and tables given to
// the server (Properties.Headers of Deliver) may contain it.
type Decimal struct {
	Scale uint8
	Value int32
}

// maxTableDepth bounds the nesting of tables and arrays the decoder accepts.
const maxTableDepth = 64

var errTableDepth = errors.New("field table nested too deeply")

// table reads a field table into a map. A zero-length table reads as an empty,
// non-nil map.
func (d *decoder) table() map[string]any {
	return d.tableDepth(0)
}

func (d *decoder) tableDepth(depth int) map[string]any {
	raw := d.longbytes()
	if d.err != nil {
		return nil
	}
	if depth > maxTableDepth {
		d.err = errTableDepth
		return nil
	}
	sub := decoder{b: raw}
	m := make(map[string]any)
	for len(sub.b) > 0 && sub.err == nil {
		name := sub.shortstr()
		v := sub.field(depth)
		if sub.err == nil {
			m[name] = v
		}
	}
	if sub.err != nil {
		d.err = sub.err
		return nil
	}
	return m
}

func (d *decoder) array(depth int) []any {
	raw := d.longbytes()
	if d.err != nil {
		return nil
	}
	if depth > maxTableDepth {
		d.err = errTableDepth
		return nil
	}
	sub := decoder{b: raw}
	vs := []any{}
	for len(sub.b) > 0 && sub.err == nil {
		v := sub.field(depth)
		if sub.err == nil {
			vs = append(vs, v)
		}
	}
	if sub.err != nil {
		d.err = sub.err
		return nil
	}
	return vs
}

// field reads one type-tagged value. The tags and Go types follow the ones
// RabbitMQ and amqp091-go use.
func (d *decoder) field(depth int) any {
	tag := d.octet()
	if d.err != nil {
		return nil
	}
	switch tag {
	case 't':
		return d.octet() != 0
	case 'b':
		return int8(d.octet())
	case 'B':
		return d.octet()
	case 's':
		return int16(d.short())
	case 'u':
		return d.short()
	case 'I':
		return int32(d.long())
	case 'i':
		return d.long()
	case 'l':
		return int64(d.longlong())
	case 'f':
		return math.Float32frombits(d.long())
	case 'd':
		return math.Float64frombits(d.longlong())
	case 'D':
		scale := d.octet()
		return Decimal{Scale: scale, Value: int32(d.long())}
	case 'S':
		return d.longstr()
	case 'x':
		return append([]byte(nil), d.longbytes()...)
	case 'A':
		return d.array(depth + 1)
	case 'T':
		return time.Unix(int64(d.longlong()), 0)
	case 'F':
		return d.tableDepth(depth + 1)
	case 'V':
		return nil
	}
	d.err = fmt.Errorf("unknown field type %q", tag)
	return nil
}

// table writes a field table. Names are written in sorted order so the output
// is deterministic. Values of unsupported types make it return an error.
func (e *encoder) table(m map[string]any) error {
	start := len(e.b)
	e.long(0) // patched below
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		e.shortstr(k)
		if err := e.field(m[k]); err != nil {
			return fmt.Errorf("table field %q: %w", k, err)
		}
	}
	n := len(e.b) - start - 4
	e.b[start], e.b[start+1], e.b[start+2], e.b[start+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return nil
}

func (e *encoder) field(v any) error {
	switch v := v.(type) {
	case nil:
		e.octet('V')
	case bool:
		e.octet('t')
		if v {
			e.octet(1)
		} else {
			e.octet(0)
		}
	case int8:
		e.octet('b')
		e.octet(uint8(v))
	case uint8:
		e.octet('B')
		e.octet(v)
	case int16:
		e.octet('s')
		e.short(uint16(v))
	case uint16:
		e.octet('u')
		e.short(v)
	case int32:
		e.octet('I')
		e.long(uint32(v))
	case uint32:
		e.octet('i')
		e.long(v)
	case int:
		e.octet('l')
		e.longlong(uint64(int64(v)))
	case int64:
		e.octet('l')
		e.longlong(uint64(v))
	case float32:
		e.octet('f')
		e.long(math.Float32bits(v))
	case float64:
		e.octet('d')
		e.longlong(math.Float64bits(v))
	case Decimal:
		e.octet('D')
		e.octet(v.Scale)
		e.long(uint32(v.Value))
	case string:
		e.octet('S')
		e.longstr(v)
	case []byte:
		e.octet('x')
		e.longbytes(v)
	case time.Time:
		e.octet('T')
		e.longlong(uint64(v.Unix()))
	case map[string]any:
		e.octet('F')
		return e.table(v)
	case []any:
		e.octet('A')
		start := len(e.b)
		e.long(0)
		for _, x := range v {
			if err := e.field(x); err != nil {
				return err
			}
		}
		n := len(e.b) - start - 4
		e.b[start], e.b[start+1], e.b[start+2], e.b[start+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	default:
		// Named map and slice types such as amqp091's Table.
		rv := reflect.ValueOf(v)
		switch {
		case rv.Kind() == reflect.Map && rv.Type().Key().Kind() == reflect.String &&
			rv.Type().Elem().Kind() == reflect.Interface:
			m := make(map[string]any, rv.Len())
			it := rv.MapRange()
			for it.Next() {
				m[it.Key().String()] = it.Value().Interface()
			}
			e.octet('F')
			return e.table(m)
		case rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Interface:
			vs := make([]any, rv.Len())
			for i := range vs {
				vs[i] = rv.Index(i).Interface()
			}
			return e.field(vs)
		}
		return fmt.Errorf("unsupported field type %T", v)
	}
	return nil
}

// Basic content property flags, highest bit first (spec class basic).
const (
	propContentType     = 0x8000
	propContentEncoding = 0x4000
	propHeaders         = 0x2000
	propDeliveryMode    = 0x1000
	propPriority        = 0x0800
	propCorrelationID   = 0x0400
	propReplyTo         = 0x0200
	propExpiration      = 0x0100
	propMessageID       = 0x0080
	propTimestamp       = 0x0040
	propType            = 0x0020
	propUserID          = 0x0010
	propAppID           = 0x0008
	propClusterID       = 0x0004 // reserved, read and ignored
)

// Properties are the basic-class content properties of a message. Zero
// values mean "not set": they are not sent, and absent properties decode to
// zero values.
type Properties struct {
	ContentType     string
	ContentEncoding string
	Headers         map[string]any
	DeliveryMode    uint8
	Priority        uint8
	CorrelationID   string
	ReplyTo         string
	Expiration      string
	MessageID       string
	Timestamp       time.Time
	Type            string
	UserID          string
	AppID           string
}

// contentHeader is a decoded content header frame.
type contentHeader struct {
	class    uint16
	bodySize uint64
	props    Properties
}

// decodeContentHeader parses a content header frame payload.
func decodeContentHeader(payload []byte) (contentHeader, error) {
	d := decoder{b: payload}
	var h contentHeader
	h.class = d.short()
	d.short() // weight, unused
	h.bodySize = d.longlong()
	// Property flags may continue over several shorts; bit 0 says another follows.
	flags := d.short()
	for more := flags&1 != 0; more && d.err == nil; {
		next := d.short()
		more = next&1 != 0
	}
	p := &h.props
	if flags&propContentType != 0 {
		p.ContentType = d.shortstr()
	}
	if flags&propContentEncoding != 0 {
		p.ContentEncoding = d.shortstr()
	}
	if flags&propHeaders != 0 {
		p.Headers = d.table()
	}
	if flags&propDeliveryMode != 0 {
		p.DeliveryMode = d.octet()
	}
	if flags&propPriority != 0 {
		p.Priority = d.octet()
	}
	if flags&propCorrelationID != 0 {
		p.CorrelationID = d.shortstr()
	}
	if flags&propReplyTo != 0 {
		p.ReplyTo = d.shortstr()
	}
	if flags&propExpiration != 0 {
		p.Expiration = d.shortstr()
	}
	if flags&propMessageID != 0 {
		p.MessageID = d.shortstr()
	}
	if flags&propTimestamp != 0 {
		p.Timestamp = time.Unix(int64(d.longlong()), 0)
	}
	if flags&propType != 0 {
		p.Type = d.shortstr()
	}
	if flags&propUserID != 0 {
		p.UserID = d.shortstr()
	}
	if flags&propAppID != 0 {
		p.AppID = d.shortstr()
	}
	if flags&propClusterID != 0 {
		d.shortstr()
	}
	return h, d.err
}

// encodeContentHeader returns a basic-class content header frame payload.
func encodeContentHeader(bodySize uint64, p Properties) ([]byte, error) {
	var flags uint16
	var body encoder
	if p.ContentType != "" {
		flags |= propContentType
		body.shortstr(p.ContentType)
	}
	if p.ContentEncoding != "" {
		flags |= propContentEncoding
		body.shortstr(p.ContentEncoding)
	}
	if len(p.Headers) > 0 {
		flags |= propHeaders
		if err := body.table(p.Headers); err != nil {
			return nil, err
		}
	}
	if p.DeliveryMode != 0 {
		flags |= propDeliveryMode
		body.octet(p.DeliveryMode)
	}
	if p.Priority != 0 {
		flags |= propPriority
		body.octet(p.Priority)
	}
	if p.CorrelationID != "" {
		flags |= propCorrelationID
		body.shortstr(p.CorrelationID)
	}
	if p.ReplyTo != "" {
		flags |= propReplyTo
		body.shortstr(p.ReplyTo)
	}
	if p.Expiration != "" {
		flags |= propExpiration
		body.shortstr(p.Expiration)
	}
	if p.MessageID != "" {
		flags |= propMessageID
		body.shortstr(p.MessageID)
	}
	if !p.Timestamp.IsZero() {
		flags |= propTimestamp
		body.longlong(uint64(p.Timestamp.Unix()))
	}
	if p.Type != "" {
		flags |= propType
		body.shortstr(p.Type)
	}
	if p.UserID != "" {
		flags |= propUserID
		body.shortstr(p.UserID)
	}
	if p.AppID != "" {
		flags |= propAppID
		body.shortstr(p.AppID)
	}
	var e encoder
	e.short(classBasic)
	e.short(0) // weight
	e.longlong(bodySize)
	e.short(flags)
	e.b = append(e.b, body.b...)
	return e.b, nil
}

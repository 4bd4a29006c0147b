package fakebroker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// AMQP 0-9-1 frame types and the frame-end octet (spec section 4.2.3).
const (
	frameMethod    = 1
	frameHeader    = 2
	frameBody      = 3
	frameHeartbeat = 8
	frameEnd       = 0xCE

	// frameOverhead is the number of octets a frame adds around its payload:
	// type (1) + channel (2) + size (4) + frame-end (1).
	frameOverhead = 8
)

// protocolHeader is what an AMQP 0-9-1 client sends first.
var protocolHeader = []byte{'A', 'M', 'Q', 'P', 0, 0, 9, 1}

// frame is one raw frame read from the wire.
type frame struct {
	typ     byte
	channel uint16
	payload []byte
}

// frameError is a violation of the framing rules; the stream cannot be trusted
// after it, so the connection is closed with code and dropped.
type frameError struct {
	code uint16
	text string
}

func (e *frameError) Error() string { return fmt.Sprintf("%d %s", e.code, e.text) }

// readFrame reads one frame. max is the largest frame (payload plus the 8
// octets of overhead) the peer may send; 0 means no limit.
func readFrame(r *bufio.Reader, max uint32) (frame, error) {
	var hdr [7]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame{}, err
	}
	f := frame{typ: hdr[0], channel: binary.BigEndian.Uint16(hdr[1:3])}
	size := binary.BigEndian.Uint32(hdr[3:7])
	switch f.typ {
	case frameMethod, frameHeader, frameBody, frameHeartbeat:
	default:
		return frame{}, &frameError{501, fmt.Sprintf("FRAME_ERROR - unknown frame type %d", f.typ)}
	}
	if max > 0 && uint64(size)+frameOverhead > uint64(max) {
		return frame{}, &frameError{501, fmt.Sprintf("FRAME_ERROR - frame size %d exceeds frame-max %d", size, max)}
	}
	f.payload = make([]byte, int(size)+1)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return frame{}, err
	}
	if f.payload[size] != frameEnd {
		return frame{}, &frameError{501, fmt.Sprintf("FRAME_ERROR - bad frame-end octet 0x%02x", f.payload[size])}
	}
	f.payload = f.payload[:size]
	return f, nil
}

// appendFrame appends one complete frame to dst.
func appendFrame(dst []byte, typ byte, channel uint16, payload []byte) []byte {
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint16(dst, channel)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, payload...)
	return append(dst, frameEnd)
}

// heartbeatFrame is the encoded heartbeat frame.
var heartbeatFrame = appendFrame(nil, frameHeartbeat, 0, nil)

// encoder builds the payload of a method or content header frame.
type encoder struct {
	b []byte
}

func (e *encoder) octet(v uint8)      { e.b = append(e.b, v) }
func (e *encoder) short(v uint16)     { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) long(v uint32)      { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) longlong(v uint64)  { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *encoder) longstr(s string)   { e.long(uint32(len(s))); e.b = append(e.b, s...) }
func (e *encoder) longbytes(s []byte) { e.long(uint32(len(s))); e.b = append(e.b, s...) }

// shortstr writes a short string; longer strings are truncated to 255 octets
// (the field cannot express more).
func (e *encoder) shortstr(s string) {
	if len(s) > math.MaxUint8 {
		s = s[:math.MaxUint8]
	}
	e.octet(uint8(len(s)))
	e.b = append(e.b, s...)
}

// bits packs consecutive bit fields into one octet, the first in the lowest bit.
func (e *encoder) bits(bs ...bool) {
	var v uint8
	for i, b := range bs {
		if b {
			v |= 1 << i
		}
	}
	e.octet(v)
}

var errShort = errors.New("payload too short")

// decoder reads the fields of a frame payload. The first failure sticks in err
// and every later read returns a zero value.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = errShort
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) octet() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) short() uint16 {
	if v := d.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) long() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) longlong() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) shortstr() string {
	n := d.octet()
	return string(d.take(int(n)))
}

func (d *decoder) longbytes() []byte {
	n := d.long()
	if d.err == nil && uint64(n) > uint64(len(d.b)) {
		d.err = errShort
		return nil
	}
	return d.take(int(n))
}

func (d *decoder) longstr() string { return string(d.longbytes()) }

// bits reads one octet of packed bit fields; bit i of the result is field i.
func (d *decoder) bits() uint8 { return d.octet() }

func bit(v uint8, i uint) bool { return v&(1<<i) != 0 }

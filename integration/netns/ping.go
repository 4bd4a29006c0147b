package netns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"
)

const (
	// pingTimeout applies when Ping's context has no deadline.
	pingTimeout = 2 * time.Second
	// pingResend is how often Ping repeats its echo request.
	pingResend = 200 * time.Millisecond
)

// Ping sends ICMP echo requests (ICMPv6 for IPv6) from inside h to addr until
// a matching reply comes, ctx ends or, if ctx has no deadline, 2 s pass.
// A link-local IPv6 address needs its zone ("eth0"). It needs no ping binary:
// it uses a raw socket, which root may open.
func (h *Host) Ping(ctx context.Context, addr netip.Addr) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pingTimeout)
		defer cancel()
	}
	network, request, reply := "ip4:icmp", byte(8), byte(0)
	if addr.Is6() && !addr.Is4In6() {
		network, request, reply = "ip6:ipv6-icmp", 128, 129
	}
	var conn net.PacketConn
	var dst *net.IPAddr
	if err := h.Do(func() error {
		a, err := zoneIndex(addr)
		if err != nil {
			return err
		}
		dst = &net.IPAddr{IP: a.AsSlice(), Zone: a.Zone()}
		conn, err = net.ListenPacket(network, "")
		return err
	}); err != nil {
		return fmt.Errorf("netns: ping %s from %s: %w", addr, h.name, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	id := uint16(rand.Uint32())
	buf := make([]byte, 1500)
	for seq := uint16(1); ; seq++ {
		msg := echoRequest(request, id, seq, network == "ip4:icmp")
		if _, err := conn.WriteTo(msg, dst); err != nil {
			return fmt.Errorf("netns: ping %s from %s: %w", addr, h.name, err)
		}
		resend := time.Now().Add(pingResend)
		for {
			if ctx.Err() != nil {
				return fmt.Errorf("netns: ping %s from %s: no reply: %w", addr, h.name, ctx.Err())
			}
			_ = conn.SetReadDeadline(resend)
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // resend, or give up if ctx is done
				}
				return fmt.Errorf("netns: ping %s from %s: %w", addr, h.name, err)
			}
			// A raw socket sees every ICMP message to this namespace: only
			// a reply to one of our requests counts.
			if n >= 8 && buf[0] == reply && buf[1] == 0 &&
				binary.BigEndian.Uint16(buf[4:]) == id && binary.BigEndian.Uint16(buf[6:]) <= seq {
				return nil
			}
		}
	}
}

// echoRequest builds an ICMP or ICMPv6 echo request. The kernel fills in
// ICMPv6 checksums; ICMPv4 ones are the sender's job.
func echoRequest(typ byte, id, seq uint16, withChecksum bool) []byte {
	msg := []byte{typ, 0, 0, 0, 0, 0, 0, 0, 'n', 'e', 't', 'n', 's'}
	binary.BigEndian.PutUint16(msg[4:], id)
	binary.BigEndian.PutUint16(msg[6:], seq)
	if withChecksum {
		binary.BigEndian.PutUint16(msg[2:], checksum(msg))
	}
	return msg
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

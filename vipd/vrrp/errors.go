package vrrp

import (
	"errors"
	"strconv"
)

// ErrInvalidAdvert is wrapped by every error [Marshal] returns: the
// advertisement cannot be put on the wire as asked (an interval that the
// version cannot carry, mixed address families, too many addresses...).
var ErrInvalidAdvert = errors.New("vrrp: invalid advertisement")

// DropReason says why a received packet was not taken as an advertisement.
// Its String is a stable, lower-case label meant for metrics (e.g. a
// "reason" label on a drop counter); the labels never change meaning.
//
// [Parse] returns the structural reasons, [DropShort] to [DropFamily]. The
// others are per-instance checks done by the receiver once a packet parsed;
// they live here so that there is one set of labels.
type DropReason int

// Reasons a packet is dropped. [Parse] reports the first seven.
const (
	// DropShort: shorter than the fixed part of a VRRP message (8 bytes,
	// 16 for version 2 with its authentication data).
	DropShort DropReason = iota + 1
	// DropVersion: the version field is neither 2 nor 3.
	DropVersion
	// DropType: the type field is not 1 (advertisement).
	DropType
	// DropChecksum: the checksum matches none of the styles the version and
	// address family allow.
	DropChecksum
	// DropLength: the message length does not match the address count.
	DropLength
	// DropInterval: the advertisement interval is zero.
	DropInterval
	// DropFamily: the IP source and destination are not of one family, or
	// a version 2 message came over IPv6.
	DropFamily

	// DropTTL: the TTL or hop limit is not 255 (RFC 5798 §7.1), or, for a
	// unicast peer with min_ttl / max_ttl, outside that range.
	DropTTL
	// DropVRID: the virtual router ID is not the instance's.
	DropVRID
	// DropAuth: the version 2 auth type or password differs.
	DropAuth
	// DropIntervalMismatch: a version 2 advert whose interval differs from
	// the instance's (keepalived drops these too).
	DropIntervalMismatch
	// DropAddresses: the address list is unacceptable, e.g. an IPv6
	// advert whose first address is not link-local.
	DropAddresses
	// DropDestination: sent to the wrong place: a multicast instance took
	// a packet not addressed to its group (e.g. to the host's own unicast
	// address), or a unicast instance one addressed to a multicast group.
	// keepalived drops these too.
	DropDestination
	// DropSource: a unicast instance checking sources (keepalived's
	// check_unicast_src) took an advert from an address that is not one of
	// its unicast peers.
	DropSource
)

var dropLabels = [...]string{
	DropShort:            "short",
	DropVersion:          "version",
	DropType:             "type",
	DropChecksum:         "checksum",
	DropLength:           "length",
	DropInterval:         "interval",
	DropFamily:           "family",
	DropTTL:              "ttl",
	DropVRID:             "vrid",
	DropAuth:             "auth",
	DropIntervalMismatch: "interval_mismatch",
	DropAddresses:        "addresses",
	DropDestination:      "destination",
	DropSource:           "source",
}

// String returns the reason's metric label, "unknown" for a value that is
// not one of the constants.
func (r DropReason) String() string {
	if r > 0 && int(r) < len(dropLabels) {
		return dropLabels[r]
	}
	return "unknown"
}

// ParseError is returned by [Parse] for a packet that is not a valid
// advertisement. Reason is what a receiver counts; Detail says more, for a
// log line. Receivers use errors.As to get at it.
type ParseError struct {
	Reason DropReason
	Detail string
}

func (e *ParseError) Error() string {
	if e.Detail == "" {
		return "vrrp: dropped (" + e.Reason.String() + ")"
	}
	return "vrrp: dropped (" + e.Reason.String() + "): " + e.Detail
}

func dropf(r DropReason, detail string) *ParseError {
	return &ParseError{Reason: r, Detail: detail}
}

func dropn(r DropReason, what string, n int) *ParseError {
	return &ParseError{Reason: r, Detail: what + " " + strconv.Itoa(n)}
}

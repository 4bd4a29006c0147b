package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// Config is one VRRP instance as the state machine sees it; the fields map
// onto a keepalived vrrp_instance block. The zero value of every field but
// VRID and PrimaryIP works: [NewMachine] fills zero fields as keepalived
// does (see each field). Config is a plain value; a [Machine] keeps its own
// copy.
type Config struct {
	// VRID is virtual_router_id, 1..255. Required.
	VRID uint8
	// Version is the VRRP version, 2 or 3. Zero means 2.
	Version int
	// Priority is the configured (base) priority, 1..255; 255 makes the
	// instance the address owner. Zero means 255 when InitialState is
	// Master and 100 otherwise, as in keepalived.
	Priority uint8
	// Interval is advert_int: whole seconds, 1 s to 255 s, for version 2;
	// a multiple of 10 ms, 10 ms to 40.95 s, for version 3. Zero means 1 s.
	Interval time.Duration
	// InitialState is keepalived's "state": Backup or Master. Initialize
	// (the zero value) means Master for an address owner and Backup
	// otherwise, as in keepalived.
	//
	// Master does not win an election by itself; priority still decides.
	// It makes the instance take over after one advert interval (plus the
	// skew of priority 255) instead of after Master_Down_Interval when it
	// hears no master, and it turns NoPreempt and PreemptDelay off.
	InitialState State
	// NoPreempt is keepalived's nopreempt: a backup with a higher priority
	// than the master's does not take over while the master advertises.
	// Ignored when InitialState is Master.
	NoPreempt bool
	// PreemptDelay is preempt_delay: a backup that hears a master of lower
	// priority keeps accepting its adverts for this long before it ignores
	// them (and so takes over a Master_Down_Interval after the last one it
	// accepted). 0 to 1000 s. Ignored when InitialState is Master or
	// NoPreempt is set, as in keepalived.
	PreemptDelay time.Duration
	// PrimaryIP is the address our adverts come from (unicast_src_ip or the
	// interface's primary address; link-local for IPv6). It breaks ties
	// between masters of equal priority: the higher address wins. Required.
	PrimaryIP netip.Addr
	// Addresses are the virtual addresses the instance advertises and
	// holds as master. The machine only compares them with the list a
	// received advert carries (see [Counters].AddressMismatch).
	Addresses []netip.Addr
	// AcceptIntervalMismatch makes a version 2 instance accept adverts whose
	// interval differs from its own. keepalived drops them (and so ends up
	// with two masters); by default the machine drops them too and reports
	// each with a [DropAdvert] action.
	AcceptIntervalMismatch bool
	// LowerPriorityNoAdvert is keepalived's lower_prio_no_advert: a master
	// that hears an advert of lower priority does not answer it at once
	// with an advert of its own (as RFC 3768 and RFC 5798 say). By default
	// it answers, as keepalived does, which ends a dual-master episode one
	// advert sooner.
	LowerPriorityNoAdvert bool
	// HigherPrioritySendAdvert is keepalived's higher_prio_send_advert: a
	// master that hears a higher priority advert sends one more advert of
	// its own before it becomes backup, so that the new master re-announces
	// its addresses.
	HigherPrioritySendAdvert bool
}

// DefaultConfig returns a fresh Config with keepalived's defaults filled
// in: version 2, priority 100, a one second interval, preemption on.
// InitialState stays Initialize, which means "derived from the priority"
// as in keepalived. VRID and PrimaryIP are left for the caller.
func DefaultConfig() Config {
	return Config{
		Version:  2,
		Priority: 100,
		Interval: time.Second,
	}
}

// ConfigError is returned by [Config.Validate] and [NewMachine] for a
// configuration the machine cannot run.
type ConfigError struct {
	Field  string // the Config field at fault
	Reason string
}

func (e *ConfigError) Error() string {
	return "vrrp: config: " + e.Field + ": " + e.Reason
}

// Limits of the advertisement interval per version.
const (
	maxIntervalV2 = 255 * time.Second
	minIntervalV3 = 10 * time.Millisecond
	maxIntervalV3 = 4095 * 10 * time.Millisecond
	// maxPreemptDelay is keepalived's upper bound on preempt_delay.
	maxPreemptDelay = 1000 * time.Second
)

// withDefaults returns a copy of c with zero fields filled.
func (c Config) withDefaults() Config {
	if c.Version == 0 {
		c.Version = 2
	}
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.Priority == 0 {
		if c.InitialState == Master {
			c.Priority = PriorityOwner
		} else {
			c.Priority = 100
		}
	}
	if c.InitialState == Initialize {
		if c.Priority == PriorityOwner {
			c.InitialState = Master
		} else {
			c.InitialState = Backup
		}
	}
	c.Addresses = append([]netip.Addr(nil), c.Addresses...)
	return c
}

// Validate reports whether a machine can run c, once zero fields are
// filled as [NewMachine] fills them. The error is a *[ConfigError].
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if c.VRID == 0 {
		return bad("VRID", "must be 1..255")
	}
	switch c.Version {
	case 2:
		if c.Interval < time.Second || c.Interval > maxIntervalV2 || c.Interval%time.Second != 0 {
			return bad("Interval", "%v: version 2 needs whole seconds from 1s to 255s", c.Interval)
		}
	case 3:
		if c.Interval < minIntervalV3 || c.Interval > maxIntervalV3 || c.Interval%(10*time.Millisecond) != 0 {
			return bad("Interval", "%v: version 3 needs a multiple of 10ms from 10ms to 40.95s", c.Interval)
		}
	default:
		return bad("Version", "%d: must be 2 or 3", c.Version)
	}
	if c.InitialState != Backup && c.InitialState != Master {
		return bad("InitialState", "%v: must be BACKUP or MASTER", c.InitialState)
	}
	if c.PreemptDelay < 0 || c.PreemptDelay > maxPreemptDelay {
		return bad("PreemptDelay", "%v: must be 0 to 1000s", c.PreemptDelay)
	}
	if !c.PrimaryIP.IsValid() {
		return bad("PrimaryIP", "required")
	}
	if c.Version == 2 && !c.PrimaryIP.Is4() {
		return bad("PrimaryIP", "%v: version 2 is IPv4 only", c.PrimaryIP)
	}
	for _, a := range c.Addresses {
		if !a.IsValid() || a.Is4() != c.PrimaryIP.Is4() {
			return bad("Addresses", "%v: not an address of PrimaryIP's family", a)
		}
	}
	return nil
}

// preempts reports whether a backup with a higher priority than the
// master's takes over (keepalived ignores nopreempt for state MASTER).
func (c *Config) preempts() bool {
	return !c.NoPreempt || c.InitialState == Master
}

// preemptDelay is the preempt_delay in force: none for state MASTER or
// with nopreempt, as keepalived has it.
func (c *Config) preemptDelay() time.Duration {
	if c.InitialState == Master || c.NoPreempt {
		return 0
	}
	return c.PreemptDelay
}

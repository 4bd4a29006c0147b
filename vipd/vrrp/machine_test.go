package vrrp_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/vrrp"
)

var (
	mtSelf = netip.MustParseAddr("192.0.2.10")
	mtLow  = netip.MustParseAddr("192.0.2.5")  // a peer with a lower address
	mtHigh = netip.MustParseAddr("192.0.2.20") // a peer with a higher address
	mtVIP  = netip.MustParseAddr("192.0.2.100")
)

func mtConfig(prio uint8) vrrp.Config {
	c := vrrp.DefaultConfig()
	c.VRID = 51
	c.Priority = prio
	c.PrimaryIP = mtSelf
	c.Addresses = []netip.Addr{mtVIP}
	return c
}

func mtMachine(t *testing.T, cfg vrrp.Config) *vrrp.Machine {
	t.Helper()
	m, err := vrrp.NewMachine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// mtAdvert is an advert matching mtConfig's instance.
func mtAdvert(prio uint8) *vrrp.Advert {
	return &vrrp.Advert{Version: 2, VRID: 51, Priority: prio, Interval: time.Second, Addresses: []netip.Addr{mtVIP}}
}

// kinds lists the kinds of acts, for comparing action sequences.
func kinds(acts []vrrp.Action) []vrrp.ActionKind {
	var out []vrrp.ActionKind
	for _, a := range acts {
		out = append(out, a.Kind)
	}
	return out
}

// mtMaster returns a machine of priority prio that has become master at
// simEpoch + its Master_Down_Interval, and that time.
func mtMaster(t *testing.T, cfg vrrp.Config) (*vrrp.Machine, time.Time) {
	t.Helper()
	m := mtMachine(t, cfg)
	m.Start(simEpoch)
	now := m.Deadline()
	m.Timer(now)
	if m.State() != vrrp.Master {
		t.Fatalf("state %v, want MASTER", m.State())
	}
	return m, now
}

func TestConfigValidate(t *testing.T) {
	ok := mtConfig(100)
	tests := []struct {
		name  string
		edit  func(*vrrp.Config)
		field string // "" for valid
	}{
		{"default", func(*vrrp.Config) {}, ""},
		{"zero priority and version filled", func(c *vrrp.Config) { c.Priority, c.Version, c.Interval = 0, 0, 0 }, ""},
		{"no VRID", func(c *vrrp.Config) { c.VRID = 0 }, "VRID"},
		{"version 4", func(c *vrrp.Config) { c.Version = 4 }, "Version"},
		{"v2 sub-second interval", func(c *vrrp.Config) { c.Interval = 1500 * time.Millisecond }, "Interval"},
		{"v2 interval 256s", func(c *vrrp.Config) { c.Interval = 256 * time.Second }, "Interval"},
		{"v2 interval 255s", func(c *vrrp.Config) { c.Interval = 255 * time.Second }, ""},
		{"v3 interval 10ms", func(c *vrrp.Config) { c.Version = 3; c.Interval = 10 * time.Millisecond }, ""},
		{"v3 interval 5ms", func(c *vrrp.Config) { c.Version = 3; c.Interval = 5 * time.Millisecond }, "Interval"},
		{"v3 interval 15ms", func(c *vrrp.Config) { c.Version = 3; c.Interval = 15 * time.Millisecond }, "Interval"},
		{"v3 interval 40.95s", func(c *vrrp.Config) { c.Version = 3; c.Interval = 40950 * time.Millisecond }, ""},
		{"v3 interval 41s", func(c *vrrp.Config) { c.Version = 3; c.Interval = 41 * time.Second }, "Interval"},
		{"initial state FAULT", func(c *vrrp.Config) { c.InitialState = vrrp.Fault }, "InitialState"},
		{"negative preempt delay", func(c *vrrp.Config) { c.PreemptDelay = -time.Second }, "PreemptDelay"},
		{"preempt delay 1001s", func(c *vrrp.Config) { c.PreemptDelay = 1001 * time.Second }, "PreemptDelay"},
		{"no primary IP", func(c *vrrp.Config) { c.PrimaryIP = netip.Addr{} }, "PrimaryIP"},
		{"v2 over IPv6", func(c *vrrp.Config) {
			c.PrimaryIP = netip.MustParseAddr("fe80::1")
			c.Addresses = []netip.Addr{netip.MustParseAddr("fe80::100")}
		}, "PrimaryIP"},
		{"v3 over IPv6", func(c *vrrp.Config) {
			c.Version = 3
			c.PrimaryIP = netip.MustParseAddr("fe80::1")
			c.Addresses = []netip.Addr{netip.MustParseAddr("fe80::100")}
		}, ""},
		{"mixed families", func(c *vrrp.Config) { c.Addresses = append(c.Addresses, netip.MustParseAddr("2001:db8::1")) }, "Addresses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.Addresses = slices.Clone(ok.Addresses)
			tt.edit(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := vrrp.NewMachine(c); err != nil {
					t.Fatalf("NewMachine: %v", err)
				}
				return
			}
			var ce *vrrp.ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field {
				t.Fatalf("Validate = %v, want a ConfigError on %s", err, tt.field)
			}
			if !strings.HasPrefix(err.Error(), "vrrp: config: "+tt.field+": ") {
				t.Errorf("message %q", err)
			}
			if _, err := vrrp.NewMachine(c); !errors.As(err, &ce) {
				t.Fatalf("NewMachine = %v, want the ConfigError", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name      string
		prio      uint8
		state     vrrp.State
		wantPrio  uint8
		wantState vrrp.State
	}{
		{"nothing set", 0, vrrp.Initialize, 100, vrrp.Backup},
		{"state MASTER without priority is the owner", 0, vrrp.Master, 255, vrrp.Master},
		{"owner without state is MASTER", 255, vrrp.Initialize, 255, vrrp.Master},
		{"priority without state is BACKUP", 150, vrrp.Initialize, 150, vrrp.Backup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := vrrp.Config{VRID: 1, PrimaryIP: mtSelf, Priority: tt.prio, InitialState: tt.state}
			got := mtMachine(t, c).Config()
			if got.Priority != tt.wantPrio || got.InitialState != tt.wantState || got.Version != 2 || got.Interval != time.Second {
				t.Errorf("filled: priority %d state %v version %d interval %v", got.Priority, got.InitialState, got.Version, got.Interval)
			}
		})
	}
}

// The timer formulas with the values worked out by hand.
func TestTimerFormulas(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		version  int
		prio     uint8
		interval time.Duration
		skew     time.Duration
		down     time.Duration
	}{
		{2, 100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{2, 200, time.Second, 218750 * time.Microsecond, 3218750 * time.Microsecond},
		{2, 254, time.Second, 7812500 * time.Nanosecond, 3007812500 * time.Nanosecond},
		{2, 1, time.Second, 996093750 * time.Nanosecond, 3996093750 * time.Nanosecond},
		// Version 2's skew does not scale with the interval.
		{2, 100, 3 * time.Second, 609375 * time.Microsecond, 9609375 * time.Microsecond},
		{3, 100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{3, 100, 100 * ms, 60937500 * time.Nanosecond, 360937500 * time.Nanosecond},
		{3, 200, 100 * ms, 21875 * time.Microsecond, 321875 * time.Microsecond},
		{3, 128, 3 * time.Second, 1500 * ms, 10500 * ms},
	}
	for _, tt := range tests {
		c := mtConfig(tt.prio)
		c.Version, c.Interval = tt.version, tt.interval
		st := mtMachine(t, c).Status()
		if st.Skew != tt.skew || st.MasterDown != tt.down {
			t.Errorf("v%d priority %d interval %v: skew %v down %v, want %v %v",
				tt.version, tt.prio, tt.interval, st.Skew, st.MasterDown, tt.skew, tt.down)
		}
	}
}

func TestStart(t *testing.T) {
	tests := []struct {
		name     string
		cfg      vrrp.Config
		want     []vrrp.ActionKind
		state    vrrp.State
		deadline time.Duration
	}{
		{
			name:     "backup waits Master_Down_Interval",
			cfg:      mtConfig(100),
			want:     []vrrp.ActionKind{vrrp.Transition},
			state:    vrrp.Backup,
			deadline: 3609375 * time.Microsecond,
		},
		{
			name:     "state MASTER waits one interval and the skew of 255",
			cfg:      func() vrrp.Config { c := mtConfig(100); c.InitialState = vrrp.Master; return c }(),
			want:     []vrrp.ActionKind{vrrp.Transition},
			state:    vrrp.Backup,
			deadline: time.Second + time.Second/256,
		},
		{
			name:     "owner: advert first, then addresses, announcement, transition",
			cfg:      mtConfig(255),
			want:     []vrrp.ActionKind{vrrp.SendAdvert, vrrp.AddAddresses, vrrp.Announce, vrrp.Transition},
			state:    vrrp.Master,
			deadline: time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mtMachine(t, tt.cfg)
			if m.State() != vrrp.Initialize || !m.Deadline().IsZero() {
				t.Fatalf("new machine: %v, deadline %v", m.State(), m.Deadline())
			}
			acts := m.Start(simEpoch)
			if got := kinds(acts); !slices.Equal(got, tt.want) {
				t.Fatalf("actions %v, want %v", got, tt.want)
			}
			last := acts[len(acts)-1]
			if last.From != vrrp.Initialize || last.To != tt.state || m.State() != tt.state {
				t.Errorf("transition %v, state %v", last, m.State())
			}
			if got := m.Deadline().Sub(simEpoch); got != tt.deadline {
				t.Errorf("deadline %v, want %v", got, tt.deadline)
			}
			if acts := m.Start(simEpoch.Add(time.Second)); acts != nil {
				t.Errorf("second Start: %v", acts)
			}
		})
	}
}

func TestTimerBeforeDeadlineDoesNothing(t *testing.T) {
	m := mtMachine(t, mtConfig(100))
	if acts := m.Timer(simEpoch); acts != nil {
		t.Fatalf("Timer before Start: %v", acts)
	}
	m.Start(simEpoch)
	if acts := m.Timer(m.Deadline().Add(-1)); acts != nil || m.State() != vrrp.Backup {
		t.Fatalf("early Timer: %v, state %v", acts, m.State())
	}
	acts := m.Timer(m.Deadline())
	if got := kinds(acts); !slices.Equal(got, []vrrp.ActionKind{vrrp.SendAdvert, vrrp.AddAddresses, vrrp.Announce, vrrp.Transition}) {
		t.Fatalf("takeover actions %v", got)
	}
	if acts[0].Priority != 100 || acts[0].Interval != time.Second {
		t.Errorf("advert %v", acts[0])
	}
	// A late timer counts the next advert from when it ran.
	late := m.Deadline().Add(300 * time.Millisecond)
	if acts := m.Timer(late); len(acts) != 1 || acts[0].Kind != vrrp.SendAdvert {
		t.Fatalf("master timer: %v", acts)
	}
	if got := m.Deadline(); !got.Equal(late.Add(time.Second)) {
		t.Errorf("next advert at %v, want %v", got.Sub(late), time.Second)
	}
}

func TestMasterReceive(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func(*vrrp.Config)
		src   netip.Addr
		prio  uint8
		want  []vrrp.ActionKind
		state vrrp.State
		// resetsTimer: the next advert is due an interval after the
		// receive, because the machine just sent one.
		resetsTimer bool
	}{
		{"priority 0 answered at once", nil, mtHigh, 0,
			[]vrrp.ActionKind{vrrp.SendAdvert}, vrrp.Master, true},
		{"lower priority answered at once", nil, mtHigh, 99,
			[]vrrp.ActionKind{vrrp.SendAdvert, vrrp.LowerPriorityHeard}, vrrp.Master, true},
		{"lower priority with lower_prio_no_advert", func(c *vrrp.Config) { c.LowerPriorityNoAdvert = true }, mtHigh, 99,
			[]vrrp.ActionKind{vrrp.LowerPriorityHeard}, vrrp.Master, false},
		{"equal priority from a lower address", nil, mtLow, 100,
			[]vrrp.ActionKind{vrrp.SendAdvert, vrrp.LowerPriorityHeard}, vrrp.Master, true},
		{"equal priority from a higher address", nil, mtHigh, 100,
			[]vrrp.ActionKind{vrrp.RemoveAddresses, vrrp.Transition}, vrrp.Backup, false},
		{"higher priority", nil, mtLow, 101,
			[]vrrp.ActionKind{vrrp.RemoveAddresses, vrrp.Transition}, vrrp.Backup, false},
		{"higher priority with higher_prio_send_advert", func(c *vrrp.Config) { c.HigherPrioritySendAdvert = true }, mtLow, 101,
			[]vrrp.ActionKind{vrrp.SendAdvert, vrrp.RemoveAddresses, vrrp.Transition}, vrrp.Backup, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mtConfig(100)
			if tt.cfg != nil {
				tt.cfg(&c)
			}
			m, now := mtMaster(t, c)
			before := m.Deadline()
			now = now.Add(400 * time.Millisecond)
			acts := m.Receive(now, tt.src, mtAdvert(tt.prio))
			if got := kinds(acts); !slices.Equal(got, tt.want) {
				t.Fatalf("actions %v, want %v", got, tt.want)
			}
			if m.State() != tt.state {
				t.Fatalf("state %v, want %v", m.State(), tt.state)
			}
			for _, a := range acts {
				if a.Kind == vrrp.SendAdvert && a.Priority != 100 {
					t.Errorf("advert priority %d, want 100", a.Priority)
				}
				if a.Kind == vrrp.LowerPriorityHeard && (a.Peer != tt.src || a.Priority != tt.prio) {
					t.Errorf("LowerPriorityHeard %v", a)
				}
			}
			switch {
			case tt.state == vrrp.Backup:
				if got := m.Deadline().Sub(now); got != 3609375*time.Microsecond {
					t.Errorf("down timer %v after becoming backup", got)
				}
				if st := m.Status(); st.Master != tt.src || st.MasterPriority != tt.prio || st.Counters.ReleasedMaster != 1 {
					t.Errorf("status %+v", st)
				}
			case tt.resetsTimer:
				if got := m.Deadline().Sub(now); got != time.Second {
					t.Errorf("next advert in %v, want 1s", got)
				}
			default:
				if !m.Deadline().Equal(before) {
					t.Errorf("advert timer moved")
				}
			}
		})
	}
}

func TestBackupReceive(t *testing.T) {
	const down = 3609375 * time.Microsecond // priority 100
	tests := []struct {
		name string
		cfg  func(*vrrp.Config)
		prio uint8
		// wait is the down timer after the advert, from the advert; 0
		// means the advert was ignored and the timer did not move.
		wait time.Duration
	}{
		{"priority 0: Skew_Time", nil, 0, 609375 * time.Microsecond},
		{"higher priority: reset", nil, 150, down},
		{"equal priority: reset", nil, 100, down},
		{"lower priority: ignored", nil, 99, 0},
		{"lower priority with nopreempt: reset", func(c *vrrp.Config) { c.NoPreempt = true }, 99, down},
		{"nopreempt ignored with state MASTER", func(c *vrrp.Config) { c.NoPreempt = true; c.InitialState = vrrp.Master }, 99, 0},
		{"lower priority, preempt_delay not yet over: reset", func(c *vrrp.Config) { c.PreemptDelay = time.Minute }, 99, down},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mtConfig(100)
			if tt.cfg != nil {
				tt.cfg(&c)
			}
			m := mtMachine(t, c)
			m.Start(simEpoch)
			before := m.Deadline()
			now := simEpoch.Add(500 * time.Millisecond)
			if acts := m.Receive(now, mtHigh, mtAdvert(tt.prio)); acts != nil {
				t.Fatalf("actions %v", acts)
			}
			if tt.wait == 0 {
				if !m.Deadline().Equal(before) {
					t.Errorf("deadline moved to %v", m.Deadline().Sub(simEpoch))
				}
			} else if got := m.Deadline().Sub(now); got != tt.wait {
				t.Errorf("down timer %v, want %v", got, tt.wait)
			}
			if st := m.Status(); tt.prio != 0 && (st.Master != mtHigh || st.MasterPriority != tt.prio) {
				t.Errorf("master heard %v/%d", st.Master, st.MasterPriority)
			}
		})
	}
}

func TestDrops(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func(*vrrp.Config)
		src    netip.Addr
		advert func(*vrrp.Advert)
		drop   vrrp.DropReason
		reason string
	}{
		{"other VRID", nil, mtHigh, func(a *vrrp.Advert) { a.VRID = 52 }, vrrp.DropVRID, "VRID 52, ours 51"},
		{"other version", nil, mtHigh, func(a *vrrp.Advert) { a.Version = 3 }, vrrp.DropVersion, "version 3, ours 2"},
		{"zero interval", func(c *vrrp.Config) { c.Version = 3 }, mtHigh, func(a *vrrp.Advert) { a.Version, a.Interval = 3, 0 }, vrrp.DropInterval, "advert interval 0s"},
		{"v2 interval mismatch", nil, mtHigh, func(a *vrrp.Advert) { a.Interval = 2 * time.Second }, vrrp.DropIntervalMismatch, "advert interval 2s, ours 1s"},
		{"our own address", nil, mtSelf, func(*vrrp.Advert) {}, 0, "advert from our own primary address"},
		{"our own address, v4-mapped", nil, netip.AddrFrom16(mtSelf.As16()), func(*vrrp.Advert) {}, 0, "advert from our own primary address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mtConfig(100)
			if tt.cfg != nil {
				tt.cfg(&c)
			}
			m := mtMachine(t, c)
			m.Start(simEpoch)
			before := m.Deadline()
			a := mtAdvert(200)
			tt.advert(a)
			acts := m.Receive(simEpoch.Add(time.Second), tt.src, a)
			if len(acts) != 1 || acts[0].Kind != vrrp.DropAdvert || acts[0].Drop != tt.drop || acts[0].Reason != tt.reason {
				t.Fatalf("actions %v (drop %v)", acts, acts[0].Drop)
			}
			if !m.Deadline().Equal(before) {
				t.Errorf("a dropped advert moved the timer")
			}
			if st := m.Status(); st.Counters.Dropped != 1 || st.Counters.AdvertsReceived != 1 {
				t.Errorf("counters %+v", st.Counters)
			}
		})
	}
}

func TestReceiveIgnoredWhenNotRunning(t *testing.T) {
	m := mtMachine(t, mtConfig(100))
	if acts := m.Receive(simEpoch, mtHigh, mtAdvert(200)); acts != nil {
		t.Errorf("before Start: %v", acts)
	}
	m.Start(simEpoch)
	m.SetFault(simEpoch, true)
	if acts := m.Receive(simEpoch, mtHigh, mtAdvert(200)); acts != nil {
		t.Errorf("in Fault: %v", acts)
	}
	m.Shutdown(simEpoch)
	if acts := m.Receive(simEpoch, mtHigh, mtAdvert(0)); acts != nil {
		t.Errorf("Stopped: %v", acts)
	}
	if acts := m.Receive(simEpoch, mtHigh, nil); acts != nil {
		t.Errorf("nil advert: %v", acts)
	}
	if n := m.Status().Counters.AdvertsReceived; n != 0 {
		t.Errorf("AdvertsReceived %d", n)
	}
}

func TestAddressMismatchCounted(t *testing.T) {
	m := mtMachine(t, mtConfig(100))
	m.Start(simEpoch)
	a := mtAdvert(200)
	a.Addresses = []netip.Addr{netip.MustParseAddr("192.0.2.101")}
	m.Receive(simEpoch, mtHigh, a)
	m.Receive(simEpoch, mtHigh, mtAdvert(200))
	if n := m.Status().Counters.AddressMismatch; n != 1 {
		t.Errorf("AddressMismatch %d, want 1", n)
	}
}

func TestSetPriority(t *testing.T) {
	tests := []struct {
		base  uint8
		total int
		want  uint8
	}{
		{100, 150, 150},
		{100, -20, 1},
		{100, 0, 1},
		{100, 255, 254},
		{100, 400, 254},
		{255, 100, 255}, // an owner's priority never moves
		{255, 300, 255},
	}
	for _, tt := range tests {
		m := mtMachine(t, mtConfig(tt.base))
		m.SetPriority(simEpoch, tt.total)
		if st := m.Status(); st.Priority != tt.want || st.BasePriority != tt.base {
			t.Errorf("base %d total %d: priority %d, want %d", tt.base, tt.total, st.Priority, tt.want)
		}
	}
}

func TestSetPriorityMovesBackupTimer(t *testing.T) {
	m := mtMachine(t, mtConfig(100))
	m.Start(simEpoch)
	// The down timer moves by the change in skew: 156/256 s -> 56/256 s.
	m.SetPriority(simEpoch.Add(time.Second), 200)
	if got, want := m.Deadline().Sub(simEpoch), 3*time.Second+56*time.Second/256; got != want {
		t.Errorf("deadline %v, want %v", got, want)
	}
	// A move into the past makes the timer due now.
	m.Receive(simEpoch.Add(2*time.Second), mtHigh, mtAdvert(0)) // Skew_Time(200) = 0.21875s
	now := simEpoch.Add(2*time.Second + 200*time.Millisecond)
	m.SetPriority(now, 1) // Skew_Time(1) = 255/256 s
	m.SetPriority(now, 254)
	if got := m.Deadline(); !got.Equal(now) {
		t.Errorf("deadline %v, want now", got.Sub(now))
	}
	if acts := m.Timer(now); m.State() != vrrp.Master || len(acts) == 0 {
		t.Errorf("Timer at the clamped deadline: %v", acts)
	}
}

func TestSetPriorityLeavesInitialMasterTimer(t *testing.T) {
	c := mtConfig(100)
	c.InitialState = vrrp.Master
	m := mtMachine(t, c)
	m.Start(simEpoch)
	before := m.Deadline()
	m.SetPriority(simEpoch, 200)
	if !m.Deadline().Equal(before) {
		t.Errorf("the initial MASTER timer moved by %v", m.Deadline().Sub(before))
	}
}

func TestSetPriorityMasterAdvertisesNewPriority(t *testing.T) {
	m, now := mtMaster(t, mtConfig(200))
	if acts := m.SetPriority(now, 150); acts != nil {
		t.Fatalf("SetPriority: %v", acts)
	}
	acts := m.Timer(m.Deadline())
	if len(acts) != 1 || acts[0].Priority != 150 {
		t.Fatalf("next advert %v, want priority 150", acts)
	}
}

func TestFault(t *testing.T) {
	t.Run("master", func(t *testing.T) {
		m, now := mtMaster(t, mtConfig(100))
		acts := m.SetFault(now, true)
		if got := kinds(acts); !slices.Equal(got, []vrrp.ActionKind{vrrp.SendAdvert, vrrp.RemoveAddresses, vrrp.Transition}) {
			t.Fatalf("actions %v", got)
		}
		if acts[0].Priority != 0 || m.State() != vrrp.Fault || !m.Deadline().IsZero() {
			t.Fatalf("advert %v, state %v, deadline %v", acts[0], m.State(), m.Deadline())
		}
		if acts := m.SetFault(now, true); acts != nil {
			t.Errorf("second fault: %v", acts)
		}
		later := now.Add(time.Minute)
		acts = m.SetFault(later, false)
		if len(acts) != 1 || acts[0].From != vrrp.Fault || acts[0].To != vrrp.Backup {
			t.Fatalf("leaving fault: %v", acts)
		}
		if got := m.Deadline().Sub(later); got != 3609375*time.Microsecond {
			t.Errorf("down timer %v", got)
		}
		st := m.Status()
		if st.Counters.PriorityZeroSent != 1 || st.Counters.ReleasedMaster != 1 || st.Counters.BecameMaster != 1 {
			t.Errorf("counters %+v", st.Counters)
		}
	})
	t.Run("backup", func(t *testing.T) {
		m := mtMachine(t, mtConfig(100))
		m.Start(simEpoch)
		if acts := m.SetFault(simEpoch, false); acts != nil {
			t.Errorf("clearing no fault: %v", acts)
		}
		acts := m.SetFault(simEpoch, true)
		if got := kinds(acts); !slices.Equal(got, []vrrp.ActionKind{vrrp.Transition}) {
			t.Fatalf("actions %v", got)
		}
	})
	t.Run("before start", func(t *testing.T) {
		m := mtMachine(t, mtConfig(255))
		m.SetFault(simEpoch, true)
		acts := m.Start(simEpoch)
		if len(acts) != 1 || acts[0].To != vrrp.Fault || !m.Deadline().IsZero() {
			t.Fatalf("Start: %v", acts)
		}
		// An owner configured MASTER comes back as master at once.
		acts = m.SetFault(simEpoch.Add(time.Second), false)
		if got := kinds(acts); !slices.Equal(got, []vrrp.ActionKind{vrrp.SendAdvert, vrrp.AddAddresses, vrrp.Announce, vrrp.Transition}) {
			t.Fatalf("leaving fault: %v", got)
		}
	})
	t.Run("fault cleared before start", func(t *testing.T) {
		m := mtMachine(t, mtConfig(100))
		m.SetFault(simEpoch, true)
		m.SetFault(simEpoch, false)
		if m.Start(simEpoch); m.State() != vrrp.Backup {
			t.Fatalf("state %v", m.State())
		}
	})
}

func TestShutdown(t *testing.T) {
	backup := func(t *testing.T) *vrrp.Machine {
		m := mtMachine(t, mtConfig(100))
		m.Start(simEpoch)
		return m
	}
	tests := []struct {
		name string
		make func(*testing.T) *vrrp.Machine
		want []vrrp.ActionKind
		from vrrp.State
	}{
		{"master resigns", func(t *testing.T) *vrrp.Machine { m, _ := mtMaster(t, mtConfig(100)); return m },
			[]vrrp.ActionKind{vrrp.SendAdvert, vrrp.RemoveAddresses, vrrp.Transition}, vrrp.Master},
		{"backup", backup, []vrrp.ActionKind{vrrp.Transition}, vrrp.Backup},
		{"fault", func(t *testing.T) *vrrp.Machine { m := backup(t); m.SetFault(simEpoch, true); return m },
			[]vrrp.ActionKind{vrrp.Transition}, vrrp.Fault},
		{"never started", func(t *testing.T) *vrrp.Machine { return mtMachine(t, mtConfig(100)) },
			[]vrrp.ActionKind{vrrp.Transition}, vrrp.Initialize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.make(t)
			now := simEpoch.Add(time.Hour)
			acts := m.Shutdown(now)
			if got := kinds(acts); !slices.Equal(got, tt.want) {
				t.Fatalf("actions %v, want %v", got, tt.want)
			}
			if acts[0].Kind == vrrp.SendAdvert && acts[0].Priority != 0 {
				t.Errorf("resign advert priority %d", acts[0].Priority)
			}
			last := acts[len(acts)-1]
			if last.From != tt.from || last.To != vrrp.Stopped || m.State() != vrrp.Stopped || !m.Deadline().IsZero() {
				t.Errorf("transition %v, state %v, deadline %v", last, m.State(), m.Deadline())
			}
			if !m.Status().LastTransition.Equal(now) {
				t.Errorf("LastTransition %v", m.Status().LastTransition)
			}
			if m.Shutdown(now) != nil || m.Start(now) != nil || m.SetFault(now, true) != nil || m.Timer(now.Add(time.Hour)) != nil {
				t.Errorf("a stopped machine acted")
			}
		})
	}
}

func TestActionString(t *testing.T) {
	tests := []struct {
		a    vrrp.Action
		want string
	}{
		{vrrp.Action{Kind: vrrp.SendAdvert, Priority: 100, Interval: time.Second}, "SendAdvert priority=100 interval=1s"},
		{vrrp.Action{Kind: vrrp.AddAddresses}, "AddAddresses"},
		{vrrp.Action{Kind: vrrp.Transition, From: vrrp.Backup, To: vrrp.Master, Reason: "x"}, "Transition BACKUP->MASTER (x)"},
		{vrrp.Action{Kind: vrrp.ActionKind(99)}, "ActionKind(99)"},
	}
	for _, tt := range tests {
		if got := tt.a.String(); got != tt.want {
			t.Errorf("%q, want %q", got, tt.want)
		}
	}
	if !strings.Contains(vrrp.Action{Kind: vrrp.LowerPriorityHeard, Peer: mtLow, Priority: 5}.String(), "192.0.2.5") {
		t.Error("LowerPriorityHeard omits the peer")
	}
}

func TestConfigIsCopied(t *testing.T) {
	c := mtConfig(100)
	m := mtMachine(t, c)
	c.Addresses[0] = netip.MustParseAddr("192.0.2.200")
	got := m.Config()
	if got.Addresses[0] != mtVIP {
		t.Fatal("the machine shares the caller's address slice")
	}
	got.Addresses[0] = netip.MustParseAddr("192.0.2.201")
	if m.Config().Addresses[0] != mtVIP {
		t.Fatal("Config returns the machine's own slice")
	}
}

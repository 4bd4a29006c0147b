package vrrp_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/vrrp"
)

// FuzzMachine feeds a machine an arbitrary sequence of events and checks
// the invariants a daemon relies on: addresses are added and removed in
// pairs and held exactly while master, the deadline never lies in the past
// (and lies ahead after Timer), a timer runs exactly in Backup and Master,
// and the effective priority stays in range.
func FuzzMachine(f *testing.F) {
	f.Add(byte(100), byte(0), []byte{0, 1, 1, 2, 200, 3, 0, 4, 1, 4, 0, 5})
	f.Add(byte(255), byte(1), []byte{2, 100, 2, 0, 6, 0, 1, 0})
	f.Add(byte(1), byte(2), []byte{0, 7, 30, 1, 3, 250, 2, 254, 1, 1})
	f.Add(byte(212), byte(61), []byte("007x"))
	f.Add(byte(1), byte(2), []byte("0\x01C\xfa12"))
	f.Add(byte(100), byte(64), []byte{0, 200, 8, 0, 9, 0, 11, 7, 10, 0, 0, 90, 11, 3})
	f.Fuzz(func(t *testing.T, prio, flags byte, ops []byte) {
		cfg := vrrp.DefaultConfig()
		cfg.VRID = 7
		cfg.Priority = prio
		cfg.PrimaryIP = netip.MustParseAddr("192.0.2.10")
		cfg.Addresses = []netip.Addr{netip.MustParseAddr("192.0.2.100")}
		if flags&1 != 0 {
			cfg.Version, cfg.Interval = 3, 100*time.Millisecond
		}
		if flags&2 != 0 {
			cfg.InitialState = vrrp.Master
		}
		cfg.NoPreempt = flags&4 != 0
		if flags&8 != 0 {
			cfg.PreemptDelay = 2 * time.Second
		}
		cfg.LowerPriorityNoAdvert = flags&16 != 0
		cfg.HigherPrioritySendAdvert = flags&32 != 0
		m, err := vrrp.NewMachine(cfg)
		if err != nil {
			if prio == 0 {
				return
			}
			t.Fatal(err)
		}
		cfg = m.Config()
		now := simEpoch
		if flags&64 != 0 {
			m.DelayStart(now.Add(3 * time.Second))
		}
		m.Start(now)
		holding := m.State() == vrrp.Master
		peers := []netip.Addr{netip.MustParseAddr("192.0.2.5"), netip.MustParseAddr("192.0.2.20"), cfg.PrimaryIP}
		for i := 0; i+1 < len(ops) && i < 400; i += 2 {
			op, arg := ops[i]%12, ops[i+1]
			var acts []vrrp.Action
			timerRan := false
			switch op {
			case 0: // time passes, then the timer if due
				now = now.Add(time.Duration(arg) * 50 * time.Millisecond)
				if d := m.Deadline(); !d.IsZero() && !now.Before(d) {
					now = d
					acts = m.Timer(now)
					timerRan = true
				}
			case 1, 2: // an advert
				iv := cfg.Interval
				if arg&0x80 != 0 {
					iv = 2 * time.Second
				}
				acts = m.Receive(now, peers[int(arg)%len(peers)], &vrrp.Advert{
					Version: cfg.Version, VRID: cfg.VRID, Priority: arg * byte(op), Interval: iv,
				})
			case 3:
				acts = m.SetPriority(now, int(arg)*2-128)
			case 4, 5:
				acts = m.SetFault(now, op == 4)
			case 6:
				if arg < 8 {
					acts = m.Shutdown(now)
				}
			case 7: // time passes, but not past the deadline: the daemon
				// would have called Timer
				now = now.Add(time.Duration(arg) * time.Millisecond)
				if d := m.Deadline(); !d.IsZero() && now.After(d) {
					now = d
				}
			case 8: // a sync group holds the backup back
				m.Hold(now)
			case 9:
				acts = m.ForceMaster(now, "fuzz")
			case 10:
				acts = m.ForceBackup(now, "fuzz")
			case 11: // a reload with another priority and interval
				c := cfg
				if c.Priority != vrrp.PriorityOwner {
					c.Priority = 1 + arg%254
				}
				if arg&1 != 0 && c.Version == 2 {
					c.Interval = 2 * time.Second
				}
				var err error
				if acts, err = m.Reconfigure(now, c); err != nil {
					t.Fatalf("op %d: Reconfigure: %v", i, err)
				}
			}
			for _, a := range acts {
				switch a.Kind {
				case vrrp.AddAddresses:
					if holding {
						t.Fatalf("op %d: addresses added twice", i)
					}
					holding = true
				case vrrp.RemoveAddresses:
					if !holding {
						t.Fatalf("op %d: addresses removed without being held", i)
					}
					holding = false
				case vrrp.Transition:
					if a.From == a.To {
						t.Fatalf("op %d: transition to the same state %v", i, a.To)
					}
				}
			}
			st := m.Status()
			if holding != (st.State == vrrp.Master) {
				t.Fatalf("op %d: state %v, holding addresses %v", i, st.State, holding)
			}
			running := st.State == vrrp.Backup || st.State == vrrp.Master
			if running == st.Deadline.IsZero() {
				t.Fatalf("op %d: state %v with deadline %v", i, st.State, st.Deadline)
			}
			if running && st.Deadline.Before(now) || timerRan && running && !st.Deadline.After(now) {
				t.Fatalf("op %d: deadline %v, now %v", i, st.Deadline.Sub(simEpoch), now.Sub(simEpoch))
			}
			if cfg.Priority == vrrp.PriorityOwner {
				if st.Priority != vrrp.PriorityOwner {
					t.Fatalf("owner priority moved to %d", st.Priority)
				}
			} else if st.Priority < 1 || st.Priority > 254 {
				t.Fatalf("priority %d out of range", st.Priority)
			}
		}
	})
}

package main

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/amqpha/amqpha/vipd/vip"
)

// sender sends announcements for addresses on one interface; the real one
// is a *vip.Announcer.
type sender interface {
	Announce(addrs []netip.Addr) (int, error)
	Close() error
}

var _ sender = (*vip.Announcer)(nil)

// announcer tells the segment where the virtual addresses are, apart from
// the VRRP loop: on becoming master, GARPRepeat announcements at once and
// GARPRepeat more after GARPDelay; then, with GARPRefresh set,
// GARPRefreshRepeat every GARPRefresh while master. With GARPInterval
// (GNAInterval) set, gratuitous ARPs (unsolicited NAs) leave each
// interface one at a time, that far apart, across all instances, as
// keepalived paces them. start, resume and stop never block.
type announcer struct {
	spec instanceSpec
	met  *instanceMetrics
	log  *slog.Logger
	// byDev holds one sender per device the VIPs live on.
	byDev map[string]sender
	addrs map[string][]netip.Addr
	pace  *pacers

	cmd  chan annCmd
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

type annCmd int

const (
	annStop   annCmd = iota // end the sequence under way
	annStart                // a takeover's sequence
	annResume               // the periodic refresh only (a reloaded master)
)

func newAnnouncer(spec instanceSpec, met *instanceMetrics, log *slog.Logger) (*announcer, error) {
	return newAnnouncerWith(spec, met, log, func(dev string) (sender, error) { return vip.NewAnnouncer(dev) }, defaultPacers)
}

func newAnnouncerWith(spec instanceSpec, met *instanceMetrics, log *slog.Logger, open func(dev string) (sender, error), pace *pacers) (*announcer, error) {
	a := &announcer{
		spec: spec, met: met, log: log, pace: pace,
		byDev: map[string]sender{}, addrs: map[string][]netip.Addr{},
		cmd:  make(chan annCmd, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	for _, v := range spec.held() {
		dev := v.Dev
		if dev == "" {
			dev = spec.Interface
		}
		if a.byDev[dev] == nil {
			x, err := open(dev)
			if err != nil {
				a.closeSockets()
				return nil, err
			}
			a.byDev[dev] = x
		}
		a.addrs[dev] = append(a.addrs[dev], v.Prefix.Addr())
	}
	go a.run()
	return a, nil
}

// start begins a sequence (restarting one under way).
func (a *announcer) start() { a.send(annStart) }

// resume schedules the periodic refresh only, if there is one.
func (a *announcer) resume() { a.send(annResume) }

// stop ends the sequence under way, if any.
func (a *announcer) stop() { a.send(annStop) }

func (a *announcer) send(v annCmd) {
	// Latest command wins: replace one not yet taken.
	for {
		select {
		case a.cmd <- v:
			return
		default:
		}
		select {
		case <-a.cmd:
		default:
		}
	}
}

func (a *announcer) run() {
	defer close(a.done)
	var (
		timer   = time.NewTimer(time.Hour)
		pending int // rounds left: 1 = the delayed round, then refreshes
		next    *annCmd
	)
	timer.Stop()
	defer timer.Stop()
	for {
		var c annCmd
		if next != nil {
			c, next = *next, nil
		} else {
			select {
			case <-a.quit:
				return
			case c = <-a.cmd:
			case <-timer.C:
				n := a.spec.GARPRepeat
				if pending == 2 {
					n = max(a.spec.GARPRefreshRepeat, 1)
				}
				var more bool
				if next, more = a.round(n); !more {
					return
				}
				if next == nil {
					pending = a.schedule(timer, 0)
				}
				continue
			}
		}
		timer.Stop()
		pending = 0
		switch c {
		case annStart:
			var more bool
			if next, more = a.round(a.spec.GARPRepeat); !more {
				return
			}
			if next == nil {
				pending = a.schedule(timer, a.spec.GARPDelay)
			}
		case annResume:
			pending = a.schedule(timer, 0)
		}
	}
}

// schedule sets the timer for the next round: the delayed round after
// delay (when not 0), else the next refresh; it returns which (1, 2) or 0
// for none.
func (a *announcer) schedule(timer *time.Timer, delay time.Duration) int {
	switch {
	case delay > 0:
		timer.Reset(delay)
		return 1
	case a.spec.GARPRefresh > 0:
		timer.Reset(a.spec.GARPRefresh)
		return 2
	}
	return 0
}

// round sends n announcements of every address. Paced, it waits between
// frames; a command that arrives meanwhile ends the round and is returned
// (next), and more is false when the announcer is closing.
func (a *announcer) round(n int) (next *annCmd, more bool) {
	n = max(n, 1)
	for k := 0; k < n; k++ {
		for dev, x := range a.byDev {
			for _, addr := range a.addrs[dev] {
				interval := a.spec.GARPInterval
				if addr.Is6() {
					interval = a.spec.GNAInterval
				}
				if at := a.pace.reserve(dev, addr.Is6(), interval, time.Now()); interval > 0 {
					if c, ok, stop := a.sleepUntil(at); stop {
						return nil, false
					} else if ok {
						return &c, true
					}
				}
				sent, err := x.Announce([]netip.Addr{addr})
				a.pace.sent(dev, addr.Is6(), interval, time.Now())
				a.met.garps.Add(uint64(sent))
				if err != nil {
					a.met.garpErrors.Add(1)
					a.log.Warn("gratuitous ARP / NA failed", "dev", dev, "err", err)
				}
			}
		}
	}
	return nil, true
}

// sleepUntil waits until at; a command (ok) or close (stop) cuts it short.
func (a *announcer) sleepUntil(at time.Time) (c annCmd, ok, stop bool) {
	d := time.Until(at)
	if d <= 0 {
		return 0, false, false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return 0, false, false
	case c = <-a.cmd:
		return c, true, false
	case <-a.quit:
		return 0, false, true
	}
}

// close stops the goroutine and closes the sockets. Safe twice.
func (a *announcer) close() {
	a.once.Do(func() {
		close(a.quit)
		<-a.done
		a.closeSockets()
	})
}

func (a *announcer) closeSockets() {
	for _, x := range a.byDev {
		x.Close()
	}
}

// pacers space gratuitous ARPs and unsolicited NAs on each interface, for
// every instance of the process at once (vrrp_garp_interval,
// vrrp_gna_interval are per interface in keepalived). The lock guards the
// schedule only; callers sleep outside it.
type pacers struct {
	mu   sync.Mutex
	next map[string]time.Time // by device and family: when the next frame may leave
}

var defaultPacers = &pacers{next: map[string]time.Time{}}

// reserve books the next slot for one frame on dev (IPv6 if v6) with
// frames at least interval apart, and returns when that slot is (now or
// later). With interval 0 nothing is booked and it returns now.
func (p *pacers) reserve(dev string, v6 bool, interval time.Duration, now time.Time) time.Time {
	if interval <= 0 {
		return now
	}
	key := pacerKey(dev, v6)
	p.mu.Lock()
	defer p.mu.Unlock()
	at := now
	if n := p.next[key]; n.After(at) {
		at = n
	}
	p.next[key] = at.Add(interval)
	return at
}

// sent records that a frame left dev at at: the next may leave interval
// after that, as keepalived counts it (from the send, not the slot).
func (p *pacers) sent(dev string, v6 bool, interval time.Duration, at time.Time) {
	if interval <= 0 {
		return
	}
	key := pacerKey(dev, v6)
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := at.Add(interval); n.After(p.next[key]) {
		p.next[key] = n
	}
}

func pacerKey(dev string, v6 bool) string {
	if v6 {
		return dev + "/6"
	}
	return dev + "/4"
}

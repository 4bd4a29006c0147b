package main

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/amqpha/amqpha/vipd/vip"
)

// announcer tells the segment where the virtual addresses are, apart from
// the VRRP loop: on becoming master, GARPRepeat announcements at once and
// GARPRepeat more after GARPDelay; then, with GARPRefresh set,
// GARPRefreshRepeat every GARPRefresh while master. start and stop never
// block.
type announcer struct {
	spec instanceSpec
	met  *instanceMetrics
	log  *slog.Logger
	// byDev holds one announcer per device the VIPs live on.
	byDev map[string]*vip.Announcer
	addrs map[string][]netip.Addr

	cmd  chan bool // true: start a sequence; false: stop it
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

func newAnnouncer(spec instanceSpec, met *instanceMetrics, log *slog.Logger) (*announcer, error) {
	a := &announcer{
		spec: spec, met: met, log: log,
		byDev: map[string]*vip.Announcer{}, addrs: map[string][]netip.Addr{},
		cmd:  make(chan bool, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	for _, v := range spec.held() {
		dev := v.Dev
		if dev == "" {
			dev = spec.Interface
		}
		if a.byDev[dev] == nil {
			x, err := vip.NewAnnouncer(dev)
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
func (a *announcer) start() { a.send(true) }

// stop ends the sequence under way, if any.
func (a *announcer) stop() { a.send(false) }

func (a *announcer) send(v bool) {
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
	)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-a.quit:
			return
		case start := <-a.cmd:
			timer.Stop()
			pending = 0
			if !start {
				continue
			}
			a.round(a.spec.GARPRepeat)
			if a.spec.GARPDelay > 0 {
				pending = 1
				timer.Reset(a.spec.GARPDelay)
			} else if a.spec.GARPRefresh > 0 {
				pending = 2
				timer.Reset(a.spec.GARPRefresh)
			}
		case <-timer.C:
			switch pending {
			case 1:
				a.round(a.spec.GARPRepeat)
			case 2:
				a.round(max(a.spec.GARPRefreshRepeat, 1))
			}
			if a.spec.GARPRefresh > 0 {
				pending = 2
				timer.Reset(a.spec.GARPRefresh)
			} else {
				pending = 0
			}
		}
	}
}

func (a *announcer) round(n int) {
	n = max(n, 1)
	for k := 0; k < n; k++ {
		for dev, x := range a.byDev {
			sent, err := x.Announce(a.addrs[dev])
			a.met.garps.Add(uint64(sent))
			if err != nil {
				a.met.garpErrors.Add(1)
				a.log.Warn("gratuitous ARP / NA failed", "dev", dev, "err", err)
			}
		}
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

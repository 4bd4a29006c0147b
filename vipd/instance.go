package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"sync"
	"syscall"
	"time"

	"github.com/amqpha/amqpha/vipd/vip"
	"github.com/amqpha/amqpha/vipd/vrrp"
)

// instance is one vrrp_instance: a state machine, its socket, its
// addresses. A runner's goroutine owns it (machine, status, actions); a
// reader goroutine feeds it packets; the announcer and the notifier run
// apart so that neither ARP frames nor scripts ever delay an
// advertisement. An instance's spec never changes: a reload that keeps
// the instance's state hands its machine to a new instance made from the
// new spec (prepareInstance, runner.swap).
type instance struct {
	spec instanceSpec
	log  *slog.Logger
	met  *instanceMetrics

	m      *vrrp.Machine
	io     *instanceIO
	links  map[string]*vip.Link // by device name
	ann    *announcer
	notify *notifier

	mu     sync.Mutex
	status instanceStatus
	warned map[string]bool // peers whose address list differs, logged once
	// linkDown: the last advert could not leave (the interface is down);
	// the runner's goroutine only.
	linkDown bool
	// quietFault: in FAULT since start only because tracked scripts have
	// not reported yet; keepalived runs no notify_fault for that, but does
	// when the first result is a failure. The runner's goroutine only.
	quietFault bool
}

// instanceIO is an instance's socket and the goroutine reading it. A
// reload that does not change where adverts go keeps it.
type instanceIO struct {
	cfg   vrrp.TransportConfig
	tr    *vrrp.Transport
	quit  chan struct{}
	rdone chan struct{}
	once  sync.Once
}

// taggedPacket is a packet and the socket it came from.
type taggedPacket struct {
	io *instanceIO
	p  vrrp.Packet
}

// read feeds received packets to out until the socket closes.
func (x *instanceIO) read(out chan<- taggedPacket, log *slog.Logger) {
	defer close(x.rdone)
	buf := make([]byte, 1500)
	for {
		p, err := x.tr.Recv(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.Debug("receive error", "err", err)
			continue
		}
		p.Data = append([]byte(nil), p.Data...)
		select {
		case out <- taggedPacket{io: x, p: p}:
		case <-x.quit:
			return
		}
	}
}

// close closes the socket and waits for its reader, if one started.
// Safe twice.
func (x *instanceIO) close(started bool) {
	x.once.Do(func() {
		close(x.quit)
		x.tr.Close()
		if started {
			<-x.rdone
		}
	})
}

// prepareInstance opens what spec needs: its interfaces, its socket (old's
// when old is given and adverts go to the same place), its announcer. A
// fresh instance (old nil) removes addresses of ours left by an earlier
// run and gets a new machine; one replacing old on a reload gets old's
// machine when the runner swaps them in.
func prepareInstance(spec instanceSpec, old *instance, notify *notifier, log *slog.Logger) (*instance, error) {
	log = log.With("instance", spec.Name)
	i := &instance{
		spec:   spec,
		log:    log,
		met:    newInstanceMetrics(),
		links:  map[string]*vip.Link{},
		notify: notify,
		warned: map[string]bool{},
	}
	if old != nil {
		i.met = old.met
	}
	if err := i.open(old); err != nil {
		i.closeIO(old)
		return nil, err
	}
	i.status = instanceStatus{
		Name: spec.Name, State: vrrp.Initialize.String(), Interface: spec.Interface,
		VRID: int(spec.VRID), Version: spec.Version, BasePriority: int(spec.Priority),
		Priority: int(spec.Priority), Since: time.Now(),
	}
	for _, v := range spec.VIPs {
		i.status.VIPs = append(i.status.VIPs, v.Prefix.String())
	}
	for _, v := range spec.Excluded {
		i.status.Excluded = append(i.status.Excluded, v.Prefix.String())
	}
	cfg := i.machineConfig()
	if old == nil {
		m, err := vrrp.NewMachine(cfg)
		if err != nil {
			i.closeIO(nil)
			return nil, fmt.Errorf("instance %s: %w", spec.Name, err)
		}
		i.m = m
	} else if err := cfg.Validate(); err != nil {
		i.closeIO(old)
		return nil, fmt.Errorf("instance %s: %w", spec.Name, err)
	}
	return i, nil
}

func (i *instance) machineConfig() vrrp.Config {
	s := &i.spec
	return vrrp.Config{
		VRID:         s.VRID,
		Version:      s.Version,
		Priority:     s.Priority,
		Interval:     s.Interval,
		InitialState: s.InitialState,
		NoPreempt:    !s.Preempt,
		PreemptDelay: s.PreemptDelay,
		PrimaryIP:    i.io.tr.Source(),
		Addresses:    s.addresses(),

		LowerPriorityNoAdvert: s.LowerPriorityNoAdvert,
	}
}

// open finds the interfaces, removes addresses of ours left by an earlier
// run (fresh instances only), and opens the sockets.
func (i *instance) open(old *instance) error {
	devs := []string{i.spec.Interface}
	for _, v := range i.spec.held() {
		if v.Dev != "" {
			devs = append(devs, v.Dev)
		}
	}
	for _, d := range devs {
		if i.links[d] != nil {
			continue
		}
		l, err := vip.OpenLink(d)
		if err != nil {
			return fmt.Errorf("instance %s: %w", i.spec.Name, err)
		}
		i.links[d] = l
	}
	if old == nil {
		// A VIP still present was left by a vipd or keepalived that died
		// without cleaning up: holding it as a backup would answer for it.
		for _, v := range i.spec.held() {
			l := i.linkFor(v)
			if has, _ := l.Has(v.Prefix.Addr()); has {
				i.log.Warn("removing a stale virtual address left from an earlier run", "address", v.Prefix, "dev", l.Name())
				if err := l.Remove(v.Prefix); err != nil {
					return err
				}
			}
		}
	}
	src, err := i.sourceAddress()
	if err != nil {
		return err
	}
	tc := vrrp.TransportConfig{Interface: i.spec.Interface, Source: src, Peers: i.spec.peerAddrs(), Group: i.spec.Group}
	if old != nil && reflect.DeepEqual(old.io.cfg, tc) {
		i.io = old.io
	} else {
		tr, err := vrrp.Listen(tc)
		if err != nil {
			return fmt.Errorf("instance %s: %w", i.spec.Name, err)
		}
		i.io = &instanceIO{cfg: tc, tr: tr, quit: make(chan struct{}), rdone: make(chan struct{})}
	}
	ann, err := newAnnouncer(i.spec, i.met, i.log)
	if err != nil {
		return fmt.Errorf("instance %s: %w", i.spec.Name, err)
	}
	i.ann = ann
	return nil
}

func (i *instance) linkFor(v vipSpec) *vip.Link {
	if v.Dev != "" {
		return i.links[v.Dev]
	}
	return i.links[i.spec.Interface]
}

// sourceAddress is unicast_src_ip, or the interface's first address of the
// VIPs' family (its link-local address for IPv6).
func (i *instance) sourceAddress() (netip.Addr, error) {
	if i.spec.Source.IsValid() {
		return i.spec.Source, nil
	}
	v6 := len(i.spec.VIPs) > 0 && i.spec.VIPs[0].Prefix.Addr().Is6()
	addrs, err := i.links[i.spec.Interface].Addrs(v6)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, p := range addrs {
		a := p.Addr()
		if v6 && !a.IsLinkLocalUnicast() {
			continue
		}
		return a, nil
	}
	family := "IPv4"
	if v6 {
		family = "IPv6 link-local"
	}
	return netip.Addr{}, fmt.Errorf("instance %s: interface %s has no %s address to send adverts from", i.spec.Name, i.spec.Interface, family)
}

// closeIO closes what prepareInstance opened for an instance that never
// ran: the announcer, and the socket unless it is old's.
func (i *instance) closeIO(old *instance) {
	if i.io != nil && (old == nil || i.io != old.io) {
		i.io.close(false)
	}
	if i.ann != nil {
		i.ann.close()
	}
}

// refreshStatus copies what the status endpoint shows from the machine,
// which only the runner's goroutine may touch.
func (i *instance) refreshStatus() {
	ms := i.m.Status()
	i.mu.Lock()
	defer i.mu.Unlock()
	i.status.Priority = int(ms.Priority)
	i.status.Master = ""
	if ms.State == vrrp.Master {
		i.status.Master = i.io.tr.Source().String()
	} else if ms.Master.IsValid() {
		i.status.Master = ms.Master.String()
	}
}

// admit checks what the IP layer says about a packet against the
// instance, as keepalived does, before the packet is parsed. A multicast
// instance takes only packets sent to its group with TTL (hop limit) 255
// (RFC 5798 §7.1): one sent to the host's unicast address is not for it,
// whoever sent it. A unicast instance takes no multicast; with
// CheckUnicastSrc, only packets from its peers, within each peer's TTL
// range. The TTL is unchecked when the kernel did not report it (-1).
func (s *instanceSpec) admit(p vrrp.Packet) (vrrp.DropReason, bool) {
	if len(s.Peers) == 0 {
		switch {
		case p.Dst != s.Group:
			return vrrp.DropDestination, false
		case p.TTL != -1 && p.TTL != 255:
			return vrrp.DropTTL, false
		}
		return 0, true
	}
	if p.Dst.IsMulticast() {
		return vrrp.DropDestination, false
	}
	if !s.CheckUnicastSrc {
		return 0, true
	}
	for _, peer := range s.Peers {
		if peer.Addr != p.Src {
			continue
		}
		if p.TTL != -1 && (p.TTL < peer.MinTTL || p.TTL > peer.MaxTTL) {
			return vrrp.DropTTL, false
		}
		return 0, true
	}
	return vrrp.DropSource, false
}

func (i *instance) receive(p vrrp.Packet) {
	s := &i.spec
	if reason, ok := s.admit(p); !ok {
		i.met.drop(reason.String())
		i.log.Debug("packet dropped", "from", p.Src, "to", p.Dst, "ttl", p.TTL, "reason", reason.String())
		return
	}
	a, mode, err := vrrp.Parse(p.Data, p.Src, p.Dst)
	if err != nil {
		var pe *vrrp.ParseError
		label := "malformed"
		if errors.As(err, &pe) {
			label = pe.Reason.String()
		}
		i.met.drop(label)
		i.log.Debug("packet dropped", "from", p.Src, "reason", label, "err", err)
		return
	}
	switch {
	case a.VRID != s.VRID:
		// Another router on this segment (or a VRID collision between
		// clusters): counted, so operators see it.
		i.met.drop(vrrp.DropVRID.String())
		return
	case a.Version != s.Version:
		i.met.drop(vrrp.DropVersion.String())
		return
	case s.Version == 2 && (a.AuthType != s.AuthType || (s.AuthType == vrrp.AuthPass && a.AuthData != s.AuthData)):
		i.met.drop(vrrp.DropAuth.String())
		return
	case s.Version == 2 && a.Interval != s.Interval:
		// keepalived drops these too: both sides must agree on advert_int.
		i.met.drop(vrrp.DropIntervalMismatch.String())
		return
	}
	if !sameAddrs(a.Addresses, s.addresses()) && !i.warned[p.Src.String()] {
		i.warned[p.Src.String()] = true
		i.log.Warn("peer advertises other virtual addresses", "peer", p.Src, "theirs", a.Addresses, "ours", s.addresses())
	}
	i.met.advertsReceived.Add(1)
	if s.Version == 3 && p.Src.Is4() {
		i.mu.Lock()
		i.status.PeerChecksum = mode.String()
		i.mu.Unlock()
	}
	i.apply(i.m.Receive(time.Now(), p.Src, a))
}

func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

// apply carries out the machine's actions in order.
func (i *instance) apply(actions []vrrp.Action) {
	for _, act := range actions {
		switch act.Kind {
		case vrrp.SendAdvert:
			i.sendAdvert(act.Priority)
		case vrrp.AddAddresses:
			for _, v := range i.spec.held() {
				if err := i.linkFor(v).Add(v.Prefix, vip.AddrOptions{Label: v.Label, Broadcast: v.Broadcast, Scope: v.Scope}); err != nil {
					i.met.addrErrors.Add(1)
					i.log.Error("cannot add virtual address", "address", v.Prefix, "err", err)
				}
			}
		case vrrp.RemoveAddresses:
			i.ann.stop()
			for _, v := range i.spec.held() {
				if err := i.linkFor(v).Remove(v.Prefix); err != nil {
					i.met.addrErrors.Add(1)
					i.log.Error("cannot remove virtual address", "address", v.Prefix, "err", err)
				}
			}
		case vrrp.Announce:
			i.ann.start()
		case vrrp.Transition:
			i.transition(act)
		case vrrp.DropAdvert:
			label := act.Drop.String()
			if act.Drop == 0 {
				label = "own_address"
			}
			i.met.drop(label)
			i.log.Debug("advert dropped", "from", act.Peer, "reason", act.Reason)
		case vrrp.LowerPriorityHeard:
			i.log.Info("another router advertises a lower priority as master; asserting", "peer", act.Peer, "priority", act.Priority)
		}
	}
}

func (i *instance) sendAdvert(prio uint8) {
	a := &vrrp.Advert{
		Version:   i.spec.Version,
		VRID:      i.spec.VRID,
		Priority:  prio,
		Interval:  i.spec.Interval,
		Addresses: i.spec.addresses(),
		AuthType:  i.spec.AuthType,
		AuthData:  i.spec.AuthData,
	}
	for _, dst := range i.io.tr.Destinations() {
		b, err := vrrp.Marshal(a, i.io.tr.Source(), dst, i.spec.Checksum)
		if err == nil {
			err = i.io.tr.Send(b, dst)
		}
		if err != nil {
			i.met.sendErrors.Add(1)
			switch {
			case !errors.Is(err, syscall.ENETUNREACH) && !errors.Is(err, syscall.ENETDOWN):
				i.log.Error("cannot send advertisement", "to", dst, "err", err)
			case !i.linkDown:
				// The interface is down: the instance goes to FAULT for
				// it, unless dont_track_primary keeps it running; said
				// once, not every advert interval (send_errors counts).
				i.linkDown = true
				i.log.Warn("cannot send advertisement; the interface is down", "to", dst, "err", err)
			}
			continue
		}
		if i.linkDown {
			i.linkDown = false
			i.log.Info("sending advertisements again", "to", dst)
		}
		i.met.advertsSent.Add(1)
	}
}

func (i *instance) transition(act vrrp.Action) {
	i.log.Info("state "+act.To.String(), "from", act.From.String(), "reason", act.Reason)
	i.met.transition(act.To)
	i.mu.Lock()
	i.status.State = act.To.String()
	i.status.Since = time.Now()
	prio := i.status.Priority
	i.mu.Unlock()
	if act.To == vrrp.Fault && i.quietFault {
		return
	}
	i.notify.enqueue(i, act.To, prio)
}

// Status is a snapshot for the status endpoint. Safe from any goroutine.
func (i *instance) Status() instanceStatus {
	i.mu.Lock()
	s := i.status
	s.VIPs = append([]string(nil), s.VIPs...)
	s.Excluded = append([]string(nil), s.Excluded...)
	i.mu.Unlock()
	s.Counters = i.met.counters()
	return s
}

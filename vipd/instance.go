package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/amqpha/amqpha/vipd/vip"
	"github.com/amqpha/amqpha/vipd/vrrp"
)

// instance runs one vrrp_instance: a state machine, its socket, its
// addresses. One goroutine (loop) owns the machine; a reader goroutine feeds
// it packets; the announcer and the notifier run apart so that neither ARP
// frames nor scripts ever delay an advertisement.
type instance struct {
	spec instanceSpec
	log  *slog.Logger
	met  *instanceMetrics

	m      *vrrp.Machine
	tr     *vrrp.Transport
	links  map[string]*vip.Link // by device name
	ann    *announcer
	notify *notifier
	track  *tracking

	in    chan vrrp.Packet
	kick  chan struct{} // tracked scripts or interfaces changed
	stop  chan bool     // true: resign (priority 0, remove addresses)
	done  chan struct{}
	rdone chan struct{}

	mu     sync.Mutex
	status instanceStatus
	warned map[string]bool // peers whose address list differs, logged once
	// quietFault: in FAULT since start only because tracked scripts have
	// not reported yet; keepalived runs no notify_fault for that, but does
	// when the first result is a failure. Only the loop touches it.
	quietFault bool
}

func startInstance(spec instanceSpec, track *tracking, notify *notifier, log *slog.Logger) (*instance, error) {
	log = log.With("instance", spec.Name)
	i := &instance{
		spec:   spec,
		log:    log,
		met:    newInstanceMetrics(),
		links:  map[string]*vip.Link{},
		notify: notify,
		track:  track,
		in:     make(chan vrrp.Packet, 16),
		kick:   make(chan struct{}, 1),
		stop:   make(chan bool, 1),
		done:   make(chan struct{}),
		rdone:  make(chan struct{}),
		warned: map[string]bool{},
	}
	if err := i.open(); err != nil {
		i.closeIO()
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
	m, err := vrrp.NewMachine(vrrp.Config{
		VRID:         spec.VRID,
		Version:      spec.Version,
		Priority:     spec.Priority,
		Interval:     spec.Interval,
		InitialState: spec.InitialState,
		NoPreempt:    !spec.Preempt,
		PreemptDelay: spec.PreemptDelay,
		PrimaryIP:    i.tr.Source(),
		Addresses:    spec.addresses(),

		LowerPriorityNoAdvert: spec.LowerPriorityNoAdvert,
	})
	if err != nil {
		i.closeIO()
		return nil, fmt.Errorf("instance %s: %w", spec.Name, err)
	}
	i.m = m
	track.subscribe(i.kick)
	go i.read()
	go i.loop()
	return i, nil
}

// open finds the interfaces, removes addresses of ours left by an earlier
// run, and opens the sockets.
func (i *instance) open() error {
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
	src, err := i.sourceAddress()
	if err != nil {
		return err
	}
	tr, err := vrrp.Listen(vrrp.TransportConfig{Interface: i.spec.Interface, Source: src, Peers: i.spec.peerAddrs(), Group: i.spec.Group})
	if err != nil {
		return fmt.Errorf("instance %s: %w", i.spec.Name, err)
	}
	i.tr = tr
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

func (i *instance) closeIO() {
	if i.tr != nil {
		i.tr.Close()
	}
	if i.ann != nil {
		i.ann.close()
	}
}

// read feeds received packets to the loop until the socket closes.
func (i *instance) read() {
	defer close(i.rdone)
	buf := make([]byte, 1500)
	for {
		p, err := i.tr.Recv(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			i.log.Debug("receive error", "err", err)
			continue
		}
		p.Data = append([]byte(nil), p.Data...)
		select {
		case i.in <- p:
		case <-i.done:
			return
		}
	}
}

// Stop ends the instance. With resign it sends a priority-0 advertisement
// first (if master) and removes the addresses; without, the addresses stay
// (a reload that restarts the instance takes them over again).
func (i *instance) Stop(resign bool) {
	select {
	case i.stop <- resign:
	default:
	}
	<-i.done
	i.tr.Close()
	<-i.rdone
	i.ann.close()
	i.track.unsubscribe(i.kick)
}

func (i *instance) loop() {
	defer close(i.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// What is tracked decides the state the instance starts in: a
	// weight-0 script without a result yet holds it in FAULT.
	i.retrack()
	i.apply(i.m.Start(time.Now()))
	for {
		if d := i.m.Deadline(); !d.IsZero() {
			timer.Reset(time.Until(d))
		} else {
			timer.Stop()
		}
		select {
		case p := <-i.in:
			i.receive(p)
		case <-timer.C:
			i.apply(i.m.Timer(time.Now()))
		case <-i.kick:
			i.retrack()
		case resign := <-i.stop:
			if resign {
				i.apply(i.m.Shutdown(time.Now()))
			}
			i.refreshStatus()
			return
		}
		i.refreshStatus()
	}
}

// refreshStatus copies what the status endpoint shows from the machine,
// which only the loop may touch.
func (i *instance) refreshStatus() {
	ms := i.m.Status()
	i.mu.Lock()
	defer i.mu.Unlock()
	i.status.Priority = int(ms.Priority)
	i.status.Master = ""
	if ms.State == vrrp.Master {
		i.status.Master = i.tr.Source().String()
	} else if ms.Master.IsValid() {
		i.status.Master = ms.Master.String()
	}
}

// retrack recomputes the effective priority and fault from the tracked
// scripts and interfaces.
func (i *instance) retrack() {
	prio, fault, waiting, why := i.track.evaluate(i.spec)
	now := time.Now()
	if i.m.State() == vrrp.Initialize {
		i.quietFault = fault && waiting
	} else if i.quietFault && fault && !waiting {
		// The first result was a failure: FAULT for a reason now.
		i.quietFault = false
		i.log.Warn("staying in FAULT", "reason", why)
		i.notify.enqueue(i, vrrp.Fault, int(i.m.Status().Priority))
	}
	if fault != (i.m.State() == vrrp.Fault) {
		if fault {
			i.log.Warn("entering FAULT", "reason", why)
		} else {
			i.quietFault = false
		}
		i.apply(i.m.SetFault(now, fault))
	}
	i.apply(i.m.SetPriority(now, prio))
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
				if err := i.linkFor(v).Add(v.Prefix, v.Label); err != nil {
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
	for _, dst := range i.tr.Destinations() {
		b, err := vrrp.Marshal(a, i.tr.Source(), dst, i.spec.Checksum)
		if err == nil {
			err = i.tr.Send(b, dst)
		}
		if err != nil {
			i.met.sendErrors.Add(1)
			i.log.Error("cannot send advertisement", "to", dst, "err", err)
			continue
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

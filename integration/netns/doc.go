// Package netns builds throwaway Ethernet segments out of Linux network
// namespaces for vipd's VRRP, IPVS and demo tests, and runs real keepalived
// on them as a VRRP peer.
//
// # Segments and hosts
//
// [New] creates a [Segment]: a "switch" namespace holding a Linux bridge
// ([Bridge]) without STP or multicast snooping. [Segment.Host] adds a
// [Host]: a namespace of its own, joined to the bridge by a veth pair whose
// host end is called [Iface] ("eth0"), so that configurations can say
// `interface eth0` as the seeds do. The veth pair is created in the switch
// namespace with its peer born in the host's; nothing ever appears in the
// caller's own namespace. Hosts get the IPv4 and IPv6 addresses they are
// given besides their IPv6 link-local one, with duplicate address detection
// off, so every address works at once.
//
// Namespaces are named [Prefix] + the test binary's pid + a random suffix +
// the host's name, e.g. "aqh-4711-3fa9c2-master". Everything is removed in
// t.Cleanup, also when the test fails or panics: processes left inside are
// killed by pid, then the namespaces are deleted, which takes their
// interfaces with them. When a test binary dies without its cleanups (a go
// test timeout, SIGKILL), its direct children die with it (parent-death
// signal) and the next [New] removes its namespaces and whatever still runs
// in them ([Sweep]).
//
// # Working inside a host
//
// [Host.Exec] runs a command inside a host and [Host.Start] runs one in the
// background as a [Process], in its own process group, with its output
// captured for [Process.WaitOutput]. [Host.Do] runs Go code on an OS thread
// switched into the host's namespace; sockets made there stay in it, which is
// how [Host.DialTCP], [Host.ListenTCP] and [Host.Ping] work. [Host.Addrs] and
// [Host.HasAddr] show whether a VIP is configured, [Host.Neighbor] which
// hardware address a host would send to.
//
// # Faults
//
// [Host.Cut] takes a host's bridge port down: its eth0 loses the carrier
// and nothing passes, as with a pulled cable; [Host.Heal] plugs it back.
// [Host.Crash] models a box losing power: every process in it is frozen,
// the host is cut, then the processes are killed, so none of them can react
// (resign mastership, remove VIPs).
//
// # keepalived as a peer
//
// [StartKeepalived] runs keepalived (VRRP only, --vrrp: this kernel has no
// IPVS) on a configuration text inside a host, with its own pid files and
// its log captured, and returns once a VRRP instance has reported its first
// state. [Keepalived.WaitState] waits for "Entering MASTER STATE" and the
// like. [Keepalived.Kill] SIGKILLs keepalived's whole process group: the VIP
// stays configured on the host's eth0 because nobody removes it. Killing only
// the parent is a gentler fault: the VRRP child then resigns (priority 0)
// and removes its VIPs. [Keepalived.Stop] is a graceful SIGTERM.
//
// # Measuring a takeover
//
// [Host.ServeName] answers TCP connections with the host's name; a
// [Probe] ([Host.StartProbe]) connects to a VIP from a client host every
// 10 ms, overlapping probes so that a slow one does not hide a recovery, and
// records who answered. A test notes T0, makes the master die, and waits with
// [Probe.WaitAnswer] for the first answer from the backup; its arrival time
// minus T0 is the takeover time as a client sees it.
//
// A master whose keepalived was SIGKILLed still holds the VIP and still
// answers ARP for it; left on the segment, it competes with the new master
// for the client's neighbour entry. To model a dead box, cut it off the
// segment ([Host.Cut]) right after the kill, or use [Host.Crash].
//
// The client needs no ARP tuning: a gratuitous ARP from the new master
// replaces the hardware address of an existing neighbour entry for the VIP
// whatever net.ipv4.conf.*.arp_accept says (arp_accept only decides whether
// a gratuitous ARP may create an entry that does not exist). The entry then
// points at the new master at once.
//
// # Prerequisites
//
// Linux, root, the ip command of iproute2 and, for [StartKeepalived],
// keepalived. Where one is missing the helpers skip the test, except when
// the environment variable CI is "true": then they fail it ([Require],
// [RequireKeepalived]).
package netns

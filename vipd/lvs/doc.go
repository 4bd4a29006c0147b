// Package lvs programs the kernel's IPVS (Linux Virtual Server) from the
// virtual_server blocks of vipd's configuration, and keeps it that way.
//
// [FromConfig] turns a [github.com/amqpha/amqpha/vipd/config.Config] and
// the health of its real servers into the wanted [Table]: services
// ([Service], keyed by [ServiceKey]), each with its destinations
// ([Destination]). A [Reconciler] makes the kernel hold that table: each
// [Reconciler.Apply] reads the kernel through a [Kernel], compares, and
// adds, updates or deletes what differs, and reports what it did as
// [Changes]. [Netlink] is the Linux [Kernel] (github.com/moby/ipvs over
// generic netlink); package lvstest has an in-memory one for tests.
//
// Names carry over unchanged: lvs_sched (lb_algo) is the kernel's
// scheduler name ([Schedulers]: rr, wrr, lc, wlc, lblc, lblcr, dh, sh,
// sed, nq, fo, ovf, mh, twos); lvs_method (lb_kind) NAT, DR and TUN are
// [Masq], [Route] and [Tunnel]; persistence_timeout is
// [Service.Persistence] (whole seconds, with the kernel's persistent
// flag), persistence_granularity is [Service.Netmask]; a
// virtual_server_group is expanded into one service per address and per
// fwmark entry.
//
// # Ownership
//
// The kernel's table is shared: other tools (ipvsadm by hand, kube-proxy,
// another daemon) may keep services in it. A Reconciler touches only the
// services it owns: those in the table of the current Apply, and those
// that were in the table of an earlier Apply of this process and are
// still in the kernel. A service at another address (or protocol, port,
// fwmark or family) that it never wanted is never read past its key,
// changed or deleted, even by [Reconciler.Remove].
//
// Wanting a service that already exists adopts it: from then on it is
// owned like one vipd created, its settings are set and destinations vipd
// does not want are removed. Ownership lives in memory only: a service
// dropped from the configuration while vipd was not running is not known
// to the next vipd and stays in the kernel until removed by hand (ipvsadm
// -D) or wanted again. Call [Reconciler.Remove] on shutdown to leave no
// service behind.
//
// # Drift
//
// Apply compares the owned services with the wanted table, not with what
// it did last time, so it repairs whatever changed in between: a
// destination added by hand to an owned service is deleted, a weight or
// forwarding method changed by hand is restored, a service deleted by
// hand is added again with its destinations, a scheduler, persistence,
// netmask or flag changed by hand is set back. Such changes come with
// [Change].Drift set (the kernel differed from what the previous Apply
// left there), so they can be counted apart from configuration and health
// changes. An Apply of an unchanged table on an unchanged kernel does
// nothing: it reads the services and the destinations of the owned ones,
// and writes nothing.
//
// Comparisons use the kernel's own representation: persistence in whole
// seconds, an empty scheduler name as [DefaultScheduler], a full netmask
// as none, no protocol for fwmark services. Old kernels replace the
// forwarding method of a destination whose address is local to the
// director with [Local] (6.1 keeps the method given); a Local destination
// matches any wanted method, so it is not "repaired" forever.
//
// Order: owned services no longer wanted are deleted first; then, service
// by service, the service is added or updated, its destinations are
// updated and added, and unwanted destinations are deleted last, so a pool
// does not go empty on the way (the sorry server leaves after the real
// servers are back).
//
// # Health
//
// [FromConfig] asks a [HealthFunc] for each real server's [Status]. An
// [Up] real server is in its service with its configured weight, or with
// the weight of a MISC_CHECK misc_dynamic result ([WithWeight]). A [Down]
// one is removed from the service, or kept with weight 0 when its
// inhibit_on_failure is set, so that its established connections are not
// cut. A [Drain] one has weight 0. When no real server is up with a weight
// above 0 (keepalived's default quorum of 1 not met), the sorry_server is
// added with weight 1; it leaves once a real server is back. Health only
// shapes the wanted table: call FromConfig and Apply again whenever a
// checker's verdict changes.
//
// # Kernel
//
// [Netlink] maps a [Service] to the kernel's attributes: address family
// AF_INET or AF_INET6, protocol number, port, fwmark, scheduler name,
// flags with IP_VS_SVC_F_PERSISTENT (0x1) when persistent, the timeout in
// seconds, and the netmask (IPv4: the mask; IPv6: the prefix length, which
// the kernel requires to be 1..128 for every IPv6 service, so 128 is sent
// when there is none). A [Destination]'s [Forward] is the kernel's
// forwarding method value. Kernel errors come back wrapping [ErrExist],
// [ErrNotFound] or [ErrNoScheduler]. The library reads weights in 16 bits
// ([MaxWeight]) and cannot send a destination of another family than its
// service. Elsewhere than Linux, [NewNetlink] returns
// [errors.ErrUnsupported].
package lvs

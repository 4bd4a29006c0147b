// Package ipvs holds the test that runs vipd itself against the kernel's
// IPVS: a VRRP instance and virtual_server blocks in the seeds' shape (an
// AMQP port in NAT mode, a management port in DR mode with wrr weights, a
// persistent service), programmed by `vipd run -f` inside a qemu VM booted
// by package [github.com/amqpha/amqpha/integration/vm], because the kernel
// the tests run on has no ip_vs.
//
// # What is tested
//
// TestVipdIPVSInVM (build tag integration) builds vipd statically, ships
// it and ipvsadm into the VM and runs the guest-side tests there, which
// skip anywhere else. TestGuestVipd builds the network below, starts vipd
// on its configuration and checks, in order: the kernel's table holds the
// wanted services and real servers and the VIP is up; connections through
// the VIP spread over the real servers as rr and wrr say; a persistent
// service keeps one client on one real server; a real server whose
// listener goes away leaves its service (or keeps weight 0 with
// inhibit_on_failure) within its checks' schedule, and comes back; a real
// server and a weight changed by hand (ipvsadm) are repaired within the
// reconcile interval while a service vipd never wanted is left alone;
// `vipd status` shows the ipvs section; SIGTERM removes vipd's services
// and the VIP. TestGuestVipdScale logs how long vipd takes to program 100
// virtual servers with 10 real servers each, and to apply one changed
// weight after SIGHUP; it has no thresholds.
//
// # The network in the VM
//
// The director is the VM's root namespace, with ip_forward on. A bridge
// lan0 (10.30.0.1/24, the VRRP interface, where vipd puts the VIP
// 10.30.0.100) joins the client (10.30.0.2) and the real servers rsN
// (10.30.0.1N on their eth1); each real server also has a link of its own
// to the director (10.20.N.2 on eth0, the director 10.20.N.1). NAT
// services forward to 10.20.N.2; a policy rule in each real server sends
// what leaves from that address back through the director, which rewrites
// it. DR services forward to 10.30.0.1N on the LAN; `vipd realserver
// start` has put the VIP on the real server's lo with its ARP sysctls, so
// it answers the client straight over the LAN.
package ipvs

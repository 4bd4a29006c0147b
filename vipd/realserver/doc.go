// Package realserver prepares a RabbitMQ node to be a real server behind an
// IPVS director in DR (direct routing) mode, as the source documents'
// realserver.sh does, and undoes it exactly.
//
// In DR mode the director forwards a client's packet to the real server
// unchanged, still addressed to the virtual IP, and the real server answers
// the client directly. So the real server must accept packets for the VIP
// (the VIP on its loopback interface, as a /32 or /128) without ever
// answering ARP for it — otherwise it would steal the VIP from the director.
// For IPv4 that is four sysctls: net.ipv4.conf.{lo,all}.arp_ignore = 1 (answer
// ARP only for addresses on the receiving interface) and arp_announce = 2
// (never use the VIP as the source of ARP requests).
//
// # Undone exactly
//
// [Start] records what it changed — the sysctls' previous values and whether
// the address was there already — in a state directory (/run/vipd by
// default), and [Stop] puts back exactly that: values an operator had set
// survive a start/stop cycle, and the sysctls are restored only when the
// last VIP of the host is stopped.
package realserver

// Command vipd keeps a virtual IP address in front of a RabbitMQ cluster, for
// clients that are not written in Go: it speaks VRRP (versions 2 and 3) with
// other vipd or keepalived directors and holds the address while it is the
// master. It reads keepalived.conf's dialect.
//
// Usage:
//
//	vipd run -f /etc/vipd/keepalived.conf [-status 127.0.0.1:9650]
//	vipd check -f /etc/vipd/keepalived.conf      # validate: "OK" and warnings, or errors and exit 1
//	vipd check -f /etc/vipd/keepalived.conf -dump  # and print the configuration in effect as JSON
//	vipd status [-status 127.0.0.1:9650]         # ask the running daemon
//	vipd realserver --vip 10.0.0.100 start|stop|status   # on a DR real server
//
// Signals: SIGHUP reloads the configuration as keepalived does: an
// instance whose interface, VRID, address family, unicast source and
// multicast group did not change keeps its state whatever else changed (a
// master stays master and advertises its new priority and addresses at
// once; the election then runs as usual); SIGTERM and SIGINT resign
// mastership with a priority-0 advertisement, remove the virtual addresses,
// then remove the virtual servers, and exit.
//
// The members of a vrrp_sync_group run on one goroutine and change state
// together, as keepalived's do.
//
// vipd needs CAP_NET_ADMIN (addresses) and CAP_NET_RAW (VRRP and ARP
// sockets); see vipd.service.
package main

// Package vipd will hold vipd, a daemon for the director hosts in front of a
// RabbitMQ cluster, for clients not written in Go: a VRRP virtual IP that
// interoperates with keepalived, and IPVS virtual services with health
// checks of the RabbitMQ nodes, configured in keepalived.conf's dialect.
//
// Nothing of it is built yet; this file only reserves its place in the
// module.
package vipd

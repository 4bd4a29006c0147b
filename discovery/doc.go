// Package discovery tells amqpha where the cluster's nodes are: a static
// list, DNS A/AAAA and SRV records, or RabbitMQ's management API. The package
// is being built and has no API yet.
package discovery

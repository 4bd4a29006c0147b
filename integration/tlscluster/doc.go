// Package tlscluster holds the tests that need RabbitMQ's TLS listeners,
// all against one cluster started with cluster.Options{TLS: true}:
// amqpha over amqps:// with the server's certificate verified (and a
// wrong CA refused), SASL EXTERNAL with a client certificate, the node
// URI's parameters as the broker sees them, a failover between TLS nodes,
// and vipd's SSL_GET against the management API's TLS listener with the
// keepalived SSL block. Build with the integration tag.
package tlscluster

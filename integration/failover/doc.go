// Package failover holds the tests that hold amqpha to its contract against
// a real RabbitMQ cluster: nodes are killed, hung, stopped, cut off and
// drained under load, and every message whose Publish returned nil must be
// in the queue afterwards. Build with the integration tag.
package failover

// Package health holds the tests that hold vipd's health checks
// (package github.com/amqpha/amqpha/vipd/health) to account against a
// real RabbitMQ cluster: nodes are killed, hung and put into maintenance
// mode, and every kind of check must report its node down, within its
// schedule's bound, and up again after the node recovers. The tests log
// how long each check took to notice. Build with the integration tag.
package health

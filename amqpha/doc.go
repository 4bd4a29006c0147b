// Package amqpha keeps RabbitMQ producers and consumers working while the
// nodes of a cluster fail.
//
// It holds the list of the cluster's nodes, keeps its connections on live
// ones, notices a dead, hung or unreachable node and moves to another,
// declares the program's topology again on every new connection, registers
// its consumers again, and publishes persistent messages with publisher
// confirms so that a message whose Publish returned nil is never lost,
// whichever node dies.
//
// The client is being built; this package has no API yet. See the project's
// README for what exists today.
package amqpha

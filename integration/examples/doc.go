// Package examples runs the programs in examples/ against a real RabbitMQ
// cluster, as a newcomer would run them: each is built with go build, run as
// its own process with short settings, and judged by what it prints and how
// it exits — including a producer whose node is killed mid-run. Build with
// the integration tag.
package examples

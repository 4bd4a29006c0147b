// Package examples runs the programs in examples/ against a real RabbitMQ
// cluster, as a newcomer would run them: each is built with go build, run as
// its own process with short settings, and judged by what it prints and how
// it exits — including a producer whose node is killed mid-run. It also runs
// the vipd lab (examples/vipd/lab.sh, short mode), which builds its own
// cluster, directors and client in network namespaces, and checks that it
// leaves nothing behind. Build with the integration tag.
package examples

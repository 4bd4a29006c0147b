// Package health checks the real servers of vipd's virtual servers, as
// keepalived's checkers do, apart from the VRRP loop and never blocking it.
//
// # Checkers
//
// A [Checker] checks a real server once and returns a [Result]: OK, or
// not with an error saying why; OK results may also ask for a drain
// (weight 0, kept in the pool) or set a dynamic weight. The checkers of
// vipd's configuration:
//
//   - [TCP] (TCP_CHECK) opens and closes a TCP connection.
//   - [AMQP] (AMQP_CHECK, vipd's own) does a whole AMQP 0-9-1 handshake,
//     logging in to a vhost, and optionally declares a queue passively.
//   - [HTTP] (HTTP_GET, and SSL_GET with TLS set) fetches urls and checks
//     their status codes and MD5 digests; with credentials it reads
//     RabbitMQ's management health endpoints.
//   - [Misc] (MISC_CHECK) runs a program through package
//     [github.com/amqpha/amqpha/vipd/script]; with misc_dynamic its exit
//     status sets the weight.
//
// Every check is bounded by its connect_timeout (misc_timeout for
// MISC_CHECK), covering everything from the connect to the close.
// Passwords never appear in errors or logs.
//
// # Hung nodes
//
// A stopped (SIGSTOP) or otherwise hung RabbitMQ node still passes a
// TCP_CHECK: the kernel completes TCP handshakes for a listening socket
// whatever its process does. Only a check that waits for RabbitMQ itself
// to answer, [AMQP] or [HTTP], notices it, after its timeout.
//
// # Monitors
//
// A [Monitor] runs the [Check]s of one real server, each on its own
// goroutine: a check runs at once, then DelayLoop after the end of the
// previous one. A real server starts up. A failure while up is tried
// again Retry times, DelayBeforeRetry apart, before the check counts as
// failed and the real server goes down; one success brings it back up.
// The real server is down while any of its checks is, drained while any
// asks for it, up otherwise ([Status]). [Check.WorstDetection] gives the
// longest a failure takes to be reported.
//
// State changes reach the caller through [MonitorConfig].OnChange, called
// on the Monitor's own goroutine with the latest status, and
// [Monitor.Status] reads the current status at any time, without
// blocking; [Status.LVS] hands it to package
// [github.com/amqpha/amqpha/vipd/lvs]. [FromConfig] builds the checks of
// a real_server block.
//
// # Maintenance mode
//
// RabbitMQ 3.10's maintenance mode (rabbitmq-upgrade drain) suspends the
// node's client listeners, AMQP and management HTTP alike: to a director
// a drained node looks stopped (connection refused), so its checks fail
// and it goes down, to come back up after rabbitmq-upgrade revive. A
// checker that can tell maintenance apart returns Result.Drain, and the
// real server then keeps its place with weight 0.
package health

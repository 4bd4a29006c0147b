// Package script runs the external programs a vipd configuration names:
// vrrp_script checks, notify scripts and MISC_CHECK health checks.
//
// # No shell unless asked
//
// A script line such as `"/usr/local/bin/check.sh --port 5672"` is split into
// words (single and double quotes group words) and executed directly; no
// shell sees it, so no shell expansion can surprise anyone. A configuration
// that wants a shell says so: `"/bin/sh -c 'pidof haproxy'"`.
//
// # Hard timeouts
//
// Every run has a timeout. Each program runs in its own process group, and
// the whole group is killed when the timeout passes or the caller's context
// ends, so a script that forks and hangs cannot pile up children.
//
// # Script security
//
// [CheckSecure] is keepalived's enable_script_security: a script run as root
// must not be replaceable by anyone else, so the file and every directory
// above it must belong to root and be writable by no one else.
package script

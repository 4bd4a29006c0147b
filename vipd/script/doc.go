// Package script runs the external programs a vipd configuration names:
// vrrp_script checks, notify scripts and MISC_CHECK health checks.
//
// # A shell only where keepalived uses one
//
// A script line such as `"/usr/local/bin/check.sh --port 5672"` is split into
// words (single and double quotes group words) and executed directly; no
// shell sees it, so no shell expansion can surprise anyone. A configuration
// that wants a shell says so: `"/bin/sh -c 'pidof haproxy'"`. keepalived
// uses /bin/sh -c in two cases, and so does [Start]: a script that is a
// redirection only ([ShellOnly], e.g. "</dev/tcp/127.0.0.1/80"), and a
// program the kernel cannot execute (a script file without a #! line),
// with the words single-quoted ([ShellLine]).
//
// # Timeouts
//
// A run ends at its timeout ([DefaultTimeout] unless the Command says, or
// none with [NoTimeout]) or when the caller's context ends. Each program
// runs in its own process group, and the whole group is killed then, so a
// script that forks and hangs cannot pile up children.
//
// # Finding the program, and script security
//
// [Resolve] does what keepalived does to a script when it loads its
// configuration: a bare command name is looked up in PATH, the program
// must be executable by the script's user, and with enable_script_security
// a program run as root must pass [CheckSecure]: it must not be replaceable
// by anyone but root (the file and every directory above it belong to
// root, none writable by others or by a group other than root's, sticky
// directories such as /tmp aside).
package script

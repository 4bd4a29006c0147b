// Package cluster starts real RabbitMQ clusters on loopback for tests and
// demos, and breaks their nodes in the ways production breaks them.
//
// [Start] runs N nodes of Debian's rabbitmq-server (scripts/setup.sh installs
// it), each with its own node name, AMQP, distribution and management ports,
// data and log directories, all under one temporary directory, with the
// cluster's own Erlang cookie and its own epmd, so that two clusters on one
// machine never meet. Start returns once every node runs and the nodes see
// each other as one cluster.
//
// # Faults
//
// Every [Node] can be crashed ([Node.Kill], SIGKILL), stopped gracefully
// ([Node.Stop], [Node.Start], [Node.Restart]), hung ([Node.Pause],
// [Node.Resume]: SIGSTOP and SIGCONT), put into maintenance mode
// ([Node.Drain], [Node.Revive]), given a memory alarm that blocks publishers
// ([Node.SetAlarm], [Node.ClearAlarm]) and cut off the network from its
// clients' point of view ([Node.Cut], [Node.Heal], [Node.ResetConnections]).
//
// Cutting works through a TCP proxy per node: [Node.URI] points at the proxy,
// [Node.DirectURI] at the node itself. Programs under test should use URI.
//
// # Leader elections
//
// [Node.QuorumEvents] reads what the node's quorum queue members logged
// about leadership (a member entering the Raft leader state, a follower
// losing its leader), with the log's microsecond timestamps: when a
// queue got its new leader after a fault, measured without asking the
// broker anything.
//
// # Membership
//
// [Cluster.AddNode] grows a running cluster by a new, empty node that joins
// it as Start's nodes do, and [Cluster.RemoveNode] makes a node leave for
// good: it is stopped and forgotten by the others (rabbitmqctl
// forget_cluster_node). [Cluster.Nodes] lists the members of the moment;
// a removed node's [Node.Index] is free for the next AddNode.
//
// # Clients in other network namespaces
//
// Everything listens on 127.0.0.1 unless [Options.ExtraIP] names one more
// address of the host (a bridge's, say) on which the nodes accept AMQP too.
// RabbitMQ lets guest log in from loopback only, so such clients log in as a
// user made with [Cluster.AddUser].
//
// # TLS
//
// With [Options.TLS] every node also listens for AMQP over TLS
// ([Node.TLSURI]) and serves its management API over TLS
// ([Node.ManagementTLSURL]), with certificates made in Go when the cluster
// starts ([Cluster.TLS]): a CA, a server certificate per node for
// localhost and 127.0.0.1, and a client certificate with which the user
// [TLSClientName] logs in over SASL EXTERNAL.
//
// # Tear-down
//
// [Cluster.Close] kills every process the cluster started, removes its
// directory and frees its ports. If the owning process dies without calling
// Close (a test timeout, SIGKILL, Ctrl-C), a watchdog process started with
// the cluster notices within a second and does the same.
package cluster

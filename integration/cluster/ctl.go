package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// CtlError is a RabbitMQ CLI call that failed.
type CtlError struct {
	Tool     string
	Args     []string
	ExitCode int
	Output   string // what the tool printed, trimmed
	Err      error
}

func (e *CtlError) Error() string {
	return fmt.Sprintf("cluster: %s %s: exit %d: %v: %s", e.Tool, strings.Join(e.Args, " "), e.ExitCode, e.Err, e.Output)
}

func (e *CtlError) Unwrap() error { return e.Err }

// Ctl runs one of RabbitMQ's CLI tools (rabbitmqctl, rabbitmq-diagnostics,
// rabbitmq-queues, rabbitmq-upgrade, rabbitmq-plugins, rabbitmq-streams)
// against the node and returns its standard output. It works while the node
// is stopped too, for commands that expect that.
func (n *Node) Ctl(ctx context.Context, tool string, args ...string) ([]byte, error) {
	switch tool {
	case "rabbitmqctl", "rabbitmq-diagnostics", "rabbitmq-queues", "rabbitmq-upgrade", "rabbitmq-plugins", "rabbitmq-streams":
	default:
		return nil, fmt.Errorf("cluster: %q is not a RabbitMQ CLI tool", tool)
	}
	full := append([]string{"-n", n.name}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(n.c.opts.BinDir, tool), full...)
	cmd.Env = n.c.baseEnv()
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		out := strings.TrimSpace(stderr.String() + "\n" + stdout.String())
		if len(out) > 2000 {
			out = out[:2000] + "…"
		}
		return stdout.Bytes(), &CtlError{Tool: tool, Args: args, ExitCode: code, Output: out, Err: err}
	}
	return stdout.Bytes(), nil
}

// Status is part of what `rabbitmqctl cluster_status` reports, as one node
// sees the cluster.
type Status struct {
	RunningNodes []string          `json:"running_nodes"`
	DiskNodes    []string          `json:"disk_nodes"`
	Maintenance  map[string]string `json:"maintenance_status"`
	// Partitions maps a node to the nodes it lost contact with while both
	// ran (a network partition, or a node hung past net_ticktime).
	Partitions map[string][]string `json:"partitions"`
}

// Status asks the node how it sees the cluster.
func (n *Node) Status(ctx context.Context) (*Status, error) {
	out, err := n.Ctl(ctx, "rabbitmqctl", "cluster_status", "--formatter", "json")
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(out, &s); err != nil {
		return nil, fmt.Errorf("cluster: cluster_status of %v: %w", n, err)
	}
	return &s, nil
}

// RunningNodes lists the cluster members the node sees running.
func (n *Node) RunningNodes(ctx context.Context) ([]string, error) {
	s, err := n.Status(ctx)
	if err != nil {
		return nil, err
	}
	return s.RunningNodes, nil
}

// restartApp restarts RabbitMQ inside the node's VM (stop_app, start_app):
// how an operator heals a node that came back to a partitioned cluster.
func (n *Node) restartApp(ctx context.Context) error {
	n.c.log.Info("node restart app", "node", n.index)
	if _, err := n.Ctl(ctx, "rabbitmqctl", "stop_app"); err != nil {
		return err
	}
	_, err := n.Ctl(ctx, "rabbitmqctl", "start_app")
	return err
}

// UnderMaintenance reports whether the node says it is in maintenance mode.
func (n *Node) UnderMaintenance(ctx context.Context) (bool, error) {
	s, err := n.Status(ctx)
	if err != nil {
		return false, err
	}
	// The CLI colours this value on some versions; match the words.
	return strings.Contains(s.Maintenance[n.name], "marked for maintenance"), nil
}

// Drain puts the node into maintenance mode (rabbitmq-upgrade drain): it
// closes its client connections, stops accepting new ones and hands its
// queue leaderships to other nodes.
func (n *Node) Drain(ctx context.Context) error {
	if _, err := n.running(); err != nil {
		return err
	}
	n.c.log.Info("node drain", "node", n.index)
	_, err := n.Ctl(ctx, "rabbitmq-upgrade", "drain")
	return err
}

// Revive takes the node out of maintenance mode (rabbitmq-upgrade revive).
func (n *Node) Revive(ctx context.Context) error {
	if _, err := n.running(); err != nil {
		return err
	}
	n.c.log.Info("node revive", "node", n.index)
	_, err := n.Ctl(ctx, "rabbitmq-upgrade", "revive")
	return err
}

// defaultWatermark is RabbitMQ's default vm_memory_high_watermark.
const defaultWatermark = "0.4"

// SetAlarm raises a memory alarm on the node (high watermark 0) and waits
// until the node reports it. While any node has the alarm, RabbitMQ blocks
// every publishing connection in the cluster (connection.blocked).
func (n *Node) SetAlarm(ctx context.Context) error {
	return n.setWatermark(ctx, "0", true)
}

// ClearAlarm puts the node's memory watermark back to RabbitMQ's default
// and waits until its alarm is gone.
func (n *Node) ClearAlarm(ctx context.Context) error {
	return n.setWatermark(ctx, defaultWatermark, false)
}

func (n *Node) setWatermark(ctx context.Context, mark string, alarm bool) error {
	if _, err := n.running(); err != nil {
		return err
	}
	n.c.log.Info("node memory alarm", "node", n.index, "on", alarm)
	if _, err := n.Ctl(ctx, "rabbitmqctl", "set_vm_memory_high_watermark", mark); err != nil {
		return err
	}
	return poll(ctx, 100*time.Millisecond, func() (bool, error) {
		on, err := n.HasAlarm(ctx)
		return err == nil && on == alarm, err
	})
}

// HasAlarm reports whether the node has a resource alarm of its own in
// effect.
func (n *Node) HasAlarm(ctx context.Context) (bool, error) {
	out, err := n.Ctl(ctx, "rabbitmq-diagnostics", "alarms", "--formatter", "json")
	if err != nil {
		return false, err
	}
	return parseAlarms(out)
}

// parseAlarms reads `rabbitmq-diagnostics alarms --formatter json`, whose
// shape differs with and without alarms ({"alarms":[],…} when there are
// none, {"local":[…],"global":[…],…} when there are some).
func parseAlarms(out []byte) (bool, error) {
	var v struct {
		Alarms []json.RawMessage `json:"alarms"`
		Local  []json.RawMessage `json:"local"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return false, fmt.Errorf("cluster: alarms: %w", err)
	}
	return len(v.Local) > 0 || len(v.Alarms) > 0, nil
}

// QueueCounts is how many of a queue's messages the broker holds ready for
// delivery and how many it delivered that are not acknowledged yet. For a
// quorum queue RabbitMQ refreshes them on the queue's tick (every 5 s by
// default), so poll for a count rather than read it once.
type QueueCounts struct {
	Ready   int `json:"messages_ready"`
	Unacked int `json:"messages_unacknowledged"`
}

// QueueCounts asks the node for queue's message counts in the default
// vhost (rabbitmqctl list_queues).
func (n *Node) QueueCounts(ctx context.Context, queue string) (QueueCounts, error) {
	out, err := n.Ctl(ctx, "rabbitmqctl", "list_queues", "name", "messages_ready", "messages_unacknowledged", "--formatter", "json")
	if err != nil {
		return QueueCounts{}, err
	}
	return parseQueueCounts(out, queue)
}

// parseQueueCounts finds queue in `rabbitmqctl list_queues name
// messages_ready messages_unacknowledged --formatter json`.
func parseQueueCounts(out []byte, queue string) (QueueCounts, error) {
	var rows []struct {
		Name string `json:"name"`
		QueueCounts
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		return QueueCounts{}, fmt.Errorf("cluster: list_queues: %w", err)
	}
	for _, r := range rows {
		if r.Name == queue {
			return r.QueueCounts, nil
		}
	}
	return QueueCounts{}, fmt.Errorf("cluster: list_queues: no queue %q", queue)
}

// QuorumLeader asks the node which member leads the quorum queue now
// (rabbitmq-queues quorum_status, "Raft State"); "" when no member does,
// as right after every node restarted. Unlike the leader column of
// list_queues, this is not stale after a failover.
func (n *Node) QuorumLeader(ctx context.Context, queue string) (string, error) {
	out, err := n.Ctl(ctx, "rabbitmq-queues", "quorum_status", queue, "--formatter", "json")
	if err != nil {
		return "", err
	}
	return parseQuorumLeader(out)
}

// parseQuorumLeader reads `rabbitmq-queues quorum_status --formatter json`:
// one object per member.
func parseQuorumLeader(out []byte) (string, error) {
	var members []struct {
		Node  string `json:"Node Name"`
		State string `json:"Raft State"`
	}
	if err := json.Unmarshal(out, &members); err != nil {
		return "", fmt.Errorf("cluster: quorum_status: %w", err)
	}
	for _, m := range members {
		if m.State == "leader" {
			return m.Node, nil
		}
	}
	return "", nil
}

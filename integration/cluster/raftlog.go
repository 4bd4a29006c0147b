package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"time"
)

// QuorumEventKind is what a quorum queue's Raft member said in its node's
// log.
type QuorumEventKind int

const (
	// BecameLeader: the member entered the Raft leader state. Ra logs the
	// transition at notice level as it enters the state ("queue 'q' in
	// vhost '/': candidate -> leader in term: 2 …"), so the line's time is
	// the election's end as the new leader saw it, to the microsecond.
	BecameLeader QuorumEventKind = iota + 1
	// LeaderDown: the member, a follower, saw the process of the leader it
	// followed go ("Leader monitor down with noconnection, setting election
	// timeout", info level) and set its election timeout. A leader stopped
	// on purpose (graceful stop, drain) is seen going this way; a hung
	// node's leader is not, until the distribution link times out.
	LeaderDown
)

func (k QuorumEventKind) String() string {
	switch k {
	case BecameLeader:
		return "became leader"
	case LeaderDown:
		return "leader down"
	default:
		return "QuorumEventKind(" + strconv.Itoa(int(k)) + ")"
	}
}

// QuorumEvent is one line of a node's log about leadership of a quorum
// queue, written by the queue's Raft member on that node.
type QuorumEvent struct {
	Time  time.Time // the line's timestamp: the node's wall clock, in µs
	Node  string    // the node whose log holds the line
	VHost string
	Queue string
	Kind  QuorumEventKind
	From  string // BecameLeader: the Raft state the member left (candidate, …)
	Term  int    // BecameLeader: the term it leads
}

// QuorumEvents reads the node's log for the leadership events of its
// quorum queue members (see [QuorumEventKind]) stamped at or after since,
// in the log's order. It reads the log file as it stands and needs no
// running node, so it costs the broker nothing.
//
// RabbitMQ writes its log with a delayed write that holds lines for up to
// 2 s: read an event at least [LogFlushDelay] after it happened, or poll.
// The harness's log settings are needed (RabbitMQ's plain format, level
// info or lower); Options.Config lines that change them make QuorumEvents
// fail or find nothing. Lines logged before the node last restarted are in
// the same file and read too. QuorumEvents returns ctx's error if ctx ends
// first.
func (n *Node) QuorumEvents(ctx context.Context, since time.Time) ([]QuorumEvent, error) {
	f, err := os.Open(n.logFile())
	if err != nil {
		return nil, fmt.Errorf("cluster: log of %v: %w", n, err)
	}
	defer f.Close()
	evs, err := readQuorumEvents(ctx, f, n.name, since)
	if err != nil {
		return nil, fmt.Errorf("cluster: log of %v: %w", n, err)
	}
	return evs, nil
}

// LogFlushDelay bounds how long a line RabbitMQ logs takes to reach the
// log file of a running node: its file handler writes with Erlang's
// delayed_write, which holds data for up to 2 s.
const LogFlushDelay = 2500 * time.Millisecond

// The log lines QuorumEvents reads, as RabbitMQ 3.10's plain format writes
// them: "2026-12-05 04:24:10.369935+00:00 [notice] <0.813.0> queue 'q' in
// vhost '/': candidate -> leader in term: 1 machine version: 2", and the
// same prefix with "Leader monitor down with …" (ra's log id of a quorum
// queue's member is rabbit_misc:rs of the queue's name).
var (
	quorumLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+[+-]\d\d:\d\d) \[[a-z]+\] <[0-9.]+> queue '(.*)' in vhost '(.*)': (?:([a-z_]+) -> leader in term: (\d+) |Leader monitor down with )`)
	logTime    = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+[+-]\d\d:\d\d `)
)

const logTimeLayout = "2006-01-02 15:04:05.999999999-07:00"

// parseQuorumEvent reads one log line; ok is false for every other line.
func parseQuorumEvent(line, node string) (ev QuorumEvent, ok bool) {
	m := quorumLine.FindStringSubmatch(line)
	if m == nil {
		return QuorumEvent{}, false
	}
	t, err := time.Parse(logTimeLayout, m[1])
	if err != nil {
		return QuorumEvent{}, false
	}
	ev = QuorumEvent{Time: t, Node: node, Queue: m[2], VHost: m[3], Kind: LeaderDown}
	if m[4] != "" {
		term, err := strconv.Atoi(m[5])
		if err != nil {
			return QuorumEvent{}, false
		}
		ev.Kind, ev.From, ev.Term = BecameLeader, m[4], term
	}
	return ev, true
}

// Cheap tests that let most lines skip the regular expression.
var (
	markLeader = []byte(" -> leader in term: ")
	markDown   = []byte(": Leader monitor down with ")
)

// readQuorumEvents reads a node's log from r (see QuorumEvents). A log
// that has lines but none in RabbitMQ's plain format is an error: the
// events would be missed, not absent.
func readQuorumEvents(ctx context.Context, r io.Reader, node string, since time.Time) ([]QuorumEvent, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var evs []QuorumEvent
	lines, plain := 0, false
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			lines++
			plain = plain || logTime.Match(line)
			if bytes.Contains(line, markLeader) || bytes.Contains(line, markDown) {
				if ev, ok := parseQuorumEvent(string(bytes.TrimRight(line, "\r\n")), node); ok && !ev.Time.Before(since) {
					evs = append(evs, ev)
				}
			}
			if lines%4096 == 0 && ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if lines > 0 && !plain {
		return nil, fmt.Errorf("no line in RabbitMQ's plain log format among %d", lines)
	}
	return evs, ctx.Err()
}

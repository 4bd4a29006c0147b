package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Lines as RabbitMQ 3.10.8 wrote them in a stall benchmark's node logs.
const (
	lineLeader   = "2026-12-05 04:25:15.644874+00:00 [notice] <0.1213.0> queue 'stall-hang-connected-2-0-amqpha' in vhost '/': candidate -> leader in term: 1 machine version: 2"
	lineDown     = "2026-12-05 04:25:16.000123+00:00 [info] <0.600.0> queue 'stall-kill-leader-0-0-loop' in vhost '/': Leader monitor down with noconnection, setting election timeout"
	lineStepDown = "2026-12-05 04:25:49.992887+00:00 [notice] <0.1213.0> queue 'stall-hang-connected-2-0-amqpha' in vhost '/': leader -> terminating_leader in term: 1 machine version: 2"
	lineFollower = "2026-12-05 04:24:10.371880+00:00 [info] <0.1232.0> queue 'q' in vhost '/': detected a new leader {'%2F_q','a@localhost'} in term 1"
	lineDeclare  = "2026-12-05 04:25:15.645439+00:00 [info] <0.1206.0> Leader: {'%2F_stall-hang-connected-2-0-amqpha','amqpha-c62e9c-0@localhost'}"
)

func TestParseQuorumEvent(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		name string
		line string
		want QuorumEvent
		ok   bool
	}{
		{"became leader", lineLeader, QuorumEvent{Time: at("2026-12-05T04:25:15.644874Z"), Node: "n@h", VHost: "/",
			Queue: "stall-hang-connected-2-0-amqpha", Kind: BecameLeader, From: "candidate", Term: 1}, true},
		{"leader down", lineDown, QuorumEvent{Time: at("2026-12-05T04:25:16.000123Z"), Node: "n@h", VHost: "/",
			Queue: "stall-kill-leader-0-0-loop", Kind: LeaderDown}, true},
		{"another offset", strings.Replace(lineLeader, "+00:00", "+02:00", 1), QuorumEvent{Time: at("2026-12-05T02:25:15.644874Z"),
			Node: "n@h", VHost: "/", Queue: "stall-hang-connected-2-0-amqpha", Kind: BecameLeader, From: "candidate", Term: 1}, true},
		{"quotes in the names", "2026-12-05 04:25:15.5+00:00 [notice] <0.1.0> queue 'a 'b'' in vhost 'v': follower -> leader in term: 12 machine version: 2",
			QuorumEvent{Time: at("2026-12-05T04:25:15.5Z"), Node: "n@h", VHost: "v", Queue: "a 'b'", Kind: BecameLeader, From: "follower", Term: 12}, true},
		{"leaving the leader state", lineStepDown, QuorumEvent{}, false},
		{"a follower learning the leader", lineFollower, QuorumEvent{}, false},
		{"the declaring process", lineDeclare, QuorumEvent{}, false},
		{"no timestamp", lineLeader[33:], QuorumEvent{}, false},
		{"a month 13", strings.Replace(lineLeader, "2026-12-05", "2026-13-05", 1), QuorumEvent{}, false},
		{"a term too big", strings.Replace(lineLeader, "term: 1 ", "term: 99999999999999999999 ", 1), QuorumEvent{}, false},
		{"empty", "", QuorumEvent{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseQuorumEvent(tc.line, "n@h")
			if ok != tc.ok || !got.Time.Equal(tc.want.Time) {
				t.Fatalf("parseQuorumEvent = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
			got.Time = tc.want.Time
			if got != tc.want {
				t.Fatalf("parseQuorumEvent = %+v; want %+v", got, tc.want)
			}
		})
	}
}

func TestReadQuorumEvents(t *testing.T) {
	ctx := context.Background()
	log := strings.Join([]string{lineFollower, lineDeclare, lineLeader, "  a continuation line", lineStepDown, lineDown,
		strings.Repeat("x", 200<<10), lineLeader}, "\n") // no newline at the end
	since, _ := time.Parse(time.RFC3339Nano, "2026-12-05T04:25:15.644874Z")
	evs, err := readQuorumEvents(ctx, strings.NewReader(log), "n@h", since)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []QuorumEventKind
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind)
	}
	if want := []QuorumEventKind{BecameLeader, LeaderDown, BecameLeader}; fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("kinds %v, want %v (since is inclusive, the line without a newline counts)", kinds, want)
	}
	evs, err = readQuorumEvents(ctx, strings.NewReader(log), "n@h", since.Add(time.Microsecond))
	if err != nil || len(evs) != 1 || evs[0].Kind != LeaderDown {
		t.Errorf("since a µs later: %+v, %v; want the leader down line only", evs, err)
	}

	if evs, err := readQuorumEvents(ctx, strings.NewReader(""), "n@h", since); err != nil || len(evs) != 0 {
		t.Errorf("an empty log: %v, %v", evs, err)
	}
	json := `{"time":"2026-12-05 04:25:15.644874+00:00","level":"notice","msg":"queue 'q' in vhost '/': candidate -> leader in term: 1 machine version: 2"}`
	if _, err := readQuorumEvents(ctx, strings.NewReader(json+"\n"), "n@h", since); err == nil {
		t.Error("a log in another format: no error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := readQuorumEvents(cctx, strings.NewReader(log), "n@h", since); err == nil {
		t.Error("an ended ctx: no error")
	}
}

func TestQuorumEventKindString(t *testing.T) {
	for k, want := range map[QuorumEventKind]string{BecameLeader: "became leader", LeaderDown: "leader down", 0: "QuorumEventKind(0)"} {
		if got := k.String(); got != want {
			t.Errorf("%d: %q, want %q", int(k), got, want)
		}
	}
}

// FuzzParseQuorumEvent: any line parses without panic, and a leader line
// built from fuzzed names, state, term and time reads back as written
// (names without quotes or line breaks, which RabbitMQ would print
// ambiguously).
func FuzzParseQuorumEvent(f *testing.F) {
	f.Add(lineLeader, "q", "/", "candidate", uint32(1), int64(1764908715644874))
	f.Add(lineDown, "a b", "vh", "follower", uint32(1<<31), int64(0))
	f.Add("", "", "", "", uint32(0), int64(-1))
	f.Fuzz(func(t *testing.T, line, queue, vhost, from string, term uint32, usec int64) {
		if ev, ok := parseQuorumEvent(line, "n@h"); ok && ev.Kind != BecameLeader && ev.Kind != LeaderDown {
			t.Fatalf("%q: kind %v", line, ev.Kind)
		}
		at := time.UnixMicro(usec % (1 << 50)).UTC()
		if at.Year() < 1000 || at.Year() > 9999 || from == "" || strings.Trim(from, "abcdefghijklmnopqrstuvwxyz_") != "" ||
			strings.ContainsAny(queue+vhost, "'\r\n") || !utf8.ValidString(queue+vhost) {
			return
		}
		built := fmt.Sprintf("%s [notice] <0.1.0> queue '%s' in vhost '%s': %s -> leader in term: %d machine version: 2",
			at.Format("2006-01-02 15:04:05.000000-07:00"), queue, vhost, from, term)
		ev, ok := parseQuorumEvent(built, "n@h")
		want := QuorumEvent{Time: at, Node: "n@h", VHost: vhost, Queue: queue, Kind: BecameLeader, From: from, Term: int(term)}
		if !ok || !ev.Time.Equal(at) {
			t.Fatalf("%q: %+v, %v", built, ev, ok)
		}
		ev.Time = at
		if ev != want {
			t.Fatalf("%q: %+v, want %+v", built, ev, want)
		}
	})
}

package cluster

import (
	"encoding/json"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"zero", Options{}, true},
		{"max nodes", Options{Nodes: MaxNodes}, true},
		{"too many nodes", Options{Nodes: MaxNodes + 1}, false},
		{"negative nodes", Options{Nodes: -1}, false},
		{"whole ticktime", Options{NetTicktime: 10 * time.Second}, true},
		{"fractional ticktime", Options{NetTicktime: 1500 * time.Millisecond}, false},
		{"negative lifetime", Options{MaxLifetime: -time.Second}, false},
		{"extra IPv4", Options{ExtraIP: "10.213.0.1"}, true},
		{"extra IPv6", Options{ExtraIP: "fd00::1"}, true},
		{"extra not an IP", Options{ExtraIP: "bridge0"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.o.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestParseAlarms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
		err  bool
	}{
		{`{"alarms":[],"node":"a@localhost","result":"ok"}`, false, false},
		{`{"global":[],"local":["Memory alarm on node a@localhost"],"message":"x","result":"ok"}`, true, false},
		{`not json`, false, true},
	} {
		got, err := parseAlarms([]byte(tc.in))
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("parseAlarms(%s) = %v, %v", tc.in, got, err)
		}
	}
}

// FuzzParseAlarms: what parseAlarms accepts is JSON, an error never
// reports an alarm, and a report in either of the two shapes
// rabbitmq-diagnostics prints, built from the fuzzed counts and text,
// reads back as an alarm exactly when it lists one.
func FuzzParseAlarms(f *testing.F) {
	f.Add([]byte(`{"alarms":[]}`), uint8(0), uint8(0), "a@localhost")
	f.Add([]byte(`{"local":["x"],"global":[]}`), uint8(1), uint8(0), "Memory alarm on node a@localhost")
	f.Add([]byte(`not json`), uint8(0), uint8(2), "\"quoted\"\n")
	f.Fuzz(func(t *testing.T, b []byte, local, alarms uint8, text string) {
		got, err := parseAlarms(b)
		if err == nil && !json.Valid(b) {
			t.Fatalf("parseAlarms(%q) accepted what is not JSON", b)
		}
		if err != nil && got {
			t.Fatalf("parseAlarms(%q) = true with error %v", b, err)
		}

		list := func(n uint8) []string {
			l := []string{}
			for range n % 4 {
				l = append(l, text)
			}
			return l
		}
		var doc map[string]any
		if local%4 > 0 {
			doc = map[string]any{"local": list(local), "global": list(local), "message": text, "result": "ok"}
		} else {
			doc = map[string]any{"alarms": list(alarms), "node": text, "result": "ok"}
		}
		out, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		want := local%4 > 0 || alarms%4 > 0
		if got, err := parseAlarms(out); err != nil || got != want {
			t.Fatalf("parseAlarms(%s) = %v, %v; want %v", out, got, err, want)
		}
	})
}

func TestParseQueueCounts(t *testing.T) {
	out := []byte(`[
{"name":"other","messages_ready":7,"messages_unacknowledged":1}
,{"name":"q","messages_ready":35,"messages_unacknowledged":5}
]`)
	got, err := parseQueueCounts(out, "q")
	if err != nil || got != (QueueCounts{Ready: 35, Unacked: 5}) {
		t.Fatalf("parseQueueCounts = %+v, %v; want 35 ready, 5 unacked", got, err)
	}
	if _, err := parseQueueCounts(out, "gone"); err == nil {
		t.Error("a queue not listed: no error")
	}
	if _, err := parseQueueCounts([]byte("Error: timeout"), "q"); err == nil {
		t.Error("not JSON: no error")
	}
}

func TestParseQuorumLeader(t *testing.T) {
	member := func(node, state string) string {
		return `{"Node Name":"` + node + `","Raft State":"` + state + `","Log Index":12,"Term":3}`
	}
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{"[" + member("a@localhost", "follower") + "," + member("b@localhost", "leader") + "]", "b@localhost", false},
		{"[" + member("a@localhost", "candidate") + "," + member("b@localhost", "noproc") + "]", "", false},
		{"[]", "", false},
		{"Error: {:nodedown, :a@localhost}", "", true},
	} {
		got, err := parseQuorumLeader([]byte(tc.in))
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("parseQuorumLeader(%s) = %q, %v; want %q (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

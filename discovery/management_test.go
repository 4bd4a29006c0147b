package discovery

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

func TestNodesFromManagement(t *testing.T) {
	members := []mgmtNode{{Name: "rabbit@r1", Running: true}, {Name: "rabbit@r2", Running: true}, {Name: "rabbit@r3", Running: false}}
	listeners := []mgmtListener{
		{Node: "rabbit@r1", Protocol: "amqp", IPAddress: "10.0.0.1", Port: 5672},
		{Node: "rabbit@r1", Protocol: "amqp", IPAddress: "10.0.0.1", Port: 5672}, // repeated
		{Node: "rabbit@r1", Protocol: "clustering", IPAddress: "::", Port: 25672},
		{Node: "rabbit@r2", Protocol: "amqp", IPAddress: "::", Port: 5672},
		{Node: "rabbit@r2", Protocol: "amqp/ssl", IPAddress: "::", Port: 5671},
		{Node: "rabbit@r3", Protocol: "amqp", IPAddress: "10.0.0.3", Port: 5672}, // not running
	}
	tpl, _ := url.Parse("amqp://app:secret@x/orders")
	nodes, err := nodesFromManagement(members, listeners, tpl, "rabbit@r2")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range nodes {
		got = append(got, n.Addr+" p"+string(rune('0'+n.Priority)))
	}
	want := "amqp://app:secret@10.0.0.1:5672/orders p1,amqp://app:secret@r2:5672/orders p0"
	if strings.Join(got, ",") != want {
		t.Fatalf("nodes %q\nwant %q", got, want)
	}
	tls, _ := url.Parse("amqps://app:secret@x/")
	nodes, _ = nodesFromManagement(members, listeners, tls, "")
	if len(nodes) != 1 || nodes[0].Addr != "amqps://app:secret@r2:5671/" || nodes[0].Priority != 0 {
		t.Fatalf("TLS nodes %+v", nodes)
	}
	if _, err := nodesFromManagement(members[2:], listeners, tpl, ""); err == nil {
		t.Fatal("no running node gave nodes")
	}
}

func TestManagementConfigRefusesCredentialsInSeeds(t *testing.T) {
	_, err := Management(ManagementConfig{Seeds: []string{"http://admin:hunter2@r1:15672"}})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Management with credentials in a seed: %v", err)
	}
	if _, err := Management(ManagementConfig{}); err == nil {
		t.Fatal("Management without seeds accepted")
	}
}

// FuzzManagementAnswer feeds arbitrary JSON to the listener handling: no
// panic, and every node has a parsable address with a port.
func FuzzManagementAnswer(f *testing.F) {
	f.Add([]byte(`[{"name":"rabbit@h","running":true}]`), []byte(`{"listeners":[{"node":"rabbit@h","protocol":"amqp","ip_address":"::","port":5672}]}`))
	f.Add([]byte(`[]`), []byte(`{}`))
	tpl, _ := url.Parse("amqp://u:p@x/v")
	f.Fuzz(func(t *testing.T, nodesJSON, overviewJSON []byte) {
		var members []mgmtNode
		var ov mgmtOverview
		if json.Unmarshal(nodesJSON, &members) != nil || json.Unmarshal(overviewJSON, &ov) != nil {
			return
		}
		nodes, err := nodesFromManagement(members, ov.Listeners, tpl, "")
		if err != nil {
			return
		}
		for _, n := range nodes {
			if u, err := url.Parse(n.Addr); err != nil || u.Port() == "" {
				t.Fatalf("node %q: %v", n.Addr, err)
			}
		}
	})
}

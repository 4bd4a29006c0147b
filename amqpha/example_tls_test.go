package amqpha_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/amqpha/amqpha/amqpha"
)

// Connect over TLS, verifying each node's certificate against the
// company CA, and log in with a client certificate (SASL EXTERNAL: the
// broker's rabbitmq_auth_mechanism_ssl plugin takes the user from the
// certificate). Every parameter is read as amqp091-go reads it; the files
// are read again at every dial, so renewed certificates take effect with
// the next connection.
func ExampleConfig_tls() {
	const params = "?cacertfile=/etc/app/ca.pem" +
		"&certfile=/etc/app/client.pem&keyfile=/etc/app/client.key" +
		"&auth_mechanism=external"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := amqpha.Dial(ctx, amqpha.Config{
		Nodes: []string{
			"amqps://rabbit-1:5671/" + params,
			"amqps://rabbit-2:5671/" + params,
			"amqps://rabbit-3:5671/" + params,
		},
	})
	if err != nil {
		log.Fatal(err) // a bad file or parameter is named here, before any dial
	}
	defer client.Close(context.Background())
}

// A node URI's parameters are checked before anything is dialled: a typo,
// a value past its limit or a TLS parameter on amqp:// is refused with
// what is wrong, where amqp091-go would ignore it.
func ExampleConfig_uriParameters() {
	for _, node := range []string{
		"amqps://app:secret@rabbit-1/?cacertfil=/etc/app/ca.pem",
		"amqp://app:secret@rabbit-1/?heartbeat=70000",
		"amqp://app:secret@rabbit-1/?auth_mechanism=external",
		"amqps://app:secret@rabbit-1/?verify=verify_none",
		"amqp://app:secret@rabbit-1/?heartbeat=5&connection_timeout=1500&channel_max=64&frame_max=65536",
	} {
		fmt.Println(amqpha.Config{Nodes: []string{node}}.Validate())
	}
	// Output:
	// amqpha: config: Nodes[0]: unknown URI parameter "cacertfil" (did you mean cacertfile?); amqpha reads auth_mechanism, cacertfile, certfile, channel_max, connection_timeout, frame_max, heartbeat, keyfile, server_name_indication, verify
	// amqpha: config: Nodes[0]: URI parameter heartbeat: want whole seconds from 0 (the broker's value) to 65535
	// amqpha: config: Nodes[0]: URI parameter auth_mechanism=external needs an amqps:// URI: the broker takes the user from the client certificate
	// amqpha: config: Nodes[0]: URI parameter verify=verify_none is refused: amqpha always verifies the server's certificate (set Config.TLS.InsecureSkipVerify to turn that off for every node)
	// <nil>
}

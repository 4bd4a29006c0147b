module github.com/amqpha/amqpha

go 1.26

require (
	github.com/cenkalti/backoff/v4 v4.3.0
	github.com/miekg/dns v1.1.73
	github.com/rabbitmq/amqp091-go v1.16.0
	go.uber.org/goleak v1.3.0
)

require (
	golang.org/x/net v0.57.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)

// Package otelamqpha traces an amqpha client with OpenTelemetry: a span
// for every published message and for every delivery's handler, joined in
// one trace by the W3C Trace Context the message carries in its headers.
//
// It plugs into amqpha's hooks ([amqpha.Config.PublishHooks] and
// [amqpha.Config.ConsumeHooks]); package amqpha itself does not depend on
// OpenTelemetry. This package is a Go module of its own, so that programs
// using amqpha without it do not get OpenTelemetry's modules in their
// build.
//
// # Spans
//
// Spans follow the OpenTelemetry semantic conventions for RabbitMQ
// (semconv 1.43, whose messaging conventions are still in development):
//
//   - "publish {destination}", kind producer, from the call to Publish or
//     PublishAsync to the broker's confirm (or the error the call
//     returned). Its context goes into the message's headers
//     ("traceparent", "tracestate", "baggage") unless the message already
//     carries a creation context, which it then keeps and links to. A
//     message that amqpha sent again (after a nack, a lost connection, a
//     confirm timeout) keeps its headers, and so its trace; the span gets
//     an "amqpha.resend" event for each time, with the reason and the
//     node it was on.
//   - "process {destination}", kind consumer, around the handler; the
//     handler's context holds it. By default its parent is the publish
//     span, as the conventions allow for single messages, so producer and
//     consumer share one trace; it links to the publish span too (see
//     [WithParentFromMessage]). A delivery the broker made before
//     (Redelivered: a duplicate the handler may have handled already) has
//     amqpha.message.redelivered=true, and a quorum queue's
//     x-delivery-count shows as amqpha.message.delivery_count.
//
// {destination} is messaging.destination.name: for a publish
// "{exchange}:{routing key}" (either alone when the other is empty;
// "amq.default" when both are), for a delivery
// "{exchange}:{routing key}:{queue}" without the empty parts and with a
// routing key equal to the queue's name given once.
//
// # Cost
//
// BENCHMARKS.md in the repository gives the cost per publish and per
// delivery: no hooks, empty hooks, this package with a no-op tracer and
// with the SDK.
package otelamqpha

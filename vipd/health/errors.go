package health

import (
	"errors"
	"fmt"
)

// Sentinel errors. A failed [Result]'s Err wraps one of them when it
// applies; test with errors.Is.
var (
	// ErrTimeout: the check did not finish within its connect_timeout (or
	// misc_timeout). A hung RabbitMQ node fails AMQP and HTTP checks this
	// way.
	ErrTimeout = errors.New("health: check timed out")
	// ErrStatus: an HTTP_GET or SSL_GET url answered with a status code
	// outside its status_code ranges.
	ErrStatus = errors.New("health: unexpected HTTP status")
	// ErrDigest: the MD5 of an HTTP body is not the url's digest.
	ErrDigest = errors.New("health: HTTP body digest mismatch")
	// ErrExit: a MISC_CHECK program exited with a failure status.
	ErrExit = errors.New("health: script reported failure")
)

// CheckError is why a check failed: which kind of check, against what,
// and the cause. Target is an address or a program path; it never holds
// credentials.
type CheckError struct {
	Check  string // TCP_CHECK, AMQP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK
	Target string
	Err    error
}

func (e *CheckError) Error() string {
	return fmt.Sprintf("health: %s %s: %v", e.Check, e.Target, e.Err)
}

// Unwrap returns the cause.
func (e *CheckError) Unwrap() error { return e.Err }

// kindError prints as its message alone and matches its sentinel with
// errors.Is; cause, when set, is unwrapped too.
type kindError struct {
	msg   string
	kind  error
	cause error
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }
func (e *kindError) Unwrap() error        { return e.cause }

// kindf returns an error of kind (a sentinel) with a message of its own.
func kindf(kind error, format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: kind}
}

// timeoutf returns an [ErrTimeout] error that also wraps cause.
func timeoutf(cause error, format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: ErrTimeout, cause: cause}
}

package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// Pos is where something was defined: a file and a line in it.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Duration is a time.Duration that marshals as a readable string ("1s",
// "100ms", "0s") and unmarshals from one.
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText formats d as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses text with time.ParseDuration.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Redacted is what a [Secret] shows instead of its value.
const Redacted = "<redacted>"

// Secret is a password from the configuration (auth_pass, the password of
// AMQP_CHECK). It prints, logs and marshals as [Redacted]; only Reveal
// returns the value.
type Secret string

// Reveal returns the secret's value, for the code that has to use it.
func (s Secret) Reveal() string { return string(s) }

// String returns [Redacted], or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue keeps log/slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText marshals [Redacted], or "" for an empty secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

var _ slog.LogValuer = Secret("")

// JSON returns c as indented JSON, as `vipd check -dump` prints it: keyword names
// as keys, durations as strings ("1s"), secrets as [Redacted], and '<',
// '>' and '&' left unescaped.
func (c *Config) JSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

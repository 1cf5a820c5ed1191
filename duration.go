package svcgate

import (
	"fmt"
	"time"
)

// Duration is a time.Duration that reads and writes text as a Go duration
// string ("5s", "24h"), the form the API's JSON and the YAML configuration
// use.
type Duration time.Duration

// String returns the duration as Go prints it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as a duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a duration string; a negative duration is an error.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (want a form such as \"5s\")", b)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", b)
	}
	*d = Duration(v)
	return nil
}

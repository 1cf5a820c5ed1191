package svcgate

import (
	"fmt"
	"time"
)

// State is the lifecycle state of a service. Windows SCM states map one to
// one; systemd active states are translated by the systemd backend.
type State string

// The states a service can be in.
const (
	StateStopped         State = "stopped"
	StateStartPending    State = "start_pending"
	StateRunning         State = "running"
	StateStopPending     State = "stop_pending"
	StatePausePending    State = "pause_pending"
	StatePaused          State = "paused"
	StateContinuePending State = "continue_pending"
	StateFailed          State = "failed"
)

// States lists every State in lifecycle order.
var States = []State{
	StateStopped, StateStartPending, StateRunning, StateStopPending,
	StatePausePending, StatePaused, StateContinuePending, StateFailed,
}

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Pending reports whether s is a transitional state that will settle by
// itself into another one.
func (s State) Pending() bool {
	switch s {
	case StateStartPending, StateStopPending, StatePausePending, StateContinuePending:
		return true
	}
	return false
}

// Down reports whether s means no instance of the service is running.
func (s State) Down() bool { return s == StateStopped || s == StateFailed }

// StartType says when the service manager starts a service by itself.
type StartType string

// The start types. A backend that has no notion of delayed start rejects
// StartDelayedAuto.
const (
	StartAuto        StartType = "auto"
	StartDelayedAuto StartType = "delayed_auto"
	StartManual      StartType = "manual"
	StartDisabled    StartType = "disabled"
)

// Valid reports whether t is one of the defined start types.
func (t StartType) Valid() bool {
	switch t {
	case StartAuto, StartDelayedAuto, StartManual, StartDisabled:
		return true
	}
	return false
}

// Accept names a class of control requests a running service accepts.
type Accept string

// The classes of control a service may accept.
const (
	AcceptStop          Accept = "stop"
	AcceptPauseContinue Accept = "pause_continue"
	AcceptShutdown      Accept = "shutdown"
	AcceptReload        Accept = "reload"
)

// Service is a snapshot of one service as its backend reports it.
type Service struct {
	Name         string    `json:"name"`
	DisplayName  string    `json:"display_name"`
	Description  string    `json:"description"`
	State        State     `json:"state"`
	SubState     string    `json:"sub_state,omitempty"`
	StartType    StartType `json:"start_type"`
	PID          int       `json:"pid"`
	Accepts      []Accept  `json:"accepts"`
	ExitCode     int       `json:"exit_code"`
	Since        time.Time `json:"since"`
	Dependencies []string  `json:"dependencies"`
	Backend      string    `json:"backend"`
}

// Accepting reports whether s accepts control class a.
func (s Service) Accepting(a Accept) bool {
	for _, v := range s.Accepts {
		if v == a {
			return true
		}
	}
	return false
}

// MaxNameLen is the longest service name svcgate accepts, the SCM's limit.
const MaxNameLen = 256

// ValidateName checks name against the one grammar svcgate accepts before
// any OS call: 1 to 256 characters of letters, digits and _ . @ : + $ ~ { }
// -, not starting with '-' or '.', and without "..". Names that could be
// taken for a flag, a path or a shell word never reach a backend. It returns
// an *Error with code invalid_name.
func ValidateName(name string) error {
	switch {
	case name == "":
		return Errorf(CodeInvalidName, "service name is empty")
	case len(name) > MaxNameLen:
		return Errorf(CodeInvalidName, "service name is longer than %d characters", MaxNameLen)
	case name[0] == '-' || name[0] == '.':
		return Errorf(CodeInvalidName, "service name %q must not start with %q", name, name[0])
	}
	for i := 0; i < len(name); i++ {
		if !nameChar(name[i]) {
			return Errorf(CodeInvalidName, "service name %q contains %s", name, describeByte(name[i]))
		}
		if name[i] == '.' && i+1 < len(name) && name[i+1] == '.' {
			return Errorf(CodeInvalidName, "service name %q contains \"..\"", name)
		}
	}
	return nil
}

func nameChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '_', '.', '@', ':', '+', '$', '~', '{', '}', '-':
		return true
	}
	return false
}

func describeByte(c byte) string {
	if c < 0x20 || c >= 0x7f {
		return fmt.Sprintf("the byte 0x%02x", c)
	}
	if c == ' ' {
		return "a space"
	}
	return fmt.Sprintf("%q", c)
}

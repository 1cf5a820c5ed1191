package svcgate

import "time"

// Action is a control request on a service.
type Action string

// The actions svcgate can ask a backend for.
const (
	ActionStart    Action = "start"
	ActionStop     Action = "stop"
	ActionRestart  Action = "restart"
	ActionPause    Action = "pause"
	ActionContinue Action = "continue"
	ActionReload   Action = "reload"
)

// Actions lists every Action.
var Actions = []Action{ActionStart, ActionStop, ActionRestart, ActionPause, ActionContinue, ActionReload}

// Valid reports whether a is one of the defined actions.
func (a Action) Valid() bool {
	for _, v := range Actions {
		if a == v {
			return true
		}
	}
	return false
}

// Target returns the state a successful a settles in.
func (a Action) Target() State {
	switch a {
	case ActionStop:
		return StateStopped
	case ActionPause:
		return StatePaused
	default:
		return StateRunning
	}
}

// ControlOptions are the optional parts of a control request.
type ControlOptions struct {
	// Args are passed to the service on start (Windows service arguments);
	// a backend that cannot pass them rejects a non-empty list with
	// unsupported_action.
	Args []string
	// StopDependents lets a stop proceed when running services depend on
	// this one by stopping them first; without it such a stop fails with
	// dependents_running.
	StopDependents bool
}

// ControlResult is what a backend reports once it has issued an action.
type ControlResult struct {
	// Changed is false when the service already was where the action
	// leads (start on a running service), which is a success.
	Changed bool
	// Stopped lists the dependents stopped first, in order.
	Stopped []string
}

// WaitDefault, WaitMax are the bounds of the wait for a target state that
// the HTTP API and the CLI apply.
const (
	WaitDefault = 30 * time.Second
	WaitMax     = 5 * time.Minute
)

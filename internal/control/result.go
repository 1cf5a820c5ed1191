package control

import (
	"time"

	"github.com/svcgate/svcgate"
)

// Options tune one control request.
type Options struct {
	// Wait bounds the wait for the target state; 0 returns as soon as the
	// action is issued (HTTP 202).
	Wait time.Duration
	// Args are passed on start where the backend supports it.
	Args []string
	// StopDependents stops running dependents first on stop.
	StopDependents bool
	// DryRun validates and plans without touching the OS.
	DryRun bool
}

// Result is the outcome of a control, create, update or delete request.
type Result struct {
	// Service is the service's state when the request finished.
	Service svcgate.Service `json:"service"`
	// Changed is false when nothing had to be done.
	Changed bool `json:"changed"`
	// Duration is how long the request took, wait included.
	Duration time.Duration `json:"-"`
	// Pending is true when the caller did not wait (wait=0) and the
	// target state is not reached yet.
	Pending bool `json:"-"`
	// Stopped lists dependents stopped first.
	Stopped []string `json:"stopped,omitempty"`
	// DryRun marks a planned, not executed, request; Plan says what would
	// happen.
	DryRun bool   `json:"dry_run,omitempty"`
	Plan   []Step `json:"plan,omitempty"`
}

// Step is one planned change of a dry run.
type Step struct {
	Service string        `json:"service"`
	Action  string        `json:"action"` // an svcgate.Action, or create, update, delete
	From    svcgate.State `json:"from,omitempty"`
	To      svcgate.State `json:"to,omitempty"`
	Changes []string      `json:"changes,omitempty"` // fields an update would change
}

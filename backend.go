package svcgate

import (
	"context"
	"time"
)

// Backend is the one contract every service manager implements: the Windows
// SCM, systemd and svcgate's own supervisor. Methods are safe for concurrent
// use. Errors are *Error values with the codes of this package; a backend
// classifies its OS errors once, at its boundary.
//
// Waiting for a target state is not a backend's job: Control returns once the
// action is issued, and the caller waits above the backend. Restart is the
// exception only in that Control returns after the old instance is down and
// the start has been issued, so that waiting for running waits for the new
// instance.
type Backend interface {
	// Name is the backend's name as configured: "windows", "systemd" or
	// "supervisor".
	Name() string
	// List returns every service the backend manages, in no set order.
	List(ctx context.Context) ([]Service, error)
	// Get returns one service, queried live. Unknown names fail with
	// service_not_found.
	Get(ctx context.Context, name string) (Service, error)
	// Control issues action on the named service. It is idempotent: an
	// action whose target the service is already in succeeds with
	// Changed false. It fails with service_not_found, invalid_transition
	// (pause on a stopped service), unsupported_action (the service does
	// not accept it), dependents_running or backend_error.
	Control(ctx context.Context, name string, action Action, opts ControlOptions) (ControlResult, error)
}

// Watcher is implemented by backends that report state changes as they
// happen. Watch returns a channel of events that is closed when ctx ends or
// the connection to the service manager is lost; the caller then reloads a
// snapshot and watches again. Events carry no sequence number: the event hub
// assigns them.
type Watcher interface {
	Watch(ctx context.Context) (<-chan Event, error)
}

// Configurer is implemented by backends that can create, change and delete
// services. Fields a backend cannot honour are rejected with
// unsupported_action, never ignored.
type Configurer interface {
	// Create makes a new service; an existing name fails with conflict.
	Create(ctx context.Context, spec ServiceSpec) (Service, error)
	// Update changes the fields set in u.
	Update(ctx context.Context, name string, u ServiceUpdate) (Service, error)
	// Delete removes a stopped service; a running one fails with conflict.
	Delete(ctx context.Context, name string) error
}

// LogReader is implemented by backends that can read a service's output.
type LogReader interface {
	// Logs returns the service's log lines, oldest first. With
	// opts.Follow the channel stays open for new lines until ctx ends.
	Logs(ctx context.Context, name string, opts LogOptions) (<-chan LogLine, error)
}

// LogOptions select which log lines Logs returns.
type LogOptions struct {
	Tail   int       // the last Tail lines; 0 means all
	Since  time.Time // lines at or after Since; zero means no bound
	Follow bool      // keep the stream open for new lines
}

// LogLine is one line of a service's output.
type LogLine struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"` // "stdout", "stderr", or a journal/Event Log source
	Text   string    `json:"text"`
}

// ServiceSpec is the create body, the same for every backend.
type ServiceSpec struct {
	Name         string            `json:"name"`
	DisplayName  string            `json:"display_name,omitempty"`
	Description  string            `json:"description,omitempty"`
	BinaryPath   string            `json:"binary_path"`
	Args         []string          `json:"args,omitempty"`
	StartType    StartType         `json:"start_type,omitempty"`
	Account      string            `json:"account,omitempty"`
	Password     string            `json:"password,omitempty"`
	Dependencies []string          `json:"dependencies,omitempty"`
	Recovery     *Recovery         `json:"recovery,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
	Dir          string            `json:"dir,omitempty"`
}

// ServiceUpdate is the patch body: only the fields that are set change.
// The name never changes.
type ServiceUpdate struct {
	DisplayName  *string            `json:"display_name,omitempty"`
	Description  *string            `json:"description,omitempty"`
	BinaryPath   *string            `json:"binary_path,omitempty"`
	Args         *[]string          `json:"args,omitempty"`
	StartType    *StartType         `json:"start_type,omitempty"`
	Account      *string            `json:"account,omitempty"`
	Password     *string            `json:"password,omitempty"`
	Dependencies *[]string          `json:"dependencies,omitempty"`
	Recovery     *Recovery          `json:"recovery,omitempty"`
	Env          *map[string]string `json:"env,omitempty"`
	Dir          *string            `json:"dir,omitempty"`
}

// Recovery says what the service manager does when a service fails.
type Recovery struct {
	Actions    []RecoveryAction `json:"actions"`
	ResetAfter Duration         `json:"reset_after,omitempty"`
}

// RecoveryAction is one step of a recovery policy; the n-th failure runs
// the n-th action, and the last one repeats.
type RecoveryAction struct {
	Type  string   `json:"type"` // "restart" or "none"
	Delay Duration `json:"delay,omitempty"`
}

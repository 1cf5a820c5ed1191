package svcgate

import "time"

// EventType says what an Event reports.
type EventType string

// The kinds of event.
const (
	EventChanged EventType = "changed" // state or configuration changed
	EventAdded   EventType = "added"   // a service appeared
	EventRemoved EventType = "removed" // a service was deleted
)

// Event is one observed change of a service.
type Event struct {
	// Seq is assigned by the event hub: strictly increasing within one run
	// of the agent, the SSE id a client resumes from.
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Type    EventType `json:"type"`
	Service Service   `json:"service"`
	// Previous is the state before the change, for changed events.
	Previous State `json:"previous,omitempty"`
}

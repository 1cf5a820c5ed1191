// Package hub keeps the watch-fed state cache of one backend, numbers its
// changes into events, fans them out to subscribers with a resume buffer, and
// lets callers wait for a service to reach a state.
//
// The cache is what GET /v1/services and the metrics are served from, so
// their cost does not depend on how expensive the OS makes enumeration.
// Backends that implement svcgate.Watcher feed it as changes happen; others
// are polled and diffed.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/svcgate/svcgate"
)

// Options configure a Hub. Zero values take the documented defaults.
type Options struct {
	// Buffer is how many events are kept for resuming subscribers
	// (default 4096).
	Buffer int
	// PollInterval is how often a backend without Watch is listed and
	// diffed (default 1s).
	PollInterval time.Duration
	// SubscriberQueue is how many events a subscriber may fall behind
	// before it is cut off and must resume (default 1024).
	SubscriberQueue int
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Now stamps events that the backend did not (default time.Now).
	Now func() time.Time
}

// Hub is the state cache and event hub of one backend. Its methods are safe
// for concurrent use.
type Hub struct {
	backend svcgate.Backend
	opts    Options
	log     *slog.Logger

	mu       sync.Mutex
	services map[string]svcgate.Service
	sorted   []svcgate.Service // nil when it must be rebuilt
	gen      uint64            // bumped on every change of the cache
	seq      uint64            // sequence number of the last event
	ring     []svcgate.Event   // the last Buffer events, oldest first
	ringHead int               // index of the oldest event once the ring is full
	subs     map[*subscriber]struct{}
	changed  chan struct{} // closed and replaced on every change
	ready    bool
	watching bool
	loaded   bool // the first snapshot is in; later differences are events
	stopped  bool // Run returned: new subscriptions end at once
}

type subscriber struct {
	ch   chan svcgate.Event
	stop func() bool // deregisters the context.AfterFunc that ends it
}

// New returns a Hub over b. Call Run to fill and maintain it.
func New(b svcgate.Backend, opts Options) *Hub {
	if opts.Buffer <= 0 {
		opts.Buffer = 4096
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.SubscriberQueue <= 0 {
		opts.SubscriberQueue = 1024
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Hub{
		backend:  b,
		opts:     opts,
		log:      opts.Logger,
		services: make(map[string]svcgate.Service),
		subs:     make(map[*subscriber]struct{}),
		changed:  make(chan struct{}),
	}
}

// Run loads a snapshot of the backend and keeps the cache current until ctx
// ends: through Watch when the backend can watch, by polling otherwise (also
// when its Watch reports unsupported_action or errors.ErrUnsupported, as a
// decorator over a backend that cannot watch does). When a watch ends
// because the connection to the service manager was lost, the hub is not
// ready until a new snapshot is loaded. Run returns nil when ctx ends, after
// closing every subscription.
func (h *Hub) Run(ctx context.Context) error {
	h.mu.Lock()
	h.stopped = false
	h.mu.Unlock()
	defer h.closeSubscribers()
	w, canWatch := h.backend.(svcgate.Watcher)
	retry := newBackoff(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		began := time.Now()
		var err error
		if canWatch {
			err = h.watch(ctx, w)
		} else {
			err = h.poll(ctx)
		}
		h.setReady(false, false)
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, errWatchUnsupported) {
			h.log.Info("backend cannot watch; polling it", "backend", h.backend.Name(), "err", err)
			canWatch = false
			continue
		}
		// A feed that stayed up a while failed anew: retry quickly rather
		// than at the delay a flapping connection earned long ago.
		if time.Since(began) > retry.max {
			retry.reset()
		}
		h.log.Warn("backend state feed lost; reconnecting", "backend", h.backend.Name(), "err", err)
		if !sleepCtx(ctx, retry.next()) {
			break
		}
	}
	return nil
}

// watch subscribes before it lists, so that no change between the two is
// lost; an event that the snapshot already reflects is dropped as a no-op.
func (h *Hub) watch(ctx context.Context, w svcgate.Watcher) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := w.Watch(wctx)
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) || svcgate.IsCode(err, svcgate.CodeUnsupportedAction) {
			return fmt.Errorf("%w: %w", errWatchUnsupported, err)
		}
		return err
	}
	if err := h.resync(ctx); err != nil {
		return err
	}
	h.setReady(true, true)
	for {
		// The contract closes events when ctx ends; not relying on it
		// keeps Run's return prompt with a backend that is slow to do so.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-events:
			if !ok {
				return errFeedClosed
			}
			h.apply(ev)
		}
	}
}

func (h *Hub) poll(ctx context.Context) error {
	t := time.NewTicker(h.opts.PollInterval)
	defer t.Stop()
	for {
		if err := h.resync(ctx); err != nil {
			return err
		}
		h.setReady(true, false)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// resync replaces the cache with a fresh listing and emits an event for
// every difference, so subscribers see what happened while the feed was
// down.
func (h *Hub) resync(ctx context.Context) error {
	list, err := h.backend.List(ctx)
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(list))
	for _, s := range list {
		seen[s.Name] = true
		typ := svcgate.EventChanged
		if _, ok := h.Get(s.Name); !ok {
			typ = svcgate.EventAdded
		}
		h.apply(svcgate.Event{Type: typ, Service: s})
	}
	h.mu.Lock()
	var gone []svcgate.Service
	for name, s := range h.services {
		if !seen[name] {
			gone = append(gone, s)
		}
	}
	h.mu.Unlock()
	for _, s := range gone {
		h.apply(svcgate.Event{Type: svcgate.EventRemoved, Service: s})
	}
	return nil
}

// apply folds one backend event into the cache and, when it changes
// something, numbers and publishes it.
func (h *Hub) apply(ev svcgate.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	name := ev.Service.Name
	old, existed := h.services[name]
	// The backend's event type is a hint; what the event means to
	// subscribers follows from the cache, and so does Previous: the state
	// the hub last published, which a backend that missed a change could
	// report otherwise.
	switch ev.Type {
	case svcgate.EventRemoved:
		if !existed {
			return
		}
		delete(h.services, name)
		if ev.Service.State == "" {
			// Removals are often reported by name only (a D-Bus
			// UnitRemoved signal); publish the last known snapshot.
			ev.Service = old
		}
		ev.Previous = ""
	default:
		if existed && Equal(old, ev.Service) {
			return
		}
		h.services[name] = ev.Service
		if !existed {
			ev.Type, ev.Previous = svcgate.EventAdded, ""
		} else {
			ev.Type, ev.Previous = svcgate.EventChanged, old.State
		}
	}
	h.sorted = nil
	h.gen++
	if !h.loaded {
		// The first snapshot fills the cache; nothing changed, so nothing
		// is published.
		return
	}
	h.seq++
	ev.Seq = h.seq
	if ev.Time.IsZero() {
		ev.Time = h.opts.Now()
	}
	h.push(ev)
	for s := range h.subs {
		select {
		case s.ch <- ev:
		default:
			// The subscriber fell behind by a whole queue: cut it off
			// rather than block the hub; it resumes from the ring with
			// Last-Event-ID.
			h.unsubscribe(s)
		}
	}
	h.notify()
}

// notify wakes every Changed waiter. h.mu must be held.
func (h *Hub) notify() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// unsubscribe ends s. h.mu must be held.
func (h *Hub) unsubscribe(s *subscriber) {
	delete(h.subs, s)
	s.stop()
	close(s.ch)
}

func (h *Hub) push(ev svcgate.Event) {
	if len(h.ring) < h.opts.Buffer {
		h.ring = append(h.ring, ev)
		return
	}
	h.ring[h.ringHead] = ev
	h.ringHead = (h.ringHead + 1) % len(h.ring)
}

// setReady records readiness; only a change of it wakes Changed waiters,
// so that every poll of a backend that did not change does not.
func (h *Hub) setReady(ready, watching bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.loaded = h.loaded || ready
	if h.ready == ready && h.watching == watching {
		return
	}
	h.ready, h.watching = ready, watching
	h.notify()
}

func (h *Hub) closeSubscribers() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	for s := range h.subs {
		h.unsubscribe(s)
	}
}

// Ready reports whether the cache holds a current snapshot of the backend.
func (h *Hub) Ready() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ready
}

// Watching reports whether the cache is fed by the backend's own change
// notifications rather than by polling.
func (h *Hub) Watching() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.watching
}

// Services returns the generation of the cache and its services sorted by
// name. The slice is shared: callers must not modify it. The generation
// changes whenever any service does, so callers may cache what they derive
// from a generation.
func (h *Hub) Services() (generation uint64, services []svcgate.Service) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sorted == nil {
		h.sorted = make([]svcgate.Service, 0, len(h.services))
		for _, s := range h.services {
			h.sorted = append(h.sorted, s)
		}
		slices.SortFunc(h.sorted, func(a, b svcgate.Service) int { return strings.Compare(a.Name, b.Name) })
	}
	return h.gen, h.sorted
}

// Get returns the cached state of one service.
func (h *Hub) Get(name string) (svcgate.Service, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.services[name]
	return s, ok
}

// LastSeq returns the sequence number of the newest event.
func (h *Hub) LastSeq() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seq
}

// Subscribe returns the events with a sequence number above after: first
// those still in the resume buffer, then new ones as they happen; after 0
// asks for every event of this run. A new subscriber that wants only what
// happens from now on passes LastSeq. complete is false when events after after were
// already evicted, or after is from an earlier run of the agent, so the
// caller must re-list. The channel is closed when ctx ends, when the hub
// stops (at once when Run has already returned), or when the subscriber
// falls more than the subscriber queue behind.
func (h *Hub) Subscribe(ctx context.Context, after uint64) (events <-chan svcgate.Event, complete bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var backlog []svcgate.Event
	complete = true
	switch {
	case after > h.seq:
		complete = false
	default:
		backlog = h.since(after)
		complete = h.oldestSeq() <= after+1
	}
	s := &subscriber{ch: make(chan svcgate.Event, h.opts.SubscriberQueue+len(backlog))}
	for _, ev := range backlog {
		s.ch <- ev
	}
	if h.stopped {
		close(s.ch)
		return s.ch, complete
	}
	h.subs[s] = struct{}{}
	// Registered under h.mu so that s.stop is set before anything can
	// unsubscribe s; the function runs on its own goroutine.
	s.stop = context.AfterFunc(ctx, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[s]; ok {
			h.unsubscribe(s)
		}
	})
	return s.ch, complete
}

func (h *Hub) oldestSeq() uint64 {
	if len(h.ring) == 0 {
		return h.seq + 1
	}
	return h.ring[h.ringHead].Seq
}

// since returns the buffered events with Seq > after, oldest first.
func (h *Hub) since(after uint64) []svcgate.Event {
	var out []svcgate.Event
	n := len(h.ring)
	for i := 0; i < n; i++ {
		ev := h.ring[(h.ringHead+i)%n]
		if ev.Seq > after {
			out = append(out, ev)
		}
	}
	return out
}

// Changed returns a channel that is closed at the next change of the cache
// or of readiness.
func (h *Hub) Changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

// Equal reports whether two snapshots of a service are the same.
func Equal(a, b svcgate.Service) bool {
	return a.Name == b.Name && a.DisplayName == b.DisplayName && a.Description == b.Description &&
		a.State == b.State && a.SubState == b.SubState && a.StartType == b.StartType &&
		a.PID == b.PID && a.ExitCode == b.ExitCode && a.Since.Equal(b.Since) &&
		a.Backend == b.Backend && slices.Equal(a.Accepts, b.Accepts) &&
		slices.Equal(a.Dependencies, b.Dependencies)
}

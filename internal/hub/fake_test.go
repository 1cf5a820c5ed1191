package hub_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/hub"
)

// fakeBackend is an in-memory backend whose services a test sets directly.
// It cannot watch, so a hub over it polls; watchBackend adds Watch.
type fakeBackend struct {
	mu       sync.Mutex
	services map[string]svcgate.Service
	lists    int
	listErr  error
	gate     chan struct{} // when set, List waits until it is closed
	listing  chan struct{} // told (without blocking) whenever List is entered
}

var _ svcgate.Backend = (*fakeBackend)(nil)

func newFake(services ...svcgate.Service) *fakeBackend {
	b := &fakeBackend{services: make(map[string]svcgate.Service), listing: make(chan struct{}, 1000)}
	for _, s := range services {
		b.services[s.Name] = s
	}
	return b
}

func (b *fakeBackend) Name() string { return "fake" }

// List returns the services in map order, that is in no set order, as the
// contract allows.
func (b *fakeBackend) List(ctx context.Context) ([]svcgate.Service, error) {
	b.mu.Lock()
	b.lists++
	gate := b.gate
	b.mu.Unlock()
	select {
	case b.listing <- struct{}{}:
	default:
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.listErr != nil {
		return nil, b.listErr
	}
	out := make([]svcgate.Service, 0, len(b.services))
	for _, s := range b.services {
		out = append(out, s)
	}
	return out, nil
}

func (b *fakeBackend) Get(_ context.Context, name string) (svcgate.Service, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.services[name]
	if !ok {
		return svcgate.Service{}, svcgate.Errorf(svcgate.CodeServiceNotFound, "no service %s", name)
	}
	return s, nil
}

func (b *fakeBackend) Control(context.Context, string, svcgate.Action, svcgate.ControlOptions) (svcgate.ControlResult, error) {
	return svcgate.ControlResult{}, svcgate.Errorf(svcgate.CodeUnsupportedAction, "the hub never controls")
}

func (b *fakeBackend) put(s svcgate.Service) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.services[s.Name] = s
}

func (b *fakeBackend) remove(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.services, name)
}

// setGate makes List block until the returned function is called.
func (b *fakeBackend) setGate() (open func()) {
	g := make(chan struct{})
	b.mu.Lock()
	b.gate = g
	b.mu.Unlock()
	return sync.OnceFunc(func() {
		b.mu.Lock()
		b.gate = nil
		b.mu.Unlock()
		close(g)
	})
}

// waitListed waits until List has been entered n more times.
func (b *fakeBackend) waitListed(t testing.TB, n int) {
	t.Helper()
	for range n {
		select {
		case <-b.listing:
		case <-time.After(2 * time.Second):
			t.Fatal("the hub did not list the backend")
		}
	}
}

// drainListed forgets the List calls made so far.
func (b *fakeBackend) drainListed() {
	for {
		select {
		case <-b.listing:
		default:
			return
		}
	}
}

// watchBackend is a fakeBackend that can watch. Every Watch call hands the
// test a feed through which it sends events or simulates losing the bus.
type watchBackend struct {
	*fakeBackend
	watchErr error // returned by every Watch when set (set before Run)
	feeds    chan *feed
}

var _ svcgate.Watcher = (*watchBackend)(nil)

func newWatchFake(services ...svcgate.Service) *watchBackend {
	return &watchBackend{fakeBackend: newFake(services...), feeds: make(chan *feed, 16)}
}

// feed is one Watch channel as the test drives it. Events go through an
// unbuffered forwarder, so a send returns only once the hub has taken the
// event before it.
type feed struct {
	in   chan svcgate.Event
	lost chan struct{}
	lose func()
}

func (b *watchBackend) Watch(ctx context.Context) (<-chan svcgate.Event, error) {
	if b.watchErr != nil {
		return nil, b.watchErr
	}
	lost := make(chan struct{})
	f := &feed{in: make(chan svcgate.Event), lost: lost, lose: sync.OnceFunc(func() { close(lost) })}
	out := make(chan svcgate.Event)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case <-lost:
				return
			case ev := <-f.in:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				case <-lost:
					return
				}
			}
		}
	}()
	b.feeds <- f
	return out, nil
}

// nextFeed returns the feed of the hub's next Watch call.
func (b *watchBackend) nextFeed(t testing.TB) *feed {
	t.Helper()
	select {
	case f := <-b.feeds:
		return f
	case <-time.After(2 * time.Second):
		t.Fatal("the hub did not watch the backend")
		return nil
	}
}

// send hands events to the hub, failing the test if the hub does not take
// them: a hub that blocks on a subscriber fails here.
func (f *feed) send(t testing.TB, evs ...svcgate.Event) {
	t.Helper()
	for _, ev := range evs {
		select {
		case f.in <- ev:
		case <-time.After(2 * time.Second):
			t.Fatalf("the hub did not take event %+v", ev)
		}
	}
}

// flush returns once the hub has applied every event sent before: the
// forwarder takes a second event only after the hub took the first, and the
// hub takes the next one only after applying the previous. The events sent
// remove a service that never existed, which changes nothing.
func (f *feed) flush(t testing.TB) {
	t.Helper()
	noop := svcgate.Event{Type: svcgate.EventRemoved, Service: svcgate.Service{Name: "never-existed"}}
	f.send(t, noop, noop, noop)
}

func svc(name string, state svcgate.State) svcgate.Service {
	return svcgate.Service{
		Name: name, DisplayName: "The " + name, State: state, StartType: svcgate.StartManual,
		Accepts: []svcgate.Accept{svcgate.AcceptStop}, Backend: "fake",
	}
}

func changed(s svcgate.Service) svcgate.Event {
	return svcgate.Event{Type: svcgate.EventChanged, Service: s}
}

// runHub runs a hub over b until the test ends. stop cancels it and
// returns what Run returned.
func runHub(t *testing.T, b svcgate.Backend, opts hub.Options) (h *hub.Hub, stop func() error) {
	t.Helper()
	h = hub.New(b, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	var err error
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err = <-done:
		case <-time.After(2 * time.Second):
			err = errors.New("Run did not return after its context ended")
		}
		return err
	})
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return h, stop
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitReady(t testing.TB, h *hub.Hub) {
	t.Helper()
	waitFor(t, "the hub is ready", h.Ready)
}

// recv returns the next event of a subscription, failing if none comes or
// the subscription ends.
func recv(t testing.TB, ch <-chan svcgate.Event) svcgate.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed; want an event")
		}
		return ev
	case <-time.After(2 * time.Second):
		t.Fatal("no event within 2s")
	}
	return svcgate.Event{}
}

// recvN returns the next n events.
func recvN(t testing.TB, ch <-chan svcgate.Event, n int) []svcgate.Event {
	t.Helper()
	out := make([]svcgate.Event, 0, n)
	for range n {
		out = append(out, recv(t, ch))
	}
	return out
}

// queued returns the events already in a subscription's channel without
// waiting for more, and whether the channel is closed.
func queued(ch <-chan svcgate.Event) (evs []svcgate.Event, closed bool) {
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return evs, true
			}
			evs = append(evs, ev)
		default:
			return evs, false
		}
	}
}

// drainUntilClosed returns the events left in a subscription once it is
// closed, failing if it is not closed within 2s.
func drainUntilClosed(t testing.TB, ch <-chan svcgate.Event) []svcgate.Event {
	t.Helper()
	var out []svcgate.Event
	timeout := time.After(2 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, ev)
		case <-timeout:
			t.Fatal("subscription not closed within 2s")
		}
	}
}

func seqs(evs []svcgate.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

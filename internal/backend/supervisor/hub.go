package supervisor

import (
	"context"
	"sync"

	"github.com/svcgate/svcgate"
)

// maxQueued bounds the events queued for one watcher that does not read.
// Past it the watcher's channel is closed, which the Watcher contract
// defines as "reload a snapshot and watch again": an event is never lost
// silently, and a stuck consumer cannot make the agent run out of memory.
const maxQueued = 1 << 16

// hub fans events out to watchers. Publishing never blocks: each watcher
// has its own queue and a goroutine that feeds its channel, so a slow
// watcher delays nobody, not even the program actors that publish.
type hub struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	wake chan struct{} // capacity 1: "the queue changed"

	mu       sync.Mutex
	queue    []svcgate.Event
	overflow bool
	closed   bool // the hub closed: drain the queue, then close the channel
}

func newHub() *hub { return &hub{subs: make(map[*subscriber]struct{})} }

// publish queues ev for every current watcher, in call order.
func (h *hub) publish(ev svcgate.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.mu.Lock()
		if len(s.queue) >= maxQueued {
			s.overflow = true
		} else {
			s.queue = append(s.queue, ev)
		}
		s.mu.Unlock()
		s.notify()
	}
}

// close ends every watcher once it has been handed the events queued so
// far, and refuses new ones.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.notify()
	}
}

func (s *subscriber) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// watch registers a watcher whose channel closes when ctx ends, when the
// hub closes (after the queued events) or when the watcher falls more than
// maxQueued events behind.
func (h *hub) watch(ctx context.Context) (<-chan svcgate.Event, error) {
	s := &subscriber{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, svcgate.Errorf(svcgate.CodeNotReady, "the supervisor has shut down")
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()

	out := make(chan svcgate.Event, 64)
	go func() {
		defer close(out)
		defer func() {
			h.mu.Lock()
			delete(h.subs, s)
			h.mu.Unlock()
		}()
		for {
			s.mu.Lock()
			batch, overflow, closed := s.queue, s.overflow, s.closed
			s.queue = nil
			s.mu.Unlock()
			if overflow {
				return
			}
			for _, ev := range batch {
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
			if closed {
				if len(batch) == 0 {
					return
				}
				continue // drain what was queued before the close
			}
			select {
			case <-s.wake:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

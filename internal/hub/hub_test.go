package hub_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/hub"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func fixedNow() time.Time { return t0 }

func names(list []svcgate.Service) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.Name
	}
	return out
}

func TestFirstSnapshotFillsTheCacheWithoutPublishingEvents(t *testing.T) {
	b := newWatchFake(svc("web", svcgate.StateRunning), svc("db", svcgate.StateStopped))
	h := hub.New(b, hub.Options{})
	// Subscribed before the first snapshot: it must not see the snapshot
	// as a burst of added events.
	sub, complete := h.Subscribe(t.Context(), 0)
	if !complete {
		t.Error("Subscribe(0) before any event: complete = false, want true")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	waitReady(t, h)
	if !h.Watching() {
		t.Error("Watching() = false for a backend that watches")
	}
	if _, list := h.Services(); !slices.Equal(names(list), []string{"db", "web"}) {
		t.Errorf("Services() = %v, want [db web]", names(list))
	}
	if got := h.LastSeq(); got != 0 {
		t.Errorf("LastSeq() after the first snapshot = %d, want 0", got)
	}
	if evs, _ := queued(sub); len(evs) != 0 {
		t.Errorf("the first snapshot published %d events, want none", len(evs))
	}

	b.nextFeed(t).send(t, changed(svc("web", svcgate.StateStopped)))
	ev := recv(t, sub)
	if ev.Seq != 1 || ev.Service.Name != "web" || ev.Service.State != svcgate.StateStopped {
		t.Errorf("first event = seq %d %s %s, want seq 1 web stopped", ev.Seq, ev.Service.Name, ev.Service.State)
	}
}

func TestChangesAreNumberedInOrderAndPublishedToEverySubscriber(t *testing.T) {
	b := newWatchFake(svc("web", svcgate.StateRunning), svc("db", svcgate.StateStopped))
	h, _ := runHub(t, b, hub.Options{Now: fixedNow})
	waitReady(t, h)
	f := b.nextFeed(t)

	var subs []<-chan svcgate.Event
	for range 3 {
		ch, _ := h.Subscribe(t.Context(), 0)
		subs = append(subs, ch)
	}
	// The backend's event types are hints: an event about an unknown
	// service is an addition, and a removal carrying only the name is
	// published with the last known snapshot. Previous is the state the
	// hub last published, whatever the backend claims.
	dbRunning := svc("db", svcgate.StateRunning)
	cache := svc("cache", svcgate.StateRunning)
	f.send(t,
		svcgate.Event{Type: svcgate.EventChanged, Service: dbRunning, Previous: svcgate.StateStartPending},
		svcgate.Event{Type: svcgate.EventChanged, Service: cache},
		svcgate.Event{Type: svcgate.EventRemoved, Service: svcgate.Service{Name: "web"}},
	)
	want := []svcgate.Event{
		{Seq: 1, Time: t0, Type: svcgate.EventChanged, Service: dbRunning, Previous: svcgate.StateStopped},
		{Seq: 2, Time: t0, Type: svcgate.EventAdded, Service: cache},
		{Seq: 3, Time: t0, Type: svcgate.EventRemoved, Service: svc("web", svcgate.StateRunning)},
	}
	for i, sub := range subs {
		got := recvN(t, sub, 3)
		for j := range want {
			if !sameEvent(got[j], want[j]) {
				t.Errorf("subscriber %d event %d = %+v, want %+v", i, j, got[j], want[j])
			}
		}
	}
	if _, ok := h.Get("web"); ok {
		t.Error("Get(web) after its removal found it")
	}
	if s, ok := h.Get("cache"); !ok || s.State != svcgate.StateRunning {
		t.Errorf("Get(cache) = %+v, %v; want it running", s, ok)
	}
	if got := h.LastSeq(); got != 3 {
		t.Errorf("LastSeq() = %d, want 3", got)
	}
}

func sameEvent(a, b svcgate.Event) bool {
	return a.Seq == b.Seq && a.Time.Equal(b.Time) && a.Type == b.Type && a.Previous == b.Previous &&
		hub.Equal(a.Service, b.Service)
}

func TestEventsThatChangeNothingAreNotPublished(t *testing.T) {
	web := svc("web", svcgate.StateRunning)
	b := newWatchFake(web)
	h, _ := runHub(t, b, hub.Options{})
	waitReady(t, h)
	f := b.nextFeed(t)
	sub, _ := h.Subscribe(t.Context(), 0)
	gen, _ := h.Services()

	noAccepts := web
	noAccepts.Accepts = nil
	webNil := svc("web", svcgate.StateRunning)
	webNil.Dependencies = []string{}
	for _, ev := range []svcgate.Event{
		changed(web),
		{Type: svcgate.EventAdded, Service: web},
		{Type: svcgate.EventRemoved, Service: svcgate.Service{Name: "ghost"}},
		changed(webNil), // an empty list is the same as none
	} {
		f.send(t, ev)
	}
	f.flush(t)
	if evs, _ := queued(sub); len(evs) != 0 {
		t.Errorf("no-op events published %d events: %+v", len(evs), evs)
	}
	if g, _ := h.Services(); g != gen {
		t.Errorf("generation moved from %d to %d on no-op events", gen, g)
	}

	f.send(t, changed(noAccepts))
	if ev := recv(t, sub); ev.Seq != 1 || ev.Service.Accepts != nil {
		t.Errorf("after no-ops, first event = seq %d accepts %v; want seq 1 with no accepts", ev.Seq, ev.Service.Accepts)
	}
}

func TestServicesAreSortedAndTheGenerationMovesOnlyOnChange(t *testing.T) {
	b := newWatchFake(svc("b", svcgate.StateRunning), svc("c", svcgate.StateRunning), svc("a", svcgate.StateStopped))
	h, _ := runHub(t, b, hub.Options{})
	waitReady(t, h)
	f := b.nextFeed(t)

	g1, before := h.Services()
	if !slices.Equal(names(before), []string{"a", "b", "c"}) {
		t.Fatalf("Services() = %v, want [a b c]", names(before))
	}
	if g2, _ := h.Services(); g2 != g1 {
		t.Errorf("generation moved from %d to %d without a change", g1, g2)
	}
	f.send(t, changed(svc("b", svcgate.StateRunning)))
	f.flush(t)
	if g2, _ := h.Services(); g2 != g1 {
		t.Errorf("generation moved from %d to %d on a no-op", g1, g2)
	}

	f.send(t, changed(svc("b", svcgate.StateStopped)), changed(svc("aa", svcgate.StateRunning)))
	f.flush(t)
	g3, after := h.Services()
	if g3 == g1 {
		t.Errorf("generation stayed %d after a change", g1)
	}
	if !slices.Equal(names(after), []string{"a", "aa", "b", "c"}) {
		t.Errorf("Services() = %v, want [a aa b c]", names(after))
	}
	if after[2].State != svcgate.StateStopped {
		t.Errorf("Services()[b].State = %s, want stopped", after[2].State)
	}
	// The slice handed out before is a snapshot: later changes do not
	// rewrite it under its holder.
	if before[1].Name != "b" || before[1].State != svcgate.StateRunning {
		t.Errorf("the earlier Services() slice changed to %+v", before[1])
	}
}

// publish sends n changes of service "s" (its PID counts up, so each one is
// a change) and waits until the hub has numbered them all.
func publish(t testing.TB, h *hub.Hub, f *feed, n int) {
	t.Helper()
	last := h.LastSeq()
	for range n {
		last++
		s := svc("s", svcgate.StateRunning)
		s.PID = int(last) + 1000
		f.send(t, changed(s))
	}
	waitFor(t, fmt.Sprintf("LastSeq reaches %d", last), func() bool { return h.LastSeq() == last })
}

func TestSubscribeAfterLastSeqGetsOnlyNewEvents(t *testing.T) {
	b := newWatchFake(svc("s", svcgate.StateRunning))
	h, _ := runHub(t, b, hub.Options{})
	waitReady(t, h)
	f := b.nextFeed(t)
	publish(t, h, f, 3)

	sub, complete := h.Subscribe(t.Context(), h.LastSeq())
	if !complete {
		t.Error("Subscribe(LastSeq) complete = false, want true")
	}
	if evs, _ := queued(sub); len(evs) != 0 {
		t.Errorf("Subscribe(LastSeq) replayed %v, want nothing", seqs(evs))
	}
	publish(t, h, f, 1)
	if ev := recv(t, sub); ev.Seq != 4 {
		t.Errorf("first event of Subscribe(LastSeq) = seq %d, want 4", ev.Seq)
	}
}

func TestSubscribeAfterReplaysTheBufferThenLiveEvents(t *testing.T) {
	b := newWatchFake(svc("s", svcgate.StateRunning))
	h, _ := runHub(t, b, hub.Options{})
	waitReady(t, h)
	f := b.nextFeed(t)
	publish(t, h, f, 5)

	sub, complete := h.Subscribe(t.Context(), 2)
	if !complete {
		t.Error("Subscribe(2) with events 1..5 buffered: complete = false, want true")
	}
	publish(t, h, f, 2)
	if got := seqs(recvN(t, sub, 5)); !slices.Equal(got, []uint64{3, 4, 5, 6, 7}) {
		t.Errorf("Subscribe(2) got seqs %v, want [3 4 5 6 7]", got)
	}
}

// firstSeq returns the sequence number a subscription made with after must
// deliver next: every event after it, 0 included, is still buffered here.
func firstSeq(t testing.TB, _ <-chan svcgate.Event, after uint64) uint64 {
	t.Helper()
	return after + 1
}

// Subscribing while events flow must neither lose the events published
// between the replay and the live feed nor deliver one twice.
func TestSubscribeWhileEventsFlowHasNoGapAndNoDuplicate(t *testing.T) {
	b := newWatchFake(svc("s", svcgate.StateRunning))
	h, _ := runHub(t, b, hub.Options{})
	waitReady(t, h)
	f := b.nextFeed(t)
	const total = 300
	go func() {
		for i := range total {
			s := svc("s", svcgate.StateRunning)
			s.PID = i + 1
			select {
			case f.in <- changed(s):
			case <-time.After(2 * time.Second):
				return // the readers below fail on the missing events
			}
		}
	}()

	var wg sync.WaitGroup
	for i := range 20 {
		// Subscribe at different points of the stream, some after a
		// sequence number a little behind the newest.
		time.Sleep(time.Duration(i%4) * 200 * time.Microsecond)
		after := h.LastSeq()
		if after > 3 {
			after -= uint64(i % 3)
		}
		sub, complete := h.Subscribe(t.Context(), after)
		if !complete {
			t.Errorf("Subscribe(%d): complete = false with a large buffer", after)
		}
		wg.Go(func() {
			want := firstSeq(t, sub, after)
			for want <= total {
				ev := recv(t, sub)
				if ev.Seq != want {
					t.Errorf("subscriber after %d: got seq %d, want %d", after, ev.Seq, want)
					return
				}
				want++
			}
		})
	}
	wg.Wait()
}

func TestSubscribeReportsIncompleteWhenEventsAreLost(t *testing.T) {
	b := newWatchFake(svc("s", svcgate.StateRunning))
	h, _ := runHub(t, b, hub.Options{Buffer: 3})
	waitReady(t, h)
	publish(t, h, b.nextFeed(t), 6) // the buffer keeps 4, 5, 6

	for _, tc := range []struct {
		name     string
		after    uint64
		complete bool
		replay   []uint64
	}{
		{"after 0 asks for everything, but 1..3 were evicted", 0, false, []uint64{4, 5, 6}},
		{"the event after N was evicted", 1, false, []uint64{4, 5, 6}},
		{"the event after N was evicted, just", 2, false, []uint64{4, 5, 6}},
		{"the event after N is the oldest buffered", 3, true, []uint64{4, 5, 6}},
		{"N is the newest event", 6, true, nil},
		{"N is from an earlier run of the agent", 7, false, nil},
		{"N is far in the future", 1 << 40, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub, complete := h.Subscribe(t.Context(), tc.after)
			if complete != tc.complete {
				t.Errorf("Subscribe(%d) complete = %v, want %v", tc.after, complete, tc.complete)
			}
			evs, closed := queued(sub)
			if got := seqs(evs); !slices.Equal(got, tc.replay) {
				t.Errorf("Subscribe(%d) replayed %v, want %v", tc.after, got, tc.replay)
			}
			if closed {
				t.Errorf("Subscribe(%d) returned a closed channel", tc.after)
			}
		})
	}
}

func TestSlowSubscriberIsCutOffWithoutBlockingOthers(t *testing.T) {
	b := newWatchFake(svc("s", svcgate.StateRunning))
	h, _ := runHub(t, b, hub.Options{SubscriberQueue: 2})
	waitReady(t, h)
	f := b.nextFeed(t)
	slow, _ := h.Subscribe(t.Context(), 0)
	fast, _ := h.Subscribe(t.Context(), 0)

	for i := range 10 {
		s := svc("s", svcgate.StateRunning)
		s.PID = i + 1
		f.send(t, changed(s)) // fails if the hub blocks on the slow subscriber
		if ev := recv(t, fast); ev.Seq != uint64(i+1) {
			t.Fatalf("fast subscriber got seq %d, want %d", ev.Seq, i+1)
		}
	}
	// The slow one keeps what fitted in its queue, then sees the end of
	// the subscription, and resumes from there with Subscribe(after).
	if got := seqs(drainUntilClosed(t, slow)); !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("slow subscriber got %v before being cut off, want [1 2]", got)
	}
	resumed, complete := h.Subscribe(t.Context(), 2)
	if !complete {
		t.Error("resuming after 2 with everything buffered: complete = false")
	}
	if got := seqs(recvN(t, resumed, 8)); got[0] != 3 || got[7] != 10 {
		t.Errorf("resumed subscription got %v, want 3..10", got)
	}
}

func TestCancellingTheContextClosesTheSubscription(t *testing.T) {
	b := newWatchFake(svc("s", svcgate.StateRunning))
	h, _ := runHub(t, b, hub.Options{})
	waitReady(t, h)
	f := b.nextFeed(t)

	ctx, cancel := context.WithCancel(t.Context())
	sub, _ := h.Subscribe(ctx, 0)
	other, _ := h.Subscribe(t.Context(), 0)
	cancel()
	if evs := drainUntilClosed(t, sub); len(evs) != 0 {
		t.Errorf("cancelled subscription got %v", seqs(evs))
	}
	publish(t, h, f, 1)
	if ev := recv(t, other); ev.Seq != 1 {
		t.Errorf("the other subscription got seq %d, want 1", ev.Seq)
	}

	done, cancelDone := context.WithCancel(t.Context())
	cancelDone()
	already, _ := h.Subscribe(done, 0)
	drainUntilClosed(t, already)
}

func TestBackendWithoutWatchIsPolledAndDiffed(t *testing.T) {
	b := newFake(svc("web", svcgate.StateRunning), svc("db", svcgate.StateRunning))
	h, _ := runHub(t, b, hub.Options{PollInterval: 5 * time.Millisecond})
	waitReady(t, h)
	if h.Watching() {
		t.Error("Watching() = true for a polled backend")
	}
	sub, _ := h.Subscribe(t.Context(), 0)

	// Polls that find nothing new publish nothing and leave the cache, its
	// generation and Changed alone.
	gen, _ := h.Services()
	changedCh := h.Changed()
	b.drainListed()
	b.waitListed(t, 4)
	if g, _ := h.Services(); g != gen {
		t.Errorf("generation moved from %d to %d on polls without change", gen, g)
	}
	if isClosed(changedCh) {
		t.Error("Changed() fired on polls that found no change")
	}

	b.put(svc("web", svcgate.StateStopped))
	b.put(svc("cache", svcgate.StateStartPending))
	b.remove("db")
	evs := recvN(t, sub, 3)
	if got := seqs(evs); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Errorf("seqs = %v, want [1 2 3]", got)
	}
	byName := make(map[string]svcgate.Event)
	for _, ev := range evs {
		byName[ev.Service.Name] = ev
	}
	for name, want := range map[string]struct {
		typ      svcgate.EventType
		state    svcgate.State
		previous svcgate.State
	}{
		"web":   {svcgate.EventChanged, svcgate.StateStopped, svcgate.StateRunning},
		"cache": {svcgate.EventAdded, svcgate.StateStartPending, ""},
		"db":    {svcgate.EventRemoved, svcgate.StateRunning, ""},
	} {
		ev := byName[name]
		if ev.Type != want.typ || ev.Service.State != want.state || ev.Previous != want.previous {
			t.Errorf("%s: event %s %s (previous %q), want %s %s (previous %q)",
				name, ev.Type, ev.Service.State, ev.Previous, want.typ, want.state, want.previous)
		}
	}
	if !isClosed(changedCh) {
		t.Error("Changed() did not fire on a change found by polling")
	}
}

func TestWatchNotSupportedFallsBackToPolling(t *testing.T) {
	// A decorator (metrics, audit) may implement Watch for every backend
	// and report unsupported for one that cannot.
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"unsupported_action", svcgate.Errorf(svcgate.CodeUnsupportedAction, "cannot watch")},
		{"errors.ErrUnsupported", fmt.Errorf("watch: %w", errors.ErrUnsupported)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newWatchFake(svc("web", svcgate.StateRunning))
			b.watchErr = tc.err
			h, _ := runHub(t, b, hub.Options{PollInterval: 5 * time.Millisecond})
			waitReady(t, h)
			if h.Watching() {
				t.Error("Watching() = true though Watch is not supported")
			}
			sub, _ := h.Subscribe(t.Context(), 0)
			b.put(svc("web", svcgate.StateStopped))
			if ev := recv(t, sub); ev.Service.State != svcgate.StateStopped {
				t.Errorf("event = %+v, want web stopped", ev)
			}
		})
	}
}

func TestLostWatchMakesTheHubUnreadyUntilItRelists(t *testing.T) {
	b := newWatchFake(svc("web", svcgate.StateRunning), svc("db", svcgate.StateRunning))
	h, _ := runHub(t, b, hub.Options{})
	waitReady(t, h)
	f := b.nextFeed(t)
	sub, _ := h.Subscribe(t.Context(), 0)
	stopping := svc("web", svcgate.StateStopPending)
	b.put(stopping)
	f.send(t, changed(stopping))
	recv(t, sub) // seq 1

	open := b.setGate()
	defer open()
	b.drainListed()
	f.lose() // the D-Bus connection dropped
	waitFor(t, "the hub is not ready", func() bool { return !h.Ready() })
	f2 := b.nextFeed(t) // the hub watches again first, so that nothing is missed...
	b.waitListed(t, 1)  // ...then lists; hold the listing
	if h.Ready() {
		t.Error("Ready() = true before the hub re-listed")
	}
	// What changed while the bus was down.
	b.put(svc("web", svcgate.StateFailed))
	b.put(svc("cache", svcgate.StateRunning))
	b.remove("db")
	open()
	waitReady(t, h)
	if !h.Watching() {
		t.Error("Watching() = false after re-watching")
	}

	evs := recvN(t, sub, 3)
	if got := seqs(evs); !slices.Equal(got, []uint64{2, 3, 4}) {
		t.Errorf("seqs = %v, want [2 3 4]", got)
	}
	got := make(map[string]string)
	for _, ev := range evs {
		got[ev.Service.Name] = fmt.Sprintf("%s %s", ev.Type, ev.Service.State)
	}
	want := map[string]string{"web": "changed failed", "cache": "added running", "db": "removed running"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events after re-list = %v, want %v", got, want)
	}
	for _, ev := range evs {
		if ev.Service.Name == "web" && ev.Previous != svcgate.StateStopPending {
			t.Errorf("web's Previous = %q, want stop_pending", ev.Previous)
		}
	}
	// The new feed carries on the numbering.
	f2.send(t, changed(svc("web", svcgate.StateStartPending)))
	if ev := recv(t, sub); ev.Seq != 5 || ev.Previous != svcgate.StateFailed {
		t.Errorf("event from the new feed = seq %d previous %q, want seq 5 previous failed", ev.Seq, ev.Previous)
	}

}

func TestRunReturnsWhenTheContextEndsAndClosesSubscribers(t *testing.T) {
	b := newWatchFake(svc("web", svcgate.StateRunning))
	h, stop := runHub(t, b, hub.Options{})
	waitReady(t, h)
	sub, _ := h.Subscribe(t.Context(), 0)
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	drainUntilClosed(t, sub)
	if h.Ready() {
		t.Error("Ready() = true after Run returned")
	}
	// A subscription made after the hub stopped ends at once instead of
	// hanging until its context ends.
	late, _ := h.Subscribe(t.Context(), 0)
	drainUntilClosed(t, late)
}

func TestRunReturnsWhenTheContextEndsWhileTheBackendIsDown(t *testing.T) {
	b := newFake()
	b.listErr = svcgate.Errorf(svcgate.CodeBackendError, "SCM unavailable")
	h, stop := runHub(t, b, hub.Options{})
	b.waitListed(t, 1)
	if h.Ready() {
		t.Error("Ready() = true though listing fails")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestChangedFiresOnChange(t *testing.T) {
	b := newWatchFake(svc("web", svcgate.StateRunning))
	h, _ := runHub(t, b, hub.Options{})
	waitReady(t, h)
	f := b.nextFeed(t)

	ch := h.Changed()
	f.send(t, changed(svc("web", svcgate.StateRunning)))
	f.flush(t)
	if isClosed(ch) {
		t.Error("Changed() fired on an event that changed nothing")
	}
	f.send(t, changed(svc("web", svcgate.StateStopPending)))
	select {
	case <-ch:
	case <-time.After(2 * time.Second):
		t.Fatal("Changed() did not fire on a change")
	}
	if isClosed(h.Changed()) {
		t.Error("Changed() after the change is already closed")
	}
}

// Run under -race: subscribers come and go and read the cache while
// several producers feed the hub.
func TestConcurrentSubscribersAndProducers(t *testing.T) {
	b := newWatchFake()
	h, _ := runHub(t, b, hub.Options{})
	waitReady(t, h)
	f := b.nextFeed(t)
	const producers, perProducer = 4, 100
	const total = producers * perProducer

	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				s := svc(fmt.Sprintf("p%d", p), svcgate.StateRunning)
				s.PID = i + 1
				f.send(t, changed(s))
			}
		})
	}
	for i := range 8 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			after := h.LastSeq()
			sub, _ := h.Subscribe(ctx, after)
			for want := firstSeq(t, sub, after); want <= total; want++ {
				if i%4 == 3 && want > after+20 {
					return // leaves early; the hub must drop it
				}
				if ev := recv(t, sub); ev.Seq != want {
					t.Errorf("subscriber after %d: seq %d, want %d", after, ev.Seq, want)
					return
				}
			}
		})
	}
	stopReaders := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stopReaders:
					return
				default:
				}
				_, list := h.Services()
				for _, s := range list {
					h.Get(s.Name)
				}
				h.Ready()
				h.Changed()
				h.LastSeq()
				runtime.Gosched() // leave the producers room on one CPU
			}
		})
	}
	wg.Wait()
	close(stopReaders)
	readers.Wait()
	if got := h.LastSeq(); got != total {
		t.Errorf("LastSeq() = %d, want %d", got, total)
	}
	if _, list := h.Services(); len(list) != producers {
		t.Errorf("len(Services()) = %d, want %d", len(list), producers)
	}
}

func TestEqual(t *testing.T) {
	base := svc("web", svcgate.StateRunning)
	base.Since = t0
	for _, tc := range []struct {
		name   string
		change func(*svcgate.Service)
		equal  bool
	}{
		{"identical", func(*svcgate.Service) {}, true},
		{"same instant in another zone", func(s *svcgate.Service) { s.Since = t0.In(time.FixedZone("x", 3600)) }, true},
		{"empty and missing dependencies", func(s *svcgate.Service) { s.Dependencies = []string{} }, true},
		{"state", func(s *svcgate.Service) { s.State = svcgate.StateStopped }, false},
		{"sub state", func(s *svcgate.Service) { s.SubState = "reloading" }, false},
		{"pid", func(s *svcgate.Service) { s.PID = 7 }, false},
		{"exit code", func(s *svcgate.Service) { s.ExitCode = 1 }, false},
		{"since", func(s *svcgate.Service) { s.Since = t0.Add(time.Second) }, false},
		{"start type", func(s *svcgate.Service) { s.StartType = svcgate.StartAuto }, false},
		{"display name", func(s *svcgate.Service) { s.DisplayName = "x" }, false},
		{"description", func(s *svcgate.Service) { s.Description = "x" }, false},
		{"accepts", func(s *svcgate.Service) { s.Accepts = append(s.Accepts, svcgate.AcceptReload) }, false},
		{"dependencies", func(s *svcgate.Service) { s.Dependencies = []string{"db"} }, false},
		{"backend", func(s *svcgate.Service) { s.Backend = "other" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := base
			b := base
			b.Accepts = slices.Clone(base.Accepts)
			b.Dependencies = slices.Clone(base.Dependencies)
			tc.change(&b)
			if got := hub.Equal(a, b); got != tc.equal {
				t.Errorf("Equal = %v, want %v", got, tc.equal)
			}
		})
	}
}

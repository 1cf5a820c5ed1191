// Package backendtest is the conformance suite every svcgate.Backend must
// pass: the supervisor with real processes, systemd with units in a
// temporary manager, the Windows SCM under Wine. A backend plugs in through
// a Harness that builds it and hands out fixture services; Run then checks
// listing, name validation, idempotent control, pause, failures, events
// and concurrent control, always through the public svcgate contract.
//
// The suite waits for states in one place, WaitFor, by polling Get: a
// backend's own tests should use it too rather than sleeping.
package backendtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/svcgate/svcgate"
)

// FixtureKind names a kind of service the suite needs the backend to
// provide.
type FixtureKind string

// The fixture kinds. Every fixture is stopped when handed out.
const (
	// LongRunning stays up once started until it is stopped, and stops
	// within a second of being asked.
	LongRunning FixtureKind = "long_running"
	// Failing exits with a non-zero status right after it starts, and
	// then ends failed or stopped, not restarted forever.
	Failing FixtureKind = "failing"
	// Pausable is a LongRunning service that accepts pause and continue;
	// it is asked for only when Capabilities.Pause is set.
	Pausable FixtureKind = "pausable"
)

// Capabilities say which optional parts of the contract the backend under
// test has, so the suite checks them rather than skipping them silently.
type Capabilities struct {
	// Pause: Pausable fixtures can be paused and continued. Without it the
	// suite checks that pause fails with unsupported_action.
	Pause bool
	// Watch: the backend implements svcgate.Watcher.
	Watch bool
	// Parallel: each Fixture call returns a distinct service, so the
	// subtests may run in parallel.
	Parallel bool
}

// Harness plugs a backend into the suite.
type Harness struct {
	// New returns the backend under test, ready for Control. Run calls it
	// once; shutting the backend down belongs in t.Cleanup.
	New func(t *testing.T) svcgate.Backend
	// Fixture returns the name of a stopped service of the given kind in
	// b, creating it if the backend can (removal belongs in t.Cleanup).
	// It gets b so that a harness can create services through the
	// backend itself (svcgate.Configurer) or beside it (unit files, the
	// SCM), whichever the backend allows.
	Fixture func(t *testing.T, b svcgate.Backend, kind FixtureKind) string
	// Caps are the backend's optional capabilities.
	Caps Capabilities
	// Settle bounds every wait for a service to reach a state; 0 means
	// 10s. Raise it for slow managers (Wine).
	Settle time.Duration
}

// PollInterval is how often WaitFor queries the backend.
const PollInterval = 5 * time.Millisecond

// Run runs the conformance suite against the backend h builds. Subtest
// names read as the specification they check.
func Run(t *testing.T, h Harness) {
	if h.New == nil || h.Fixture == nil {
		t.Fatal("backendtest: Harness.New and Harness.Fixture are required")
	}
	s := &suite{h: h, b: h.New(t), settle: h.Settle}
	if s.settle == 0 {
		s.settle = 10 * time.Second
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"List includes every fixture with a valid state and the backend's name", s.testList},
		{"Get returns what List returns", s.testGetMatchesList},
		{"Get of an unknown service fails with service_not_found", s.testGetUnknown},
		{"Control of an unknown service fails with service_not_found", s.testControlUnknown},
		{"invalid names fail with invalid_name", s.testInvalidNames},
		{"start makes a stopped service running", s.testStart},
		{"a second start reports no change", s.testStartTwice},
		{"stop makes a running service stopped", s.testStop},
		{"a second stop reports no change", s.testStopTwice},
		{"restart runs the service again with a new PID", s.testRestart},
		{"pause and continue", s.testPauseContinue},
		{"pause of a stopped service fails", s.testPauseStopped},
		{"a service that fails on start ends down with a non-zero exit code", s.testFailing},
		{"Watch reports the start and stop transitions in order", s.testWatchOrder},
		{"every concurrent watcher receives every event", s.testWatchFanOut},
		{"concurrent controls on one service leave it consistent", s.testConcurrentControl},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if h.Caps.Parallel {
				t.Parallel()
			}
			tc.run(t)
		})
	}
}

type suite struct {
	h      Harness
	b      svcgate.Backend
	settle time.Duration
}

// fixture gets a service of kind and makes sure it is stopped again when
// the test ends, so tests do not leak running services into each other.
func (s *suite) fixture(t *testing.T, kind FixtureKind) string {
	t.Helper()
	name := s.h.Fixture(t, s.b, kind)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.settle)
		defer cancel()
		_, _ = s.b.Control(ctx, name, svcgate.ActionStop, svcgate.ControlOptions{})
		for ctx.Err() == nil {
			if svc, err := s.b.Get(ctx, name); err != nil || svc.State.Down() {
				return
			}
			time.Sleep(PollInterval)
		}
	})
	return name
}

func (s *suite) control(t *testing.T, name string, a svcgate.Action) svcgate.ControlResult {
	t.Helper()
	r, err := s.b.Control(context.Background(), name, a, svcgate.ControlOptions{})
	if err != nil {
		t.Fatalf("%s %s: %v", a, name, err)
	}
	return r
}

// started starts a fixture of kind and waits until it runs.
func (s *suite) started(t *testing.T, kind FixtureKind) (string, svcgate.Service) {
	t.Helper()
	name := s.fixture(t, kind)
	s.control(t, name, svcgate.ActionStart)
	return name, WaitState(t, s.b, name, svcgate.StateRunning, s.settle)
}

func (s *suite) testList(t *testing.T) {
	kinds := []FixtureKind{LongRunning, Failing}
	if s.h.Caps.Pause {
		kinds = append(kinds, Pausable)
	}
	names := map[string]FixtureKind{}
	for _, k := range kinds {
		names[s.fixture(t, k)] = k
	}
	list, err := s.b.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for name, kind := range names {
		i := slices.IndexFunc(list, func(svc svcgate.Service) bool { return svc.Name == name })
		if i < 0 {
			t.Errorf("List lacks the %s fixture %q", kind, name)
			continue
		}
		checkService(t, s.b, list[i])
		if !list[i].State.Down() {
			t.Errorf("fixture %q is %s in List, want stopped or failed", name, list[i].State)
		}
	}
}

// checkService asserts what every snapshot must satisfy.
func checkService(t *testing.T, b svcgate.Backend, svc svcgate.Service) {
	t.Helper()
	if !svc.State.Valid() {
		t.Errorf("%s: state %q is not a valid state", svc.Name, svc.State)
	}
	if svc.Backend != b.Name() {
		t.Errorf("%s: backend %q, want %q", svc.Name, svc.Backend, b.Name())
	}
	if !svc.StartType.Valid() {
		t.Errorf("%s: start_type %q is not valid", svc.Name, svc.StartType)
	}
	if svc.DisplayName == "" {
		t.Errorf("%s: display_name is empty", svc.Name)
	}
	if svc.Accepts == nil || svc.Dependencies == nil {
		t.Errorf("%s: accepts %v and dependencies %v must be empty lists, not null", svc.Name, svc.Accepts, svc.Dependencies)
	}
	if svc.State.Down() && svc.PID != 0 {
		t.Errorf("%s: %s with pid %d, want 0", svc.Name, svc.State, svc.PID)
	}
	if svc.State == svcgate.StateRunning && svc.PID <= 0 {
		t.Errorf("%s: running with pid %d", svc.Name, svc.PID)
	}
}

func (s *suite) testGetMatchesList(t *testing.T) {
	name := s.fixture(t, LongRunning)
	got, err := s.b.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	list, err := s.b.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	i := slices.IndexFunc(list, func(svc svcgate.Service) bool { return svc.Name == name })
	if i < 0 {
		t.Fatalf("List lacks %q", name)
	}
	checkService(t, s.b, got)
	if diff := cmp.Diff(list[i], got); diff != "" {
		t.Errorf("Get(%q) differs from its List entry (-list +get):\n%s", name, diff)
	}
}

const unknownName = "svcgate-conformance-no-such-service"

func (s *suite) testGetUnknown(t *testing.T) {
	_, err := s.b.Get(context.Background(), unknownName)
	WantCode(t, err, svcgate.CodeServiceNotFound)
}

func (s *suite) testControlUnknown(t *testing.T) {
	_, err := s.b.Control(context.Background(), unknownName, svcgate.ActionStart, svcgate.ControlOptions{})
	WantCode(t, err, svcgate.CodeServiceNotFound)
}

func (s *suite) testInvalidNames(t *testing.T) {
	for _, name := range []string{"../x", "a b", "-x", strings.Repeat("a", 300), "a\x00b", "", "a/b", `a\b`} {
		t.Run(fmt.Sprintf("%.40q", name), func(t *testing.T) {
			_, err := s.b.Get(context.Background(), name)
			WantCode(t, err, svcgate.CodeInvalidName)
			_, err = s.b.Control(context.Background(), name, svcgate.ActionStart, svcgate.ControlOptions{})
			WantCode(t, err, svcgate.CodeInvalidName)
		})
	}
}

func (s *suite) testStart(t *testing.T) {
	name := s.fixture(t, LongRunning)
	if r := s.control(t, name, svcgate.ActionStart); !r.Changed {
		t.Errorf("start of a stopped service reported Changed false")
	}
	svc := WaitState(t, s.b, name, svcgate.StateRunning, s.settle)
	checkService(t, s.b, svc)
	if !svc.Accepting(svcgate.AcceptStop) {
		t.Errorf("a running service does not accept stop: accepts %v", svc.Accepts)
	}
}

func (s *suite) testStartTwice(t *testing.T) {
	name, _ := s.started(t, LongRunning)
	if r := s.control(t, name, svcgate.ActionStart); r.Changed {
		t.Errorf("start of a running service reported Changed true")
	}
	if svc := mustGet(t, s.b, name); svc.State != svcgate.StateRunning {
		t.Errorf("after a second start the service is %s, want running", svc.State)
	}
}

func (s *suite) testStop(t *testing.T) {
	name, _ := s.started(t, LongRunning)
	if r := s.control(t, name, svcgate.ActionStop); !r.Changed {
		t.Errorf("stop of a running service reported Changed false")
	}
	svc := WaitState(t, s.b, name, svcgate.StateStopped, s.settle)
	checkService(t, s.b, svc)
	if svc.Accepting(svcgate.AcceptStop) {
		t.Errorf("a stopped service accepts stop: accepts %v", svc.Accepts)
	}
}

func (s *suite) testStopTwice(t *testing.T) {
	name, _ := s.started(t, LongRunning)
	s.control(t, name, svcgate.ActionStop)
	WaitState(t, s.b, name, svcgate.StateStopped, s.settle)
	if r := s.control(t, name, svcgate.ActionStop); r.Changed {
		t.Errorf("stop of a stopped service reported Changed true")
	}
	if svc := mustGet(t, s.b, name); svc.State != svcgate.StateStopped {
		t.Errorf("after a second stop the service is %s, want stopped", svc.State)
	}
}

func (s *suite) testRestart(t *testing.T) {
	name, before := s.started(t, LongRunning)
	if r := s.control(t, name, svcgate.ActionRestart); !r.Changed {
		t.Errorf("restart reported Changed false")
	}
	after := WaitFor(t, s.b, name, s.settle, "running with a new pid", func(svc svcgate.Service) bool {
		return svc.State == svcgate.StateRunning && svc.PID != before.PID
	})
	checkService(t, s.b, after)
}

func (s *suite) testPauseContinue(t *testing.T) {
	if !s.h.Caps.Pause {
		name, _ := s.started(t, LongRunning)
		_, err := s.b.Control(context.Background(), name, svcgate.ActionPause, svcgate.ControlOptions{})
		WantCode(t, err, svcgate.CodeUnsupportedAction)
		return
	}
	name, running := s.started(t, Pausable)
	if !running.Accepting(svcgate.AcceptPauseContinue) {
		t.Errorf("a running pausable service does not accept pause_continue: accepts %v", running.Accepts)
	}
	if r := s.control(t, name, svcgate.ActionPause); !r.Changed {
		t.Errorf("pause of a running service reported Changed false")
	}
	paused := WaitState(t, s.b, name, svcgate.StatePaused, s.settle)
	if paused.PID != running.PID {
		t.Errorf("pause changed the pid from %d to %d", running.PID, paused.PID)
	}
	if r := s.control(t, name, svcgate.ActionPause); r.Changed {
		t.Errorf("pause of a paused service reported Changed true")
	}
	if r := s.control(t, name, svcgate.ActionContinue); !r.Changed {
		t.Errorf("continue of a paused service reported Changed false")
	}
	again := WaitState(t, s.b, name, svcgate.StateRunning, s.settle)
	if again.PID != running.PID {
		t.Errorf("continue changed the pid from %d to %d", running.PID, again.PID)
	}
	if r := s.control(t, name, svcgate.ActionContinue); r.Changed {
		t.Errorf("continue of a running service reported Changed true")
	}
}

func (s *suite) testPauseStopped(t *testing.T) {
	kind, want := LongRunning, svcgate.CodeUnsupportedAction
	if s.h.Caps.Pause {
		kind, want = Pausable, svcgate.CodeInvalidTransition
	}
	name := s.fixture(t, kind)
	_, err := s.b.Control(context.Background(), name, svcgate.ActionPause, svcgate.ControlOptions{})
	WantCode(t, err, want)
	if svc := mustGet(t, s.b, name); !svc.State.Down() {
		t.Errorf("after a refused pause the service is %s, want it still down", svc.State)
	}
}

func (s *suite) testFailing(t *testing.T) {
	name := s.fixture(t, Failing)
	_, err := s.b.Control(context.Background(), name, svcgate.ActionStart, svcgate.ControlOptions{})
	if err != nil && !svcgate.IsCode(err, svcgate.CodeStartFailed) {
		t.Fatalf("start of a failing service: %v, want success or start_failed", err)
	}
	svc := WaitFor(t, s.b, name, s.settle, "down with a non-zero exit code", func(svc svcgate.Service) bool {
		return svc.State.Down() && svc.ExitCode != 0
	})
	checkService(t, s.b, svc)
}

func (s *suite) watcher(t *testing.T) svcgate.Watcher {
	t.Helper()
	if !s.h.Caps.Watch {
		t.Skip("the backend does not watch (Capabilities.Watch is false)")
	}
	w, ok := s.b.(svcgate.Watcher)
	if !ok {
		t.Fatalf("Capabilities.Watch is set but %T does not implement svcgate.Watcher", s.b)
	}
	return w
}

func (s *suite) testWatchOrder(t *testing.T) {
	rec := Record(t, s.watcher(t))
	name := s.fixture(t, LongRunning)
	s.control(t, name, svcgate.ActionStart)
	WaitState(t, s.b, name, svcgate.StateRunning, s.settle)
	s.control(t, name, svcgate.ActionStop)
	WaitState(t, s.b, name, svcgate.StateStopped, s.settle)
	rec.WaitFor(t, s.settle, "the stopped event", func(ev svcgate.Event) bool {
		return ev.Type == svcgate.EventChanged && ev.Service.Name == name && ev.Service.State == svcgate.StateStopped
	})

	evs := rec.Events(name)
	CheckOrder(t, evs)
	// Only changed events count: an added event also carries a state.
	isChange := func(st svcgate.State) func(svcgate.Event) bool {
		return func(ev svcgate.Event) bool { return ev.Type == svcgate.EventChanged && ev.Service.State == st }
	}
	running := slices.IndexFunc(evs, isChange(svcgate.StateRunning))
	stopped := slices.IndexFunc(evs[max(running, 0):], isChange(svcgate.StateStopped))
	if running < 0 || stopped < 0 {
		t.Errorf("want a running event and then a stopped one, got %s", States(evs))
	}
	for _, ev := range evs {
		if ev.Seq != 0 {
			t.Errorf("a backend event carries seq %d; the event hub assigns it", ev.Seq)
		}
	}
}

func (s *suite) testWatchFanOut(t *testing.T) {
	w := s.watcher(t)
	recs := []*Recorder{Record(t, w), Record(t, w), Record(t, w)}
	name := s.fixture(t, LongRunning)
	s.control(t, name, svcgate.ActionStart)
	WaitState(t, s.b, name, svcgate.StateRunning, s.settle)
	s.control(t, name, svcgate.ActionStop)
	WaitState(t, s.b, name, svcgate.StateStopped, s.settle)
	for _, r := range recs {
		r.WaitFor(t, s.settle, "the stopped event", func(ev svcgate.Event) bool {
			return ev.Type == svcgate.EventChanged && ev.Service.Name == name && ev.Service.State == svcgate.StateStopped
		})
	}
	want := States(recs[0].Events(name))
	for i, r := range recs[1:] {
		if got := States(r.Events(name)); !slices.Equal(got, want) {
			t.Errorf("watcher %d saw %v, watcher 0 saw %v", i+1, got, want)
		}
	}
}

func (s *suite) testConcurrentControl(t *testing.T) {
	name := s.fixture(t, LongRunning)
	actions := []svcgate.Action{svcgate.ActionStart, svcgate.ActionStop, svcgate.ActionRestart, svcgate.ActionStart}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 6 {
		wg.Go(func() {
			for i := range 6 {
				a := actions[(g+i)%len(actions)]
				ctx, cancel := context.WithTimeout(context.Background(), s.settle)
				_, err := s.b.Control(ctx, name, a, svcgate.ControlOptions{})
				cancel()
				// Racing a restart against a stop may legitimately refuse
				// one of them; anything else is a defect.
				if err != nil && !svcgate.IsCode(err, svcgate.CodeInvalidTransition) && !svcgate.IsCode(err, svcgate.CodeConflict) {
					errs <- fmt.Errorf("%s: %w", a, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent control: %v", err)
	}

	// Whatever the interleaving, the service must still obey.
	s.control(t, name, svcgate.ActionStop)
	svc := WaitState(t, s.b, name, svcgate.StateStopped, s.settle)
	checkService(t, s.b, svc)
	s.control(t, name, svcgate.ActionStart)
	svc = WaitState(t, s.b, name, svcgate.StateRunning, s.settle)
	checkService(t, s.b, svc)
	s.control(t, name, svcgate.ActionStop)
	WaitState(t, s.b, name, svcgate.StateStopped, s.settle)
}

func mustGet(t *testing.T, b svcgate.Backend, name string) svcgate.Service {
	t.Helper()
	svc, err := b.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	return svc
}

// WantCode fails the test unless err carries code.
func WantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if !svcgate.IsCode(err, code) {
		tb.Errorf("got error %v (code %q), want code %q", err, svcgate.ErrorCode(err), code)
	}
}

// WaitState waits until the named service is in state want and returns
// it; see WaitFor.
func WaitState(tb testing.TB, b svcgate.Backend, name string, want svcgate.State, timeout time.Duration) svcgate.Service {
	tb.Helper()
	return WaitFor(tb, b, name, timeout, string(want), func(svc svcgate.Service) bool { return svc.State == want })
}

// WaitFor polls Get every PollInterval until ok accepts the snapshot, and
// returns it. It fails the test, showing the last snapshot and describing
// the wait with what, if timeout passes first or Get fails.
func WaitFor(tb testing.TB, b svcgate.Backend, name string, timeout time.Duration, what string, ok func(svcgate.Service) bool) svcgate.Service {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		svc, err := b.Get(ctx, name)
		if err != nil {
			tb.Fatalf("waiting for %s to be %s: Get: %v", name, what, err)
		}
		if ok(svc) {
			return svc
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			tb.Fatalf("%s did not become %s within %v; last seen %s (%s), pid %d, exit code %d",
				name, what, timeout, svc.State, svc.SubState, svc.PID, svc.ExitCode)
			return svc
		}
	}
}

// Recorder keeps every event of one Watch, stamped with when it arrived.
type Recorder struct {
	mu      sync.Mutex
	events  []svcgate.Event
	arrived []time.Time
	closed  bool
	changed chan struct{} // closed and replaced on every event
}

// Record watches w until the test ends and records what it sees.
func Record(tb testing.TB, w svcgate.Watcher) *Recorder {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := w.Watch(ctx)
	if err != nil {
		cancel()
		tb.Fatalf("Watch: %v", err)
	}
	r := &Recorder{changed: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range ch {
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.arrived = append(r.arrived, time.Now())
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
		}
		r.mu.Lock()
		r.closed = true
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

// Events returns the events recorded so far for the named service, or all
// of them for "".
func (r *Recorder) Events(name string) []svcgate.Event {
	evs, _ := r.Arrivals(name)
	return evs
}

// Arrivals is Events with the time each event was received.
func (r *Recorder) Arrivals(name string) ([]svcgate.Event, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var evs []svcgate.Event
	var at []time.Time
	for i, ev := range r.events {
		if name == "" || ev.Service.Name == name {
			evs = append(evs, ev)
			at = append(at, r.arrived[i])
		}
	}
	return evs, at
}

// WaitFor waits until an event that ok accepts has been recorded, and
// returns the first such event and when it arrived. It fails the test if
// timeout passes or the watch ends first.
func (r *Recorder) WaitFor(tb testing.TB, timeout time.Duration, what string, ok func(svcgate.Event) bool) (svcgate.Event, time.Time) {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for i, ev := range r.events {
			if ok(ev) {
				at := r.arrived[i]
				r.mu.Unlock()
				return ev, at
			}
		}
		changed, closed, n := r.changed, r.closed, len(r.events)
		r.mu.Unlock()
		if closed {
			tb.Fatalf("the watch ended before %s (%d events seen)", what, n)
		}
		select {
		case <-changed:
		case <-deadline.C:
			tb.Fatalf("no %s within %v; saw %s", what, timeout, States(r.Events("")))
			return svcgate.Event{}, time.Time{}
		}
	}
}

// CheckOrder asserts that evs, the changed events of one service in the
// order received, form a chain: each one's Previous is the state the one
// before it reported, and time never goes backwards.
func CheckOrder(tb testing.TB, evs []svcgate.Event) {
	tb.Helper()
	var last *svcgate.Event
	for i := range evs {
		ev := &evs[i]
		if ev.Type != svcgate.EventChanged {
			last = nil
			continue
		}
		if last != nil {
			if ev.Previous != last.Service.State {
				tb.Errorf("event %d: previous %s, but the event before reported %s: events out of order or missing: %s",
					i, ev.Previous, last.Service.State, States(evs))
			}
			if ev.Time.Before(last.Time) {
				tb.Errorf("event %d: time %v is before the previous event's %v", i, ev.Time, last.Time)
			}
		}
		last = ev
	}
}

// States renders events compactly for failure messages: name:state(sub).
func States(evs []svcgate.Event) []string {
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		s := string(ev.Service.State)
		if ev.Type != svcgate.EventChanged {
			s = string(ev.Type)
		} else if ev.Service.SubState != "" {
			s += "(" + ev.Service.SubState + ")"
		}
		out = append(out, s)
	}
	return out
}

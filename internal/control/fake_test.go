package control_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/svcgate/svcgate"
)

// step is one scripted state transition: after the delay (counted from the
// Control call), the service is in state, with exit code exit.
type step struct {
	after time.Duration
	state svcgate.State
	exit  int
}

// fakeService is one service of fakeBackend with its script.
type fakeService struct {
	svc svcgate.Service
	// script maps an action to the transitions it causes, overriding the
	// default ones; steps with after 0 happen inside Control.
	script map[svcgate.Action][]step
	// lag makes Get report the snapshot from before the last Control for
	// this long after it returns, like a service manager whose status
	// lags behind the request.
	lag        time.Duration
	stale      svcgate.Service
	staleUntil time.Time
	epoch      int // bumped by every Control; cancels scheduled steps
}

// fakeBackend is an in-memory service manager implementing svcgate.Backend,
// svcgate.Configurer and control.Notifier. Actions move services through
// pending states on timers; it records every call and detects two Control
// calls overlapping on one service.
type fakeBackend struct {
	mu       sync.Mutex
	services map[string]*fakeService
	nextPID  int
	delay    time.Duration // how long default transitions take
	hold     time.Duration // how long each Control call stays inside the backend
	changed  chan struct{}
	calls    []string

	inside     map[string]int // Control calls in progress, per service
	overlaps   []string       // services that had two Control calls at once
	pendingIn  []string       // services that were still pending when a Control came in
	active     int            // Control calls in progress, all services
	maxActive  int
	reachedAt  map[string]time.Time // when each service last changed state
	getErrFunc func(name string) error
}

var (
	_ svcgate.Backend    = (*fakeBackend)(nil)
	_ svcgate.Configurer = (*fakeBackend)(nil)
)

func newFake(services ...svcgate.Service) *fakeBackend {
	b := &fakeBackend{
		services:  make(map[string]*fakeService),
		nextPID:   100,
		delay:     20 * time.Millisecond,
		changed:   make(chan struct{}),
		inside:    make(map[string]int),
		reachedAt: make(map[string]time.Time),
	}
	for _, s := range services {
		b.services[s.Name] = &fakeService{svc: s}
	}
	return b
}

// svc returns a service in state that accepts stop; running services
// have a PID, and every service changed state an hour ago.
func svc(name string, state svcgate.State, accepts ...svcgate.Accept) svcgate.Service {
	s := svcgate.Service{
		Name: name, DisplayName: name, State: state, StartType: svcgate.StartManual,
		Accepts: append([]svcgate.Accept{svcgate.AcceptStop}, accepts...),
		Since:   time.Now().Add(-time.Hour), Backend: "fake",
	}
	if !state.Down() {
		s.PID = 42
	}
	return s
}

func (b *fakeBackend) Name() string { return "fake" }

func (b *fakeBackend) record(format string, args ...any) {
	b.calls = append(b.calls, fmt.Sprintf(format, args...))
}

// Changed implements control.Notifier: the channel closes at the next state
// change of any service.
func (b *fakeBackend) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

func (b *fakeBackend) List(context.Context) ([]svcgate.Service, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record("List")
	var out []svcgate.Service
	for _, fs := range b.services {
		out = append(out, fs.svc)
	}
	return out, nil
}

func (b *fakeBackend) Get(ctx context.Context, name string) (svcgate.Service, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record("Get %s", name)
	if err := ctx.Err(); err != nil {
		return svcgate.Service{}, err
	}
	if b.getErrFunc != nil {
		if err := b.getErrFunc(name); err != nil {
			return svcgate.Service{}, err
		}
	}
	fs, ok := b.services[name]
	if !ok {
		return svcgate.Service{}, svcgate.Errorf(svcgate.CodeServiceNotFound, "no service %s", name)
	}
	if time.Now().Before(fs.staleUntil) {
		return fs.stale, nil
	}
	return fs.svc, nil
}

func (b *fakeBackend) Control(ctx context.Context, name string, a svcgate.Action, _ svcgate.ControlOptions) (svcgate.ControlResult, error) {
	b.mu.Lock()
	b.record("Control %s %s", name, a)
	fs, ok := b.services[name]
	if !ok {
		b.mu.Unlock()
		return svcgate.ControlResult{}, svcgate.Errorf(svcgate.CodeServiceNotFound, "no service %s", name)
	}
	if fs.svc.State.Pending() {
		b.pendingIn = append(b.pendingIn, name)
	}
	b.inside[name]++
	if b.inside[name] > 1 {
		b.overlaps = append(b.overlaps, name)
	}
	b.active++
	b.maxActive = max(b.maxActive, b.active)
	hold := b.hold
	b.mu.Unlock()

	if hold > 0 {
		time.Sleep(hold)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	b.inside[name]--
	b.active--
	cur := fs.svc
	if already(cur, a) {
		return svcgate.ControlResult{Changed: false}, nil
	}
	switch {
	case (a == svcgate.ActionPause || a == svcgate.ActionContinue) && cur.State.Down():
		return svcgate.ControlResult{}, svcgate.Errorf(svcgate.CodeInvalidTransition, "%s is %s", name, cur.State)
	case (a == svcgate.ActionPause || a == svcgate.ActionContinue) && !cur.Accepting(svcgate.AcceptPauseContinue),
		a == svcgate.ActionReload && !cur.Accepting(svcgate.AcceptReload):
		return svcgate.ControlResult{}, svcgate.Errorf(svcgate.CodeUnsupportedAction, "%s does not accept %s", name, a)
	}
	steps, ok := fs.script[a]
	if !ok {
		steps = b.defaultSteps(a)
	}
	fs.epoch++
	epoch := fs.epoch
	for _, st := range steps {
		if st.after == 0 {
			b.setState(fs, st)
			continue
		}
		time.AfterFunc(st.after, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if fs.epoch == epoch {
				b.setState(fs, st)
			}
		})
	}
	if fs.lag > 0 {
		fs.stale, fs.staleUntil = cur, time.Now().Add(fs.lag)
	}
	return svcgate.ControlResult{Changed: true}, nil
}

// already reports whether s already is where a leads.
func already(s svcgate.Service, a svcgate.Action) bool {
	switch a {
	case svcgate.ActionStart, svcgate.ActionContinue:
		return s.State == svcgate.StateRunning
	case svcgate.ActionStop:
		return s.State.Down()
	case svcgate.ActionPause:
		return s.State == svcgate.StatePaused
	}
	return false
}

func (b *fakeBackend) defaultSteps(a svcgate.Action) []step {
	d := b.delay
	switch a {
	case svcgate.ActionStart:
		return []step{{0, svcgate.StateStartPending, 0}, {d, svcgate.StateRunning, 0}}
	case svcgate.ActionStop:
		return []step{{0, svcgate.StateStopPending, 0}, {d, svcgate.StateStopped, 0}}
	case svcgate.ActionRestart:
		// As the contract says: the old instance is down and the new
		// one is starting when Control returns.
		return []step{{0, svcgate.StateStopped, 0}, {0, svcgate.StateStartPending, 0}, {d, svcgate.StateRunning, 0}}
	case svcgate.ActionPause:
		return []step{{0, svcgate.StatePausePending, 0}, {d, svcgate.StatePaused, 0}}
	case svcgate.ActionContinue:
		return []step{{0, svcgate.StateContinuePending, 0}, {d, svcgate.StateRunning, 0}}
	}
	return nil // reload changes no state
}

// setState moves fs to st. b.mu must be held.
func (b *fakeBackend) setState(fs *fakeService, st step) {
	s := &fs.svc
	if s.State.Down() && !st.state.Down() {
		b.nextPID++
		s.PID = b.nextPID // a new instance
	}
	if st.state.Down() {
		s.PID = 0
	}
	s.State, s.ExitCode, s.Since = st.state, st.exit, time.Now()
	b.reachedAt[s.Name] = s.Since
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *fakeBackend) Create(_ context.Context, spec svcgate.ServiceSpec) (svcgate.Service, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record("Create %s", spec.Name)
	if _, ok := b.services[spec.Name]; ok {
		return svcgate.Service{}, svcgate.Errorf(svcgate.CodeConflict, "%s exists", spec.Name)
	}
	s := svcgate.Service{
		Name: spec.Name, DisplayName: spec.DisplayName, Description: spec.Description,
		State: svcgate.StateStopped, StartType: spec.StartType, Dependencies: spec.Dependencies,
		Since: time.Now(), Backend: "fake",
	}
	if s.StartType == "" {
		s.StartType = svcgate.StartManual
	}
	b.services[s.Name] = &fakeService{svc: s}
	return s, nil
}

func (b *fakeBackend) Update(_ context.Context, name string, u svcgate.ServiceUpdate) (svcgate.Service, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record("Update %s", name)
	fs, ok := b.services[name]
	if !ok {
		return svcgate.Service{}, svcgate.Errorf(svcgate.CodeServiceNotFound, "no service %s", name)
	}
	if u.DisplayName != nil {
		fs.svc.DisplayName = *u.DisplayName
	}
	if u.Description != nil {
		fs.svc.Description = *u.Description
	}
	if u.StartType != nil {
		fs.svc.StartType = *u.StartType
	}
	if u.Dependencies != nil {
		fs.svc.Dependencies = *u.Dependencies
	}
	return fs.svc, nil
}

func (b *fakeBackend) Delete(_ context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record("Delete %s", name)
	fs, ok := b.services[name]
	if !ok {
		return svcgate.Errorf(svcgate.CodeServiceNotFound, "no service %s", name)
	}
	if !fs.svc.State.Down() {
		return svcgate.Errorf(svcgate.CodeConflict, "%s is %s", name, fs.svc.State)
	}
	delete(b.services, name)
	return nil
}

// script sets what action a does to the named service.
func (b *fakeBackend) script(name string, a svcgate.Action, steps ...step) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fs := b.services[name]
	if fs.script == nil {
		fs.script = make(map[svcgate.Action][]step)
	}
	fs.script[a] = steps
}

func (b *fakeBackend) setLag(name string, lag time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.services[name].lag = lag
}

// state returns the true state of a service, never a stale one.
func (b *fakeBackend) state(name string) (svcgate.Service, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fs, ok := b.services[name]
	if !ok {
		return svcgate.Service{}, false
	}
	return fs.svc, true
}

// callsMatching returns the recorded calls that start with prefix, such as
// "Control" or "Delete demo".
func (b *fakeBackend) callsMatching(prefix string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, c := range b.calls {
		if len(c) >= len(prefix) && c[:len(prefix)] == prefix {
			out = append(out, c)
		}
	}
	return out
}

func (b *fakeBackend) allCalls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

// waitCall waits until a call starting with prefix has been recorded.
func (b *fakeBackend) waitCall(t testing.TB, prefix string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for len(b.callsMatching(prefix)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no %q call within 2s; calls: %v", prefix, b.allCalls())
		}
		time.Sleep(time.Millisecond)
	}
}

// backendOnly hides every optional capability of a backend.
type backendOnly struct{ svcgate.Backend }

// absBinary is an absolute binary path on the OS the tests run on.
func absBinary() string {
	if runtime.GOOS == "windows" {
		return `C:\Program Files\demo\demo.exe`
	}
	return "/usr/local/bin/demo"
}

package control_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/control"
)

// fast polls often, so tests that do not exercise the Notifier stay quick.
var fast = control.ControllerOptions{PollInterval: 2 * time.Millisecond}

// noPoll polls so rarely that a test would notice any wait at all.
var noPoll = control.ControllerOptions{PollInterval: 10 * time.Second}

// wantCode fails unless err is an *svcgate.Error with code, and returns it.
func wantCode(t testing.TB, err error, code string) *svcgate.Error {
	t.Helper()
	var e *svcgate.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want an *svcgate.Error with code %s", err, code)
	}
	if e.Code != code {
		t.Fatalf("error code = %s (%v), want %s", e.Code, err, code)
	}
	return e
}

func mustControl(t testing.TB, c *control.Controller, name string, a svcgate.Action, o control.Options) control.Result {
	t.Helper()
	res, err := c.Control(t.Context(), name, a, o)
	if err != nil {
		t.Fatalf("Control(%s, %s) = %v", name, a, err)
	}
	return res
}

func TestControlWaitsForTheTargetState(t *testing.T) {
	for _, tc := range []struct {
		from   svcgate.State
		action svcgate.Action
		want   svcgate.State
	}{
		{svcgate.StateStopped, svcgate.ActionStart, svcgate.StateRunning},
		{svcgate.StateFailed, svcgate.ActionStart, svcgate.StateRunning},
		{svcgate.StateRunning, svcgate.ActionStop, svcgate.StateStopped},
		{svcgate.StateRunning, svcgate.ActionPause, svcgate.StatePaused},
		{svcgate.StatePaused, svcgate.ActionContinue, svcgate.StateRunning},
		{svcgate.StateRunning, svcgate.ActionRestart, svcgate.StateRunning},
		{svcgate.StateStopped, svcgate.ActionRestart, svcgate.StateRunning},
	} {
		t.Run(fmt.Sprintf("%s on %s ends %s", tc.action, tc.from, tc.want), func(t *testing.T) {
			b := newFake(svc("web", tc.from, svcgate.AcceptPauseContinue))
			c := control.New(b, fast)
			begin := time.Now()
			res := mustControl(t, c, "web", tc.action, control.Options{Wait: 5 * time.Second})
			if res.Service.State != tc.want || !res.Changed || res.Pending {
				t.Errorf("result = %s changed %v pending %v; want %s changed true pending false",
					res.Service.State, res.Changed, res.Pending, tc.want)
			}
			if elapsed := time.Since(begin); elapsed < b.delay {
				t.Errorf("returned after %v, before the transition of %v could finish", elapsed, b.delay)
			}
			if truth, _ := b.state("web"); truth.State != tc.want {
				t.Errorf("backend state = %s, want %s", truth.State, tc.want)
			}
			if res.Duration <= 0 {
				t.Errorf("Duration = %v, want > 0", res.Duration)
			}
		})
	}
}

func TestControlOnAServiceAlreadyThereChangesNothingAndDoesNotWait(t *testing.T) {
	for _, tc := range []struct {
		from   svcgate.State
		action svcgate.Action
	}{
		{svcgate.StateRunning, svcgate.ActionStart},
		{svcgate.StateStopped, svcgate.ActionStop},
		{svcgate.StateFailed, svcgate.ActionStop},
		{svcgate.StatePaused, svcgate.ActionPause},
		{svcgate.StateRunning, svcgate.ActionContinue},
	} {
		t.Run(fmt.Sprintf("%s on %s", tc.action, tc.from), func(t *testing.T) {
			b := newFake(svc("web", tc.from, svcgate.AcceptPauseContinue))
			c := control.New(b, noPoll)
			begin := time.Now()
			res := mustControl(t, c, "web", tc.action, control.Options{Wait: 5 * time.Second})
			if res.Changed || res.Pending || res.Service.State != tc.from {
				t.Errorf("result = %s changed %v pending %v; want %s changed false pending false",
					res.Service.State, res.Changed, res.Pending, tc.from)
			}
			if elapsed := time.Since(begin); elapsed > time.Second {
				t.Errorf("took %v: it waited", elapsed)
			}
		})
	}
}

func TestControlWithWaitZeroReturnsThePendingState(t *testing.T) {
	b := newFake(svc("web", svcgate.StateStopped))
	b.delay = 50 * time.Millisecond
	c := control.New(b, noPoll)
	begin := time.Now()
	res := mustControl(t, c, "web", svcgate.ActionStart, control.Options{Wait: 0})
	if !res.Pending || !res.Changed || res.Service.State != svcgate.StateStartPending {
		t.Errorf("result = %s changed %v pending %v; want start_pending changed true pending true",
			res.Service.State, res.Changed, res.Pending)
	}
	if elapsed := time.Since(begin); elapsed >= b.delay {
		t.Errorf("took %v: it waited for the transition", elapsed)
	}

	// Already there: nothing is pending.
	b2 := newFake(svc("web", svcgate.StateRunning))
	res = mustControl(t, control.New(b2, noPoll), "web", svcgate.ActionStart, control.Options{Wait: 0})
	if res.Pending || res.Changed {
		t.Errorf("start on running with wait 0: changed %v pending %v, want both false", res.Changed, res.Pending)
	}
}

func TestControlTimesOutWithTheCurrentState(t *testing.T) {
	b := newFake(svc("web", svcgate.StateStopped))
	b.script("web", svcgate.ActionStart, step{0, svcgate.StateStartPending, 0}) // never gets further
	c := control.New(b, fast)
	begin := time.Now()
	_, err := c.Control(t.Context(), "web", svcgate.ActionStart, control.Options{Wait: 60 * time.Millisecond})
	e := wantCode(t, err, svcgate.CodeTimeout)
	if elapsed := time.Since(begin); elapsed < 60*time.Millisecond || elapsed > time.Second {
		t.Errorf("timed out after %v, want about 60ms", elapsed)
	}
	if e.Service == nil || e.Service.Name != "web" || e.Service.State != svcgate.StateStartPending {
		t.Errorf("timeout carries service %+v, want web start_pending", e.Service)
	}
}

func TestStartThatGoesDownIsStartFailed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
		state svcgate.State
		msg   string
	}{
		{"fails while starting", []step{{0, svcgate.StateStartPending, 0}, {20 * time.Millisecond, svcgate.StateFailed, 3}},
			svcgate.StateFailed, "exit code 3"},
		{"fails at once", []step{{0, svcgate.StateFailed, 127}}, svcgate.StateFailed, "exit code 127"},
		{"exits cleanly while starting", []step{{0, svcgate.StateStartPending, 0}, {20 * time.Millisecond, svcgate.StateStopped, 0}},
			svcgate.StateStopped, "stopped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFake(svc("web", svcgate.StateStopped))
			b.script("web", svcgate.ActionStart, tc.steps...)
			c := control.New(b, fast)
			res, err := c.Control(t.Context(), "web", svcgate.ActionStart, control.Options{Wait: 5 * time.Second})
			e := wantCode(t, err, svcgate.CodeStartFailed)
			if e.Service == nil || e.Service.Name != "web" || e.Service.State != tc.state {
				t.Errorf("start_failed carries service %+v, want web %s", e.Service, tc.state)
			}
			if !strings.Contains(e.Message, tc.msg) {
				t.Errorf("message %q does not mention %q", e.Message, tc.msg)
			}
			if res.Service.State != tc.state {
				t.Errorf("result service = %s, want %s", res.Service.State, tc.state)
			}
		})
	}
}

// A service manager may still report the failure from before the start for
// a moment after accepting it; that old failure is not the start failing.
func TestStaleFailedStateFromBeforeTheStartIsNotAFailure(t *testing.T) {
	failed := svc("web", svcgate.StateFailed)
	failed.ExitCode = 1
	b := newFake(failed)
	b.setLag("web", 40*time.Millisecond)
	c := control.New(b, fast)
	res := mustControl(t, c, "web", svcgate.ActionStart, control.Options{Wait: 5 * time.Second})
	if res.Service.State != svcgate.StateRunning {
		t.Errorf("state = %s, want running", res.Service.State)
	}

	// Not waiting: the stale state is reported as pending, not as a failure.
	b2 := newFake(failed)
	b2.setLag("web", time.Second)
	res, err := control.New(b2, fast).Control(t.Context(), "web", svcgate.ActionStart, control.Options{Wait: 0})
	if err != nil || !res.Pending {
		t.Errorf("wait 0 during the lag = pending %v, %v; want pending, no error", res.Pending, err)
	}
}

func TestRestartWaitsForTheNewInstance(t *testing.T) {
	for _, tc := range []struct {
		name string
		lag  time.Duration
	}{
		{"service manager reports at once", 0},
		// The old instance still shows as running for a moment; it must
		// not end the wait.
		{"service manager lags", 40 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := svc("web", svcgate.StateRunning)
			b := newFake(old)
			b.delay = 30 * time.Millisecond
			b.setLag("web", tc.lag)
			c := control.New(b, fast)
			begin := time.Now()
			res := mustControl(t, c, "web", svcgate.ActionRestart, control.Options{Wait: 5 * time.Second})
			if res.Service.State != svcgate.StateRunning || res.Service.PID == old.PID || res.Service.Since.Before(begin) {
				t.Errorf("restart returned %s pid %d since %v; want a new running instance (old pid %d)",
					res.Service.State, res.Service.PID, res.Service.Since, old.PID)
			}
			if elapsed := time.Since(begin); elapsed < b.delay {
				t.Errorf("returned after %v, before the new instance could run", elapsed)
			}
		})
	}
}

func TestNotifierWakesTheWait(t *testing.T) {
	b := newFake(svc("web", svcgate.StateStopped))
	b.delay = 30 * time.Millisecond
	opts := noPoll // only the notifier can end the wait early
	opts.Notifier = b
	c := control.New(b, opts)
	res := mustControl(t, c, "web", svcgate.ActionStart, control.Options{Wait: 5 * time.Second})
	returned := time.Now()
	b.mu.Lock()
	reached := b.reachedAt["web"]
	b.mu.Unlock()
	if res.Service.State != svcgate.StateRunning {
		t.Fatalf("state = %s, want running", res.Service.State)
	}
	if lag := returned.Sub(reached); lag > 200*time.Millisecond {
		t.Errorf("the wait ended %v after the service was running, want a few ms", lag)
	}
}

func TestOperationsOnOneServiceAreSerialized(t *testing.T) {
	b := newFake(svc("web", svcgate.StateStopped))
	b.hold = 5 * time.Millisecond
	b.delay = 10 * time.Millisecond
	c := control.New(b, fast)
	var wg sync.WaitGroup
	for i := range 8 {
		a := svcgate.ActionStart
		if i%2 == 1 {
			a = svcgate.ActionStop
		}
		wg.Go(func() {
			res, err := c.Control(t.Context(), "web", a, control.Options{Wait: 5 * time.Second})
			if err != nil {
				t.Errorf("%s: %v", a, err)
				return
			}
			// Nothing else ran between this request's action and the end
			// of its wait, so it ends where its action leads.
			if res.Service.State != a.Target() {
				t.Errorf("%s ended %s, want %s", a, res.Service.State, a.Target())
			}
		})
	}
	wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.overlaps) > 0 {
		t.Errorf("Control calls overlapped inside the backend %d times", len(b.overlaps))
	}
	if len(b.pendingIn) > 0 {
		t.Errorf("an action was issued %d times while the previous one was still pending", len(b.pendingIn))
	}
}

func TestOperationsOnDifferentServicesRunInParallel(t *testing.T) {
	b := newFake(svc("a", svcgate.StateStopped), svc("b", svcgate.StateStopped), svc("c", svcgate.StateStopped))
	b.hold = 150 * time.Millisecond
	c := control.New(b, fast)
	begin := time.Now()
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b", "c"} {
		wg.Go(func() { mustControl(t, c, name, svcgate.ActionStart, control.Options{Wait: 5 * time.Second}) })
	}
	wg.Wait()
	if elapsed := time.Since(begin); elapsed > 2*b.hold {
		t.Errorf("three starts took %v; in parallel they take about %v", elapsed, b.hold)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.maxActive != 3 {
		t.Errorf("at most %d Control calls ran at once, want 3", b.maxActive)
	}
}

func TestRequestQueuedBehindALongOneTimesOutOnItsOwnWait(t *testing.T) {
	b := newFake(svc("web", svcgate.StateStopped))
	b.script("web", svcgate.ActionStart, step{0, svcgate.StateStartPending, 0}, step{400 * time.Millisecond, svcgate.StateRunning, 0})
	c := control.New(b, fast)
	first := make(chan error, 1)
	go func() {
		_, err := c.Control(t.Context(), "web", svcgate.ActionStart, control.Options{Wait: 5 * time.Second})
		first <- err
	}()
	b.waitCall(t, "Control web start")

	begin := time.Now()
	_, err := c.Control(t.Context(), "web", svcgate.ActionStop, control.Options{Wait: 50 * time.Millisecond})
	e := wantCode(t, err, svcgate.CodeTimeout)
	if elapsed := time.Since(begin); elapsed > 300*time.Millisecond {
		t.Errorf("queued request gave up after %v, want about its 50ms wait", elapsed)
	}
	if e.Service == nil || e.Service.State != svcgate.StateStartPending {
		t.Errorf("timeout carries %+v, want the service start_pending", e.Service)
	}
	if got := b.callsMatching("Control web stop"); len(got) != 0 {
		t.Errorf("the queued stop reached the backend: %v", got)
	}
	if err := <-first; err != nil {
		t.Errorf("the long start: %v", err)
	}
	if n := control.LockCount(c); n != 0 {
		t.Errorf("%d lock entries left", n)
	}
}

func TestRequestQueuedWhoseCallerGoesAwayReturnsTheContextError(t *testing.T) {
	b := newFake(svc("web", svcgate.StateStopped))
	b.script("web", svcgate.ActionStart, step{0, svcgate.StateStartPending, 0}, step{200 * time.Millisecond, svcgate.StateRunning, 0})
	c := control.New(b, fast)
	go c.Control(t.Context(), "web", svcgate.ActionStart, control.Options{Wait: 5 * time.Second})
	b.waitCall(t, "Control web start")

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := c.Control(ctx, "web", svcgate.ActionStop, control.Options{Wait: 5 * time.Second})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled: the caller left, nothing timed out", err)
	}
}

func TestInvalidRequestsNeverReachTheBackend(t *testing.T) {
	for _, tc := range []struct {
		name    string
		service string
		action  svcgate.Action
		wait    time.Duration
		code    string
	}{
		{"empty name", "", svcgate.ActionStart, 0, svcgate.CodeInvalidName},
		{"name like a flag", "-rf", svcgate.ActionStart, 0, svcgate.CodeInvalidName},
		{"name like a path", "../etc/passwd", svcgate.ActionStart, 0, svcgate.CodeInvalidName},
		{"name with a space", "web server", svcgate.ActionStart, 0, svcgate.CodeInvalidName},
		{"name with a slash", "a/b", svcgate.ActionStop, 0, svcgate.CodeInvalidName},
		{"name too long", strings.Repeat("a", svcgate.MaxNameLen+1), svcgate.ActionStop, 0, svcgate.CodeInvalidName},
		{"unknown action", "web", "explode", 0, svcgate.CodeNotFound},
		{"empty action", "web", "", 0, svcgate.CodeNotFound},
		{"negative wait", "web", svcgate.ActionStart, -time.Second, svcgate.CodeInvalidWait},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFake(svc("web", svcgate.StateStopped))
			c := control.New(b, fast)
			for _, dry := range []bool{false, true} {
				_, err := c.Control(t.Context(), tc.service, tc.action, control.Options{Wait: tc.wait, DryRun: dry})
				wantCode(t, err, tc.code)
			}
			if calls := b.allCalls(); len(calls) != 0 {
				t.Errorf("backend called: %v", calls)
			}
		})
	}
}

func TestBackendErrorsPassThrough(t *testing.T) {
	for _, tc := range []struct {
		name    string
		service string
		action  svcgate.Action
		code    string
	}{
		{"unknown service", "ghost", svcgate.ActionStart, svcgate.CodeServiceNotFound},
		{"pause on a stopped service", "stopped", svcgate.ActionPause, svcgate.CodeInvalidTransition},
		{"reload a service that does not accept it", "running", svcgate.ActionReload, svcgate.CodeUnsupportedAction},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFake(svc("stopped", svcgate.StateStopped), svc("running", svcgate.StateRunning))
			_, err := control.New(b, fast).Control(t.Context(), tc.service, tc.action, control.Options{Wait: time.Second})
			wantCode(t, err, tc.code)
		})
	}
}

func TestDryRunPlansWithoutActing(t *testing.T) {
	disabled := svc("disabled", svcgate.StateStopped)
	disabled.StartType = svcgate.StartDisabled
	for _, tc := range []struct {
		name    string
		service svcgate.Service
		action  svcgate.Action
		code    string         // the error, if the plan is refused
		plan    []control.Step // the plan, if accepted
	}{
		{name: "start a stopped service", service: svc("web", svcgate.StateStopped), action: svcgate.ActionStart,
			plan: []control.Step{{Service: "web", Action: "start", From: svcgate.StateStopped, To: svcgate.StateRunning}}},
		{name: "start a running service does nothing", service: svc("web", svcgate.StateRunning), action: svcgate.ActionStart},
		{name: "stop a running service", service: svc("web", svcgate.StateRunning), action: svcgate.ActionStop,
			plan: []control.Step{{Service: "web", Action: "stop", From: svcgate.StateRunning, To: svcgate.StateStopped}}},
		{name: "stop a failed service does nothing", service: svc("web", svcgate.StateFailed), action: svcgate.ActionStop},
		{name: "restart a running service", service: svc("web", svcgate.StateRunning), action: svcgate.ActionRestart,
			plan: []control.Step{{Service: "web", Action: "restart", From: svcgate.StateRunning, To: svcgate.StateRunning}}},
		{name: "pause a running service", service: svc("web", svcgate.StateRunning, svcgate.AcceptPauseContinue), action: svcgate.ActionPause,
			plan: []control.Step{{Service: "web", Action: "pause", From: svcgate.StateRunning, To: svcgate.StatePaused}}},
		{name: "pause a stopped service", service: svc("web", svcgate.StateStopped, svcgate.AcceptPauseContinue), action: svcgate.ActionPause,
			code: svcgate.CodeInvalidTransition},
		{name: "pause a service that does not accept it", service: svc("web", svcgate.StateRunning), action: svcgate.ActionPause,
			code: svcgate.CodeUnsupportedAction},
		{name: "reload a service that does not accept it", service: svc("web", svcgate.StateRunning), action: svcgate.ActionReload,
			code: svcgate.CodeUnsupportedAction},
		{name: "reload a stopped service", service: svc("web", svcgate.StateStopped, svcgate.AcceptReload), action: svcgate.ActionReload,
			code: svcgate.CodeInvalidTransition},
		{name: "reload a running service", service: svc("web", svcgate.StateRunning, svcgate.AcceptReload), action: svcgate.ActionReload,
			plan: []control.Step{{Service: "web", Action: "reload", From: svcgate.StateRunning, To: svcgate.StateRunning}}},
		{name: "start a disabled service", service: disabled, action: svcgate.ActionStart, code: svcgate.CodeInvalidTransition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFake(tc.service)
			c := control.New(b, fast)
			res, err := c.Control(t.Context(), tc.service.Name, tc.action, control.Options{Wait: time.Second, DryRun: true})
			if tc.code != "" {
				wantCode(t, err, tc.code)
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if !res.DryRun || res.Changed != (tc.plan != nil) || !slices.EqualFunc(res.Plan, tc.plan, sameStep) {
					t.Errorf("result = dry run %v changed %v plan %+v; want dry run, changed %v, plan %+v",
						res.DryRun, res.Changed, res.Plan, tc.plan != nil, tc.plan)
				}
			}
			if calls := b.callsMatching("Control"); len(calls) != 0 {
				t.Errorf("dry run reached the backend: %v", calls)
			}
			if truth, _ := b.state(tc.service.Name); truth.State != tc.service.State {
				t.Errorf("state changed to %s", truth.State)
			}
		})
	}
}

func sameStep(a, b control.Step) bool {
	return a.Service == b.Service && a.Action == b.Action && a.From == b.From && a.To == b.To &&
		slices.Equal(a.Changes, b.Changes)
}

// Many operations on many services, some failing, some timing out in the
// queue, leave no per-service lock behind.
func TestLocksAreReleased(t *testing.T) {
	b := newFake()
	const n = 30
	for i := range n {
		name := fmt.Sprintf("svc%d", i)
		b.services[name] = &fakeService{svc: svc(name, svcgate.StateStopped)}
	}
	b.delay = 5 * time.Millisecond
	c := control.New(b, fast)

	b.script("svc0", svcgate.ActionStart, step{0, svcgate.StateStartPending, 0}, step{150 * time.Millisecond, svcgate.StateRunning, 0})
	go c.Control(t.Context(), "svc0", svcgate.ActionStart, control.Options{Wait: 5 * time.Second})
	b.waitCall(t, "Control svc0 start")
	if got := control.LockCount(c); got != 1 {
		t.Errorf("LockCount during one operation = %d, want 1", got)
	}

	var wg sync.WaitGroup
	for i := range n {
		name := fmt.Sprintf("svc%d", i)
		for _, op := range []func() error{
			func() error {
				_, err := c.Control(t.Context(), name, svcgate.ActionStart, control.Options{Wait: 20 * time.Millisecond})
				return err
			},
			func() error {
				_, err := c.Control(t.Context(), name, svcgate.ActionStop, control.Options{Wait: 20 * time.Millisecond})
				return err
			},
			func() error {
				_, err := c.Control(t.Context(), name, svcgate.ActionPause, control.Options{DryRun: true})
				return err
			},
			func() error {
				_, err := c.Update(t.Context(), name, svcgate.ServiceUpdate{Description: ptr("x")}, false)
				return err
			},
			func() error {
				_, err := c.Create(t.Context(), svcgate.ServiceSpec{Name: name, BinaryPath: absBinary()}, true)
				return err
			},
			func() error {
				_, err := c.Delete(t.Context(), name, false, true)
				return err
			},
		} {
			wg.Go(func() { _ = op() }) // errors (timeouts, conflicts) are part of the mix
		}
	}
	wg.Wait()
	waitFor(t, "every lock is released", func() bool { return control.LockCount(c) == 0 })
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

func ptr[T any](v T) *T { return &v }

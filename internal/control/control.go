// Package control carries out actions and configuration changes on services:
// one operation at a time per service, a live check before and after, and the
// wait for the target state, written once above every backend.
package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/svcgate/svcgate"
)

// Notifier tells the controller when the backend's state may have changed,
// so that waits react to events instead of polling. The event hub implements
// it.
type Notifier interface {
	// Changed returns a channel closed at the next change.
	Changed() <-chan struct{}
}

// ControllerOptions configure a Controller. Zero values take the documented
// defaults.
type ControllerOptions struct {
	// Notifier wakes waits; nil means waits poll.
	Notifier Notifier
	// PollInterval is the longest a wait goes without a live check
	// (default 250ms); with a Notifier most checks happen on events.
	PollInterval time.Duration
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Now reads the clock for Result.Duration (default time.Now). Waits
	// never compare it with the backend's timestamps.
	Now func() time.Time
}

// Controller runs control and configuration requests against one backend.
// It is safe for concurrent use; requests on the same service are
// serialized, requests on different services run in parallel.
type Controller struct {
	backend svcgate.Backend
	opts    ControllerOptions
	log     *slog.Logger

	mu    sync.Mutex
	locks map[string]*serviceLock
}

type serviceLock struct {
	sem  chan struct{}
	refs int
}

// New returns a Controller over b.
func New(b svcgate.Backend, opts ControllerOptions) *Controller {
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Controller{backend: b, opts: opts, log: opts.Logger, locks: make(map[string]*serviceLock)}
}

// lock takes the per-service lock of name, waiting no longer than ctx.
func (c *Controller) lock(ctx context.Context, name string) (unlock func(), err error) {
	c.mu.Lock()
	l := c.locks[name]
	if l == nil {
		l = &serviceLock{sem: make(chan struct{}, 1)}
		c.locks[name] = l
	}
	l.refs++
	c.mu.Unlock()
	release := func() {
		c.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(c.locks, name)
		}
		c.mu.Unlock()
	}
	select {
	case l.sem <- struct{}{}:
		return func() { <-l.sem; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// acquire resolves name to the backend's canonical name, takes its
// per-service lock within wait and reads the state again, since it may have
// moved while this request queued behind another. The returned context
// bounds the wait; release frees the lock and the context.
func (c *Controller) acquire(ctx context.Context, name string, wait time.Duration) (cur svcgate.Service, wctx context.Context, release func(), err error) {
	if cur, err = c.backend.Get(ctx, name); err != nil {
		return cur, nil, nil, err
	}
	wctx, cancel := waitContext(ctx, wait)
	unlock, err := c.lock(wctx, cur.Name)
	if err != nil {
		cancel()
		return cur, nil, nil, c.queueError(ctx, cur.Name)
	}
	release = func() { unlock(); cancel() }
	if cur, err = c.backend.Get(ctx, cur.Name); err != nil {
		release()
		return cur, nil, nil, err
	}
	return cur, wctx, release, nil
}

// Control runs action a on the named service and, unless o.Wait is 0,
// waits up to o.Wait for its target state; the time spent queued behind
// another operation on the service counts against o.Wait (against
// svcgate.WaitDefault when o.Wait is 0). It returns the service as it ended.
// Errors: invalid_name, not_found (unknown action) and invalid_wait
// (negative wait) before any backend call; service_not_found,
// invalid_transition, unsupported_action, dependents_running,
// backend_error from the backend; timeout (with the current service) when
// the target is not reached in time or a deadline of ctx passes;
// start_failed (with the service) when the service went down instead. When
// ctx is cancelled it returns ctx's error.
func (c *Controller) Control(ctx context.Context, name string, a svcgate.Action, o Options) (Result, error) {
	start := c.opts.Now()
	if err := svcgate.ValidateName(name); err != nil {
		return Result{}, err
	}
	if !a.Valid() {
		return Result{}, svcgate.Errorf(svcgate.CodeNotFound, "unknown action %q", a)
	}
	if o.Wait < 0 {
		return Result{}, svcgate.Errorf(svcgate.CodeInvalidWait, "wait %s is negative", o.Wait)
	}
	cur, wctx, release, err := c.acquire(ctx, name, o.Wait)
	if err != nil {
		return Result{}, err
	}
	defer release()

	if o.DryRun {
		step, err := plan(cur, a, o)
		if err != nil {
			return Result{}, err
		}
		res := Result{Service: cur, DryRun: true, Changed: step != nil, Duration: c.opts.Now().Sub(start)}
		if step != nil {
			res.Plan = []Step{*step}
		}
		return res, nil
	}

	cr, err := c.backend.Control(ctx, cur.Name, a, svcgate.ControlOptions{Args: o.Args, StopDependents: o.StopDependents})
	if err != nil {
		return Result{}, err
	}
	res := Result{Changed: cr.Changed, Stopped: cr.Stopped}
	res.Service, res.Pending, err = c.wait(wctx, a, cur, o.Wait == 0)
	res.Duration = c.opts.Now().Sub(start)
	if errors.Is(err, context.DeadlineExceeded) {
		return res, c.timeout(ctx, cur.Name, fmt.Sprintf("%s did not reach %s within %s", cur.Name, a.Target(), o.Wait))
	}
	return res, err
}

func waitContext(ctx context.Context, wait time.Duration) (context.Context, context.CancelFunc) {
	if wait <= 0 {
		// wait=0 still queues behind a running operation, but not forever.
		wait = svcgate.WaitDefault
	}
	return context.WithTimeout(ctx, wait)
}

// queueError is the error of a request that gave up waiting for the
// service's lock: ctx's error when the caller went away, timeout otherwise.
func (c *Controller) queueError(ctx context.Context, name string) error {
	if err := ctx.Err(); errors.Is(err, context.Canceled) {
		return err
	}
	return c.timeout(ctx, name, "another operation on the service did not finish in time")
}

// timeout builds a timeout error carrying the service's current state.
func (c *Controller) timeout(ctx context.Context, name, msg string) error {
	e := svcgate.Errorf(svcgate.CodeTimeout, "%s", msg)
	if s, err := c.backend.Get(context.WithoutCancel(ctx), name); err == nil {
		e.Service = &s
	}
	return e
}

// wait checks the live state of before.Name after action a until it reaches
// a's target, the service goes down instead, or ctx ends. The live Get is
// authoritative; the notifier only says when checking again is worthwhile,
// so a stale cache can never end a wait early. With once it checks a single
// time and reports pending.
//
// A service manager may go on reporting the state from before the action
// for a moment after accepting it (a status that lags the request). A
// snapshot that still matches before, the service as it was when the
// action was issued, is taken for that: it is neither a failure (a failed
// service being started still shows its old failure) nor, for restart,
// the new instance.
func (c *Controller) wait(ctx context.Context, a svcgate.Action, before svcgate.Service, once bool) (s svcgate.Service, pending bool, err error) {
	name, target := before.Name, a.Target()
	moved := false // a snapshot other than before was seen: the action shows
	tick := time.NewTicker(c.opts.PollInterval)
	defer tick.Stop()
	for {
		var changed <-chan struct{}
		if c.opts.Notifier != nil {
			changed = c.opts.Notifier.Changed()
		}
		s, err = c.backend.Get(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return s, false, ctx.Err()
			}
			return s, false, err
		}
		moved = moved || !sameSnapshot(before, s)
		// Without timestamps an unchanged snapshot cannot be told from a
		// new instance in the same state (a shared svchost keeps its
		// PID); then the backend's restart contract is trusted.
		if reached(s, target) && (a != svcgate.ActionRestart || moved || s.Since.IsZero()) {
			return s, false, nil
		}
		if target != svcgate.StateStopped && s.State.Down() && moved {
			e := svcgate.Errorf(svcgate.CodeStartFailed, "%s went %s instead of %s", name, s.State, target)
			if s.ExitCode != 0 {
				e.Message += fmt.Sprintf(" (exit code %d)", s.ExitCode)
			}
			e.Service = &s
			return s, false, e
		}
		if once {
			return s, true, nil
		}
		select {
		case <-ctx.Done():
			return s, false, ctx.Err()
		case <-changed:
		case <-tick.C:
		}
	}
}

// sameSnapshot reports whether s shows the service exactly as before did:
// same state, instance, exit code and time of the last change.
func sameSnapshot(before, s svcgate.Service) bool {
	return s.State == before.State && s.PID == before.PID && s.ExitCode == before.ExitCode && s.Since.Equal(before.Since)
}

func reached(s svcgate.Service, target svcgate.State) bool {
	if target == svcgate.StateStopped {
		return s.State.Down()
	}
	return s.State == target
}

// plan decides what a would do to s, without doing it: nil when s already
// is where a leads. It applies the rules every backend shares.
func plan(s svcgate.Service, a svcgate.Action, o Options) (*Step, error) {
	step := &Step{Service: s.Name, Action: string(a), From: s.State, To: a.Target()}
	switch a {
	case svcgate.ActionStart:
		if s.StartType == svcgate.StartDisabled {
			return nil, svcgate.Errorf(svcgate.CodeInvalidTransition, "%s is disabled", s.Name)
		}
		if s.State == svcgate.StateRunning || s.State == svcgate.StateStartPending {
			return nil, nil
		}
	case svcgate.ActionStop:
		if s.State.Down() {
			return nil, nil
		}
	case svcgate.ActionRestart:
		if s.StartType == svcgate.StartDisabled {
			return nil, svcgate.Errorf(svcgate.CodeInvalidTransition, "%s is disabled", s.Name)
		}
	case svcgate.ActionPause, svcgate.ActionContinue:
		if s.State.Down() {
			return nil, svcgate.Errorf(svcgate.CodeInvalidTransition, "%s is %s", s.Name, s.State)
		}
		if !s.Accepting(svcgate.AcceptPauseContinue) {
			return nil, svcgate.Errorf(svcgate.CodeUnsupportedAction, "%s does not accept pause and continue", s.Name)
		}
		if s.State == a.Target() {
			return nil, nil
		}
	case svcgate.ActionReload:
		if s.State != svcgate.StateRunning {
			return nil, svcgate.Errorf(svcgate.CodeInvalidTransition, "%s is %s, not running", s.Name, s.State)
		}
		if !s.Accepting(svcgate.AcceptReload) {
			return nil, svcgate.Errorf(svcgate.CodeUnsupportedAction, "%s does not accept reload", s.Name)
		}
		step.To = svcgate.StateRunning
	}
	return step, nil
}

func (c *Controller) configurer() (svcgate.Configurer, error) {
	cf, ok := c.backend.(svcgate.Configurer)
	if !ok {
		return nil, svcgate.Errorf(svcgate.CodeUnsupportedAction, "the %s backend cannot create, change or delete services", c.backend.Name())
	}
	return cf, nil
}

// Create makes a new service from spec. With dryRun it checks the spec and
// that the name is free, and returns the plan. Errors: invalid_name,
// invalid_request, conflict (the name exists), unsupported_action (the
// backend cannot honour a field).
func (c *Controller) Create(ctx context.Context, spec svcgate.ServiceSpec, dryRun bool) (Result, error) {
	start := c.opts.Now()
	cf, err := c.configurer()
	if err != nil {
		return Result{}, err
	}
	if err := validateSpec(spec); err != nil {
		return Result{}, err
	}
	unlock, err := c.lock(ctx, spec.Name)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	if dryRun {
		if _, err := c.backend.Get(ctx, spec.Name); err == nil {
			return Result{}, svcgate.Errorf(svcgate.CodeConflict, "service %s already exists", spec.Name)
		} else if !svcgate.IsCode(err, svcgate.CodeServiceNotFound) {
			return Result{}, err
		}
		return Result{DryRun: true, Changed: true, Plan: []Step{{Service: spec.Name, Action: "create", To: svcgate.StateStopped}},
			Service:  svcgate.Service{Name: spec.Name, DisplayName: spec.DisplayName, Description: spec.Description, StartType: spec.StartType, State: svcgate.StateStopped},
			Duration: c.opts.Now().Sub(start)}, nil
	}
	s, err := cf.Create(ctx, spec)
	if err != nil {
		return Result{}, err
	}
	return Result{Service: s, Changed: true, Duration: c.opts.Now().Sub(start)}, nil
}

func validateSpec(spec svcgate.ServiceSpec) error {
	if err := svcgate.ValidateName(spec.Name); err != nil {
		return err
	}
	if spec.BinaryPath == "" {
		return svcgate.Errorf(svcgate.CodeInvalidRequest, "binary_path is required")
	}
	if spec.Dir != "" && !filepath.IsAbs(spec.Dir) {
		return svcgate.Errorf(svcgate.CodeInvalidRequest, "dir %q must be absolute", spec.Dir)
	}
	return validateCommon(spec.BinaryPath, spec.StartType, spec.Dependencies, spec.Recovery)
}

// validateCommon checks the fields create and update share. Binary paths
// must be absolute on the agent's OS: a relative one would be resolved
// against whatever the service manager's working directory is, and so would
// a drive-letter path on Unix or a path without a drive on Windows.
func validateCommon(binary string, st svcgate.StartType, deps []string, rec *svcgate.Recovery) error {
	if binary != "" && !filepath.IsAbs(binary) {
		return svcgate.Errorf(svcgate.CodeInvalidRequest, "binary_path %q must be absolute", binary)
	}
	if st != "" && !st.Valid() {
		return svcgate.Errorf(svcgate.CodeInvalidRequest, "start_type %q is not one of auto, delayed_auto, manual, disabled", st)
	}
	for _, d := range deps {
		if err := svcgate.ValidateName(d); err != nil {
			return svcgate.Errorf(svcgate.CodeInvalidRequest, "dependency: %s", svcgate.ErrorMessage(err))
		}
	}
	if rec != nil {
		for i, ra := range rec.Actions {
			if ra.Type != "restart" && ra.Type != "none" {
				return svcgate.Errorf(svcgate.CodeInvalidRequest, "recovery.actions[%d].type %q is not restart or none", i, ra.Type)
			}
		}
	}
	return nil
}

// Update changes the fields set in u. With dryRun it returns the plan
// naming the fields that would change. An update that would change nothing
// is not sent to the backend and reports Changed false. Errors:
// invalid_name, service_not_found, invalid_request, unsupported_action,
// conflict.
func (c *Controller) Update(ctx context.Context, name string, u svcgate.ServiceUpdate, dryRun bool) (Result, error) {
	start := c.opts.Now()
	if err := svcgate.ValidateName(name); err != nil {
		return Result{}, err
	}
	cf, err := c.configurer()
	if err != nil {
		return Result{}, err
	}
	var binary string
	if u.BinaryPath != nil {
		if *u.BinaryPath == "" {
			return Result{}, svcgate.Errorf(svcgate.CodeInvalidRequest, "binary_path must not be empty")
		}
		binary = *u.BinaryPath
	}
	var st svcgate.StartType
	if u.StartType != nil {
		if st = *u.StartType; st == "" {
			return Result{}, svcgate.Errorf(svcgate.CodeInvalidRequest, "start_type must not be empty")
		}
	}
	var deps []string
	if u.Dependencies != nil {
		deps = *u.Dependencies
	}
	if u.Dir != nil && *u.Dir != "" && !filepath.IsAbs(*u.Dir) {
		return Result{}, svcgate.Errorf(svcgate.CodeInvalidRequest, "dir %q must be absolute", *u.Dir)
	}
	if err := validateCommon(binary, st, deps, u.Recovery); err != nil {
		return Result{}, err
	}
	cur, err := c.backend.Get(ctx, name)
	if err != nil {
		return Result{}, err
	}
	unlock, err := c.lock(ctx, cur.Name)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	changes := changedFields(cur, u)
	if dryRun || len(changes) == 0 {
		res := Result{Service: cur, DryRun: dryRun, Changed: len(changes) > 0, Duration: c.opts.Now().Sub(start)}
		if dryRun && len(changes) > 0 {
			res.Plan = []Step{{Service: cur.Name, Action: "update", From: cur.State, To: cur.State, Changes: changes}}
		}
		return res, nil
	}
	s, err := cf.Update(ctx, cur.Name, u)
	if err != nil {
		return Result{}, err
	}
	return Result{Service: s, Changed: true, Duration: c.opts.Now().Sub(start)}, nil
}

// changedFields names the fields of u that are set. Fields the domain
// snapshot shows are compared; the others (binary path, account, recovery,
// environment) are write-only there and listed whenever they are set.
func changedFields(cur svcgate.Service, u svcgate.ServiceUpdate) []string {
	var out []string
	add := func(set, differs bool, field string) {
		if set && differs {
			out = append(out, field)
		}
	}
	add(u.DisplayName != nil, u.DisplayName != nil && *u.DisplayName != cur.DisplayName, "display_name")
	add(u.Description != nil, u.Description != nil && *u.Description != cur.Description, "description")
	add(u.StartType != nil, u.StartType != nil && *u.StartType != cur.StartType, "start_type")
	add(u.Dependencies != nil, u.Dependencies != nil && !slices.Equal(*u.Dependencies, cur.Dependencies), "dependencies")
	add(u.BinaryPath != nil, true, "binary_path")
	add(u.Args != nil, true, "args")
	add(u.Account != nil, true, "account")
	add(u.Password != nil, true, "password")
	add(u.Recovery != nil, true, "recovery")
	add(u.Env != nil, true, "env")
	add(u.Dir != nil, true, "dir")
	return out
}

// Delete removes the named service. A service that is not down is refused
// with conflict unless stop is set, in which case it is stopped first
// (waiting up to the default wait, or ctx's deadline if sooner; a stop that
// does not finish in time fails with timeout and deletes nothing). With
// dryRun it returns the plan.
func (c *Controller) Delete(ctx context.Context, name string, stop, dryRun bool) (Result, error) {
	start := c.opts.Now()
	if err := svcgate.ValidateName(name); err != nil {
		return Result{}, err
	}
	cf, err := c.configurer()
	if err != nil {
		return Result{}, err
	}
	cur, wctx, release, err := c.acquire(ctx, name, svcgate.WaitDefault)
	if err != nil {
		return Result{}, err
	}
	defer release()
	up := !cur.State.Down()
	if up && !stop {
		e := svcgate.Errorf(svcgate.CodeConflict, "%s is %s; stop it first or pass stop=true", cur.Name, cur.State)
		e.Service = &cur
		return Result{}, e
	}
	if dryRun {
		var steps []Step
		if up {
			steps = append(steps, Step{Service: cur.Name, Action: string(svcgate.ActionStop), From: cur.State, To: svcgate.StateStopped})
		}
		steps = append(steps, Step{Service: cur.Name, Action: "delete", From: svcgate.StateStopped})
		return Result{Service: cur, DryRun: true, Changed: true, Plan: steps, Duration: c.opts.Now().Sub(start)}, nil
	}
	if up {
		if _, err := c.backend.Control(ctx, cur.Name, svcgate.ActionStop, svcgate.ControlOptions{}); err != nil {
			return Result{}, err
		}
		stopped, _, err := c.wait(wctx, svcgate.ActionStop, cur, false)
		if errors.Is(err, context.DeadlineExceeded) {
			return Result{}, c.timeout(ctx, cur.Name, fmt.Sprintf("%s did not stop in time; not deleted", cur.Name))
		}
		if err != nil {
			return Result{}, err
		}
		cur = stopped
	}
	if err := cf.Delete(ctx, cur.Name); err != nil {
		return Result{}, err
	}
	cur.State = svcgate.StateStopped
	return Result{Service: cur, Changed: true, Duration: c.opts.Now().Sub(start)}, nil
}

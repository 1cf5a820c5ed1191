// Package supervisor is svcgate's built-in process supervisor, the backend
// named "supervisor": it runs the programs declared in the configuration
// file or created through the API, restarts them by policy with exponential
// backoff, stops whole process trees, pauses them with SIGSTOP/SIGCONT and
// captures their output to rotated log files under the state directory.
//
// Each program is owned by one goroutine, its actor (actor.go), which alone
// changes its state, fed by a command channel, the exits of its processes
// and its timers. Readers never wait for an actor: every state change
// publishes an immutable snapshot that List and Get load atomically, and an
// event that the hub (hub.go) fans out to watchers.
package supervisor

import (
	"cmp"
	"context"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/svcgate/svcgate"
)

// Name is the backend's name in the configuration and in Service.Backend.
const Name = "supervisor"

var (
	_ svcgate.Backend    = (*Backend)(nil)
	_ svcgate.Watcher    = (*Backend)(nil)
	_ svcgate.Configurer = (*Backend)(nil)
	_ svcgate.LogReader  = (*Backend)(nil)
)

// Options configure a Backend.
type Options struct {
	// StateDir holds the captured output (logs/) and the programs created
	// at run time (programs/). It is created if missing.
	StateDir string
	// Programs are the programs declared in the configuration file, keyed
	// by name.
	Programs map[string]Program
	// Logger receives the supervisor's own diagnostics; nil discards them.
	Logger *slog.Logger
	// Now is the clock for Service.Since and Event.Time; nil means
	// time.Now. Timers (start_seconds, backoff, stop_timeout) always use
	// the real clock.
	Now func() time.Time
}

// Backend is the supervisor. Its methods are safe for concurrent use. List,
// Get, Watch, Logs and the Configurer methods work from New on; Control
// needs Run and fails with not_ready before it and after it returns.
type Backend struct {
	stateDir string
	log      *slog.Logger
	now      func() time.Time
	hub      *hub
	ready    chan struct{} // closed once Run has issued the autostarts

	mu     sync.Mutex
	phase  phase
	runCtx context.Context
	progs  map[string]*program
	actors sync.WaitGroup
}

type phase int

const (
	phaseNew     phase = iota // before Run: snapshots only, no processes
	phaseRunning              // actors run
	phaseDone                 // Run has returned or is returning
)

// New validates the configured programs, loads those created at run time
// from StateDir/programs/*.json and prepares StateDir/logs/. A persisted
// program named like a configured one is ignored in favour of the
// configuration, with a warning. Every problem with every program is
// reported at once in an invalid_request error; file system failures are
// backend_error. No process starts before Run.
func New(opts Options) (*Backend, error) {
	if opts.StateDir == "" {
		return nil, svcgate.Errorf(svcgate.CodeInvalidRequest, "supervisor: state_dir must be set")
	}
	b := &Backend{
		stateDir: opts.StateDir,
		log:      opts.Logger,
		now:      opts.Now,
		hub:      newHub(),
		ready:    make(chan struct{}),
		progs:    make(map[string]*program),
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.now == nil {
		b.now = time.Now
	}
	for _, dir := range []string{b.stateDir, filepath.Join(b.stateDir, "logs"), b.programsDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, backendError(err, "cannot create the state directory %s", dir)
		}
	}
	persisted, err := b.loadPersisted()
	if err != nil {
		return nil, err
	}

	var probs []string
	for _, name := range slices.Sorted(maps.Keys(opts.Programs)) {
		probs = append(probs, opts.Programs[name].Validate(name)...)
	}
	for _, name := range slices.Sorted(maps.Keys(persisted)) {
		if _, ok := opts.Programs[name]; ok {
			b.log.Warn("a program created at run time has the name of a configured one; the configured one wins",
				"program", name, "file", b.programFile(name))
			delete(persisted, name)
			continue
		}
		probs = append(probs, persisted[name].Validate(name)...)
	}
	if len(probs) > 0 {
		return nil, svcgate.Errorf(svcgate.CodeInvalidRequest, "invalid programs: %s", strings.Join(probs, "; "))
	}
	for name, p := range opts.Programs {
		b.progs[name] = b.newProgram(name, p, true)
	}
	for name, p := range persisted {
		b.progs[name] = b.newProgram(name, p, false)
	}
	return b, nil
}

// Name returns "supervisor".
func (b *Backend) Name() string { return Name }

// Run starts the programs whose start type is auto and supervises every
// program until ctx ends. It then stops them all (stop signal, SIGKILL to
// the whole group after stop_timeout), waits until no process it started
// is left, closes every watcher and returns nil. Run may be called once;
// a second call fails with internal.
func (b *Backend) Run(ctx context.Context) error {
	b.mu.Lock()
	if b.phase != phaseNew {
		b.mu.Unlock()
		return svcgate.Errorf(svcgate.CodeInternal, "supervisor: Run called more than once")
	}
	b.phase, b.runCtx = phaseRunning, ctx
	var initial sync.WaitGroup
	for _, p := range b.progs {
		initial.Add(1)
		b.startActor(p, initial.Done)
	}
	b.mu.Unlock()
	initial.Wait() // every autostart is issued: no caller sees a stale stopped
	close(b.ready)

	<-ctx.Done()
	b.mu.Lock()
	b.phase = phaseDone // no actor starts from here on, so Wait cannot race Add
	b.mu.Unlock()
	b.actors.Wait()
	b.hub.close()
	return nil
}

// Ready returns a channel that is closed once Run has started supervising
// and has spawned the programs whose start type is auto: from then on
// Control no longer fails with not_ready (until Run returns), and those
// programs are past stopped.
func (b *Backend) Ready() <-chan struct{} { return b.ready }

// startActor starts p's goroutine under a context of its own, so that a
// program removed by SetPrograms can be stopped alone. initDone, if not
// nil, is called once the actor has issued its autostart. b.mu must be
// held and the phase must be running.
func (b *Backend) startActor(p *program, initDone func()) {
	ctx, cancel := context.WithCancel(b.runCtx)
	p.cancel, p.started = cancel, true
	b.actors.Add(1)
	go func() {
		defer b.actors.Done()
		defer cancel()
		p.a.run(ctx, initDone)
	}()
}

// List returns a snapshot of every program, sorted by name. It never
// fails and never waits for a program.
func (b *Backend) List(ctx context.Context) ([]svcgate.Service, error) {
	b.mu.Lock()
	ps := slices.Collect(maps.Values(b.progs))
	b.mu.Unlock()
	out := make([]svcgate.Service, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.snapshot())
	}
	slices.SortFunc(out, func(x, y svcgate.Service) int { return cmp.Compare(x.Name, y.Name) })
	return out, nil
}

// Get returns the current snapshot of one program. It fails with
// invalid_name or service_not_found.
func (b *Backend) Get(ctx context.Context, name string) (svcgate.Service, error) {
	p, err := b.lookup(name)
	if err != nil {
		return svcgate.Service{}, err
	}
	return p.snapshot(), nil
}

// Control issues action on the named program and returns once it is
// issued: a start does not wait for start_seconds, a stop does not wait
// for the process to exit. Restart is the exception the Backend contract
// makes: it returns once the old process is gone and the new one spawned.
// If ctx ends first Control fails with timeout, but the restart goes on.
//
// It fails with invalid_name, service_not_found, invalid_request (an
// unknown action), unsupported_action (start arguments; pause, continue or
// reload where the program or the OS cannot), invalid_transition (pause on
// a stopped program, start on a disabled one, …), start_failed (the
// process could not be spawned), not_ready (before Run or after it) and
// timeout (ctx ended).
func (b *Backend) Control(ctx context.Context, name string, action svcgate.Action, opts svcgate.ControlOptions) (svcgate.ControlResult, error) {
	p, err := b.lookup(name)
	if err != nil {
		return svcgate.ControlResult{}, err
	}
	if !action.Valid() {
		return svcgate.ControlResult{}, svcgate.Errorf(svcgate.CodeInvalidRequest, "unknown action %q", action)
	}
	if len(opts.Args) > 0 {
		return svcgate.ControlResult{}, svcgate.Errorf(svcgate.CodeUnsupportedAction,
			"the supervisor cannot pass start arguments; set args in the program's definition")
	}
	if err := b.requireRunning(p); err != nil {
		return svcgate.ControlResult{}, err
	}
	r, err := p.send(ctx, command{kind: cmdControl, action: action})
	return r.res, err
}

// requireRunning fails with not_ready unless p has a live actor.
func (b *Backend) requireRunning(p *program) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.phase == phaseNew:
		return svcgate.Errorf(svcgate.CodeNotReady, "the supervisor is not running yet")
	case b.phase == phaseDone:
		return svcgate.Errorf(svcgate.CodeNotReady, "the supervisor is shutting down")
	case !p.started:
		return svcgate.Errorf(svcgate.CodeNotReady, "program %q is not running under the supervisor yet", p.name)
	}
	return nil
}

// lookup validates name and finds its program.
func (b *Backend) lookup(name string) (*program, error) {
	if err := svcgate.ValidateName(name); err != nil {
		return nil, err
	}
	b.mu.Lock()
	p := b.progs[name]
	b.mu.Unlock()
	if p == nil {
		return nil, svcgate.Errorf(svcgate.CodeServiceNotFound, "no program named %q", name)
	}
	return p, nil
}

// Watch returns a channel of every change of every program, in the order
// they happened: changed events (state or configuration) with the previous
// state, added and removed events from the Configurer methods and
// SetPrograms. Seq is left 0 for the event hub to assign. Each watcher has
// its own unbounded-but-capped queue: a watcher that falls more than 65,536
// events behind has its channel closed, the contract's signal to reload a
// snapshot and watch again, rather than silently missing events. The
// channel also closes when ctx ends or Run returns. Watch fails with
// not_ready after Run has returned.
func (b *Backend) Watch(ctx context.Context) (<-chan svcgate.Event, error) {
	return b.hub.watch(ctx)
}

// SetPrograms replaces the programs declared in the configuration file,
// for a configuration reload. Programs created at run time are kept. Added
// programs start if their start type is auto; removed ones are stopped and
// disappear (SetPrograms waits for that, bounded by ctx); changed ones are
// restarted only if their command, args, env or dir changed and they are
// up, and otherwise take the new settings at once. A configured program
// named like a runtime one replaces it (the file stays on disk, shadowed).
//
// Nothing changes if any program is invalid: the error, invalid_request,
// lists every problem. It also fails with not_ready after Run and with
// timeout when ctx ends before removed programs have stopped (they still
// stop and disappear).
func (b *Backend) SetPrograms(ctx context.Context, programs map[string]Program) error {
	var probs []string
	for _, name := range slices.Sorted(maps.Keys(programs)) {
		probs = append(probs, programs[name].Validate(name)...)
	}
	if len(probs) > 0 {
		return svcgate.Errorf(svcgate.CodeInvalidRequest, "invalid programs: %s", strings.Join(probs, "; "))
	}

	type change struct {
		p       *program
		restart bool
	}
	var changes []change
	var removals []*program
	b.mu.Lock()
	if b.phase == phaseDone {
		b.mu.Unlock()
		return svcgate.Errorf(svcgate.CodeNotReady, "the supervisor is shutting down")
	}
	for name, p := range b.progs {
		if _, keep := programs[name]; p.configured && !keep {
			removals = append(removals, p)
		}
	}
	for name, def := range programs {
		p, ok := b.progs[name]
		if !ok {
			b.addLocked(b.newProgram(name, def, true))
			continue
		}
		if !p.configured {
			b.log.Warn("a configured program replaces the runtime program of the same name", "program", name)
			p.configured = true
		}
		old := p.config().raw
		if old.equal(def) {
			continue
		}
		p.setConfig(def)
		restart := !old.WithDefaults().sameExec(def.WithDefaults())
		if p.started {
			changes = append(changes, change{p, restart})
		} else {
			p.a.reconfigure(false) // no actor yet: b owns the state
		}
	}
	b.mu.Unlock()

	var errs []error
	for _, c := range changes {
		if _, err := c.p.send(ctx, command{kind: cmdConfig, restart: c.restart}); err != nil {
			errs = append(errs, err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for _, p := range removals {
			wg.Go(func() { b.remove(p) })
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, ctxError(ctx, "waiting for removed programs to stop"))
	}
	if len(errs) > 0 {
		return errs[0] // each is an *svcgate.Error; the first is the cause
	}
	return nil
}

// addLocked registers p, announces it and, once Run has started, starts
// its actor (which starts the process if its start type is auto). b.mu
// must be held.
func (b *Backend) addLocked(p *program) {
	b.progs[p.name] = p
	b.hub.publish(svcgate.Event{Type: svcgate.EventAdded, Service: p.snapshot(), Time: b.now()})
	if b.phase == phaseRunning {
		b.startActor(p, nil)
	}
}

// remove stops p's actor (and so its process), then forgets p and
// announces it. The removed event follows p's last state change.
func (b *Backend) remove(p *program) {
	b.mu.Lock()
	if !p.started {
		// Checked and forgotten under one lock, or Run could start an
		// actor for a program no longer in the map.
		b.forgetLocked(p)
		b.mu.Unlock()
		b.hub.publish(svcgate.Event{Type: svcgate.EventRemoved, Service: p.snapshot(), Time: b.now()})
		return
	}
	b.mu.Unlock()
	p.cancel()
	<-p.done
	b.mu.Lock()
	b.forgetLocked(p)
	b.mu.Unlock()
	b.hub.publish(svcgate.Event{Type: svcgate.EventRemoved, Service: p.snapshot(), Time: b.now()})
}

// forgetLocked drops p from the registry. b.mu must be held.
func (b *Backend) forgetLocked(p *program) {
	p.removed.Store(true)
	if b.progs[p.name] == p {
		delete(b.progs, p.name)
	}
}

// backendError classifies an OS error at the backend boundary, keeping
// the errno for Error.OSError.
func backendError(err error, format string, args ...any) *svcgate.Error {
	e := svcgate.Errorf(svcgate.CodeBackendError, format, args...)
	e.Err = err
	e.OSError = errnoOf(err)
	return e
}

// ctxError reports that ctx ended while doing what.
func ctxError(ctx context.Context, what string) *svcgate.Error {
	return &svcgate.Error{Code: svcgate.CodeTimeout, Message: "timed out " + what, Err: ctx.Err()}
}

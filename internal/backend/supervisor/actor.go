package supervisor

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svcgate/svcgate"
)

// outputGrace bounds how long a stopping actor waits for the output of its
// processes to drain. A process that escaped the group (setsid) may hold
// the pipe open forever; after the grace the pipe is closed under it.
const outputGrace = 2 * time.Second

// program is one supervised program: its configuration, its published
// snapshot and the mailbox of its actor.
type program struct {
	name string
	b    *Backend

	// configured, started and cancel are guarded by b.mu.
	configured bool // declared in the configuration file, not created at run time
	started    bool // the actor goroutine runs (or ran)
	cancel     context.CancelFunc

	cfg     atomic.Pointer[config]
	snap    atomic.Pointer[svcgate.Service]
	removed atomic.Bool // deleted: late callers get service_not_found

	cmds chan command
	done chan struct{} // closed when the actor has exited

	stdout, stderr *rotatingFile

	// a is the state machine. Before Run it is touched only by b under
	// b.mu; from startActor on only by the actor goroutine.
	a actor
}

// config is a program's definition as declared (raw, what is persisted and
// compared) and with its defaults (eff, what the actor acts on).
type config struct {
	raw, eff Program
}

func (b *Backend) newProgram(name string, def Program, configured bool) *program {
	p := &program{
		name:       name,
		b:          b,
		configured: configured,
		cmds:       make(chan command, 8),
		done:       make(chan struct{}),
		stdout:     newRotatingFile(logPath(b.stateDir, name, "out"), b.log),
		stderr:     newRotatingFile(logPath(b.stateDir, name, "err"), b.log),
	}
	p.setConfig(def)
	p.a = actor{p: p, b: b, state: svcgate.StateStopped, since: b.now()}
	svc := p.a.build()
	p.snap.Store(&svc)
	return p
}

func (p *program) config() *config { return p.cfg.Load() }

func (p *program) setConfig(def Program) {
	p.cfg.Store(&config{raw: def.clone(), eff: def.WithDefaults()})
}

// snapshot returns a copy of the last published state that the caller may
// modify freely.
func (p *program) snapshot() svcgate.Service { return cloneService(*p.snap.Load()) }

func cloneService(s svcgate.Service) svcgate.Service {
	s.Accepts = slices.Clone(s.Accepts)
	s.Dependencies = slices.Clone(s.Dependencies)
	return s
}

type cmdKind int

const (
	cmdControl cmdKind = iota // run action
	cmdConfig                 // the configuration changed: republish, maybe restart
	cmdRetire                 // exit if down (Delete)
)

type command struct {
	kind    cmdKind
	action  svcgate.Action
	restart bool        // cmdConfig: restart a live process to apply the change
	reply   chan result // capacity 1: the actor never blocks on a caller
}

type result struct {
	res svcgate.ControlResult
	err error
}

// send hands c to p's actor and waits for its answer, bounded by ctx. An
// actor that has exited answers not_ready (shutdown) or service_not_found
// (deleted).
func (p *program) send(ctx context.Context, c command) (result, error) {
	c.reply = make(chan result, 1)
	select {
	case p.cmds <- c:
	case <-p.done:
		return result{}, p.goneError()
	case <-ctx.Done():
		return result{}, ctxError(ctx, "waiting for program "+p.name)
	}
	select {
	case r := <-c.reply:
		return r, r.err
	case <-p.done:
		// The actor may have answered just before exiting (retire).
		select {
		case r := <-c.reply:
			return r, r.err
		default:
			return result{}, p.goneError()
		}
	case <-ctx.Done():
		return result{}, ctxError(ctx, "waiting for program "+p.name)
	}
}

func (p *program) goneError() error {
	if p.removed.Load() {
		return svcgate.Errorf(svcgate.CodeServiceNotFound, "no program named %q", p.name)
	}
	return svcgate.Errorf(svcgate.CodeNotReady, "the supervisor is shutting down")
}

// exitStatus is how a process ended.
type exitStatus struct {
	code     int    // exit status, or 128+signal
	signaled bool   // killed by a signal
	text     string // "exit status 1", "signal: killed"
}

// clean reports an exit that on_failure does not restart: status 0. A
// death by signal is a failure here, since the supervisor's own stop
// signal is handled in stop_pending before this question arises.
func (s exitStatus) clean() bool { return s.code == 0 && !s.signaled }

// spawned is one process of a program.
type spawned struct {
	proc   *proc
	exited chan exitStatus // capacity 1, written once by the waiter
	output chan struct{}   // closed when both copiers have finished
	pipes  [2]*os.File     // read ends, closed early if output never ends
}

// actor is a program's state machine. All its fields belong to the actor
// goroutine (see program.a).
type actor struct {
	b *Backend
	p *program

	state    svcgate.State
	sub      string
	pid      int
	exitCode int
	since    time.Time

	cur     *spawned   // the live process, nil when none
	outputs []*spawned // processes whose output may still be draining
	retries int        // failed starts in a row

	startTimer   *time.Timer // start_seconds: start_pending → running
	backoffTimer *time.Timer // the next start attempt
	killTimer    *time.Timer // stop_timeout: stop signal → SIGKILL

	startAfterStop bool          // restart: spawn once stop_pending ends
	waiters        []chan result // restarts answered when that spawn happens
	shutdown       bool          // stopping for good: exit once down
}

// run is the actor's loop: it owns the program until ctx ends (Run's end,
// or the program's removal) or Delete retires it, and returns once no
// process of the program is left.
func (a *actor) run(ctx context.Context, initDone func()) {
	defer a.finish()
	if cfg := a.cfg(); cfg.autostart() && !cfg.Disabled {
		a.retries = 0
		_ = a.spawn() // a failure is in the state; nobody to tell
	}
	if initDone != nil {
		initDone()
	}
	ctxDone := ctx.Done()
	for !a.shutdown || a.cur != nil {
		var exited <-chan exitStatus
		if a.cur != nil {
			exited = a.cur.exited
		}
		// Everything that changes the program arrives here, one event at
		// a time: commands, the exit of its process and its three timers.
		select {
		case <-ctxDone:
			ctxDone = nil // once; then keep going until the process is gone
			a.beginShutdown()
		case c := <-a.p.cmds:
			a.handle(c)
		case st := <-exited:
			a.onExit(st)
		case <-timerC(a.startTimer):
			a.startTimer = nil
			a.retries = 0 // it stayed up: the run of failed starts is over
			a.set(svcgate.StateRunning, "")
		case <-timerC(a.backoffTimer):
			a.backoffTimer = nil
			_ = a.spawn()
		case <-timerC(a.killTimer):
			a.killTimer = nil
			if err := a.cur.proc.kill(); err != nil {
				a.b.log.Error("cannot kill program", "program", a.p.name, "pid", a.pid, "err", err)
			}
			a.set(svcgate.StateStopPending, "killing")
		}
	}
}

// beginShutdown stops the program for good: Run is ending or the program
// was removed from the configuration.
func (a *actor) beginShutdown() {
	a.shutdown = true
	a.startAfterStop = false
	a.answerWaiters(result{err: svcgate.Errorf(svcgate.CodeNotReady, "the supervisor is shutting down")})
	stopTimer(&a.backoffTimer)
	switch {
	case a.cur != nil && a.state != svcgate.StateStopPending:
		a.stop()
	case a.cur == nil && !a.state.Down():
		a.set(svcgate.StateStopped, "") // a pending backoff is cancelled
	}
}

// finish lets the output of the program's processes drain, closes its log
// files and marks the actor gone.
func (a *actor) finish() {
	stopTimer(&a.startTimer)
	stopTimer(&a.backoffTimer)
	stopTimer(&a.killTimer)
	grace := time.NewTimer(outputGrace)
	defer grace.Stop()
	for _, s := range a.outputs {
		select {
		case <-s.output:
		case <-grace.C:
			// Closing the read end unblocks the copier (pipes are
			// pollable); the process holding the write end gets EPIPE.
			s.pipes[0].Close()
			s.pipes[1].Close()
			<-s.output
		}
	}
	a.p.stdout.Close()
	a.p.stderr.Close()
	close(a.p.done)
}

func (a *actor) cfg() Program { return a.p.config().eff }

func (a *actor) handle(c command) {
	switch c.kind {
	case cmdControl:
		if a.shutdown {
			c.reply <- result{err: svcgate.Errorf(svcgate.CodeNotReady, "the supervisor is shutting down")}
			return
		}
		if r, deferred := a.control(c); !deferred {
			c.reply <- r
		} else {
			a.waiters = append(a.waiters, c.reply)
		}
	case cmdConfig:
		// During shutdown only republish: restarting would outlive Run.
		a.reconfigure(c.restart && !a.shutdown)
		c.reply <- result{}
	case cmdRetire:
		// Decided here, between two commands, so no start can slip in
		// between the check and the exit.
		if a.cur != nil || !a.state.Down() {
			c.reply <- result{err: a.errorf(svcgate.CodeConflict, "program %q is %s; stop it before deleting it", a.p.name, a.state)}
			return
		}
		a.shutdown = true
		a.p.removed.Store(true) // before done closes: late callers get service_not_found
		c.reply <- result{}
	}
}

// control runs one action. deferred means the answer comes later, from
// answerWaiters: a restart is answered when its new process is spawned.
func (a *actor) control(c command) (r result, deferred bool) {
	cfg := a.cfg()
	changed := result{res: svcgate.ControlResult{Changed: true}}
	unchanged := result{}
	switch c.action {
	case svcgate.ActionStart:
		if cfg.Disabled {
			return result{err: a.errorf(svcgate.CodeInvalidTransition, "program %q is disabled; change its start type to start it", a.p.name)}, false
		}
		switch a.state {
		case svcgate.StateRunning, svcgate.StateStartPending: // a backoff counts: it is starting
			return unchanged, false
		case svcgate.StatePaused:
			// start cannot lead to running from here; continue can.
			return result{err: a.errorf(svcgate.CodeInvalidTransition, "program %q is paused; continue it instead", a.p.name)}, false
		case svcgate.StateStopPending:
			// Queued rather than refused: the intent is clear, and a
			// stop followed by a start must not depend on timing.
			a.startAfterStop = true
			return changed, false
		}
		// stopped or failed: a start by hand gets the full set of retries.
		a.retries = 0
		if err := a.spawn(); err != nil {
			return result{err: err}, false
		}
		return changed, false

	case svcgate.ActionStop:
		// The last word wins: a stop cancels a queued start or restart.
		wasQueued := a.startAfterStop
		a.startAfterStop = false
		a.answerWaiters(result{err: a.errorf(svcgate.CodeConflict, "the restart of %q was superseded by a stop", a.p.name)})
		switch {
		case a.state == svcgate.StateStopped:
			return unchanged, false
		case a.state == svcgate.StateStopPending:
			return result{res: svcgate.ControlResult{Changed: wasQueued}}, false
		case a.cur == nil:
			// failed, or waiting out a backoff: no process to signal.
			// Leaving failed for stopped lets a caller waiting for the
			// stop's target state finish; exit_code still tells why.
			stopTimer(&a.backoffTimer)
			a.set(svcgate.StateStopped, "")
			return changed, false
		}
		a.stop()
		return changed, false

	case svcgate.ActionRestart:
		if cfg.Disabled {
			return result{err: a.errorf(svcgate.CodeInvalidTransition, "program %q is disabled; change its start type to start it", a.p.name)}, false
		}
		if a.cur == nil { // stopped, failed or in backoff: just start
			stopTimer(&a.backoffTimer)
			a.retries = 0
			if err := a.spawn(); err != nil {
				return result{err: err}, false
			}
			return changed, false
		}
		// The answer waits for the new spawn (see onExit), as the Backend
		// contract asks of restart; the actor itself does not wait.
		if a.state != svcgate.StateStopPending {
			a.stop()
		}
		a.startAfterStop = true
		return result{}, true

	case svcgate.ActionPause:
		if !canPause {
			return result{err: a.errorf(svcgate.CodeUnsupportedAction, "programs cannot be paused on this operating system")}, false
		}
		// Only running: freezing a starting process would make
		// start_seconds measure nothing.
		switch a.state {
		case svcgate.StatePaused:
			return unchanged, false
		case svcgate.StateRunning:
			if err := a.cur.proc.pause(); err != nil {
				return result{err: backendError(err, "cannot pause program %q", a.p.name)}, false
			}
			a.set(svcgate.StatePaused, "")
			return changed, false
		}
		return result{err: a.errorf(svcgate.CodeInvalidTransition, "program %q is %s; only a running program can be paused", a.p.name, a.state)}, false

	case svcgate.ActionContinue:
		if !canPause {
			return result{err: a.errorf(svcgate.CodeUnsupportedAction, "programs cannot be paused on this operating system")}, false
		}
		switch a.state {
		case svcgate.StateRunning, svcgate.StateStartPending:
			return unchanged, false
		case svcgate.StatePaused:
			if err := a.cur.proc.resume(); err != nil {
				return result{err: backendError(err, "cannot continue program %q", a.p.name)}, false
			}
			a.set(svcgate.StateRunning, "")
			return changed, false
		}
		return result{err: a.errorf(svcgate.CodeInvalidTransition, "program %q is %s; only a paused program can be continued", a.p.name, a.state)}, false

	case svcgate.ActionReload:
		if cfg.ReloadSignal == "" || !canSignal {
			return result{err: a.errorf(svcgate.CodeUnsupportedAction, "program %q declares no reload_signal", a.p.name)}, false
		}
		// A paused program would see the signal only when continued,
		// and a starting one may not have installed its handler yet.
		if a.state != svcgate.StateRunning {
			return result{err: a.errorf(svcgate.CodeInvalidTransition, "program %q is %s; only a running program can be reloaded", a.p.name, a.state)}, false
		}
		if err := a.cur.proc.signal(cfg.ReloadSignal); err != nil {
			return result{err: backendError(err, "cannot send SIG%s to program %q", cfg.ReloadSignal, a.p.name)}, false
		}
		return changed, false
	}
	return result{err: svcgate.Errorf(svcgate.CodeInvalidRequest, "unknown action %q", c.action)}, false
}

// spawn starts a new process of the program and enters start_pending (or
// running at once when start_seconds is 0). A failure to spawn at all
// (command not found, permission denied) fails the program without
// retries: retrying cannot fix it. It returns a start_failed error then.
func (a *actor) spawn() error {
	cfg := a.cfg()
	s, err := a.startProcess(cfg)
	if err != nil {
		a.exitCode = -1 // no exit status: nothing ran
		reason := "cannot start process"
		switch {
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, exec.ErrNotFound):
			reason = "command not found"
		case errors.Is(err, fs.ErrPermission):
			reason = "permission denied"
		}
		a.b.log.Error("cannot start program", "program", a.p.name, "command", cfg.Command, "err", err)
		a.set(svcgate.StateFailed, reason)
		e := a.errorf(svcgate.CodeStartFailed, "program %q: %s", a.p.name, reason)
		e.Err = err
		return e
	}
	a.cur, a.pid = s, s.proc.pid
	a.outputs = append(a.outputs, s) // finish waits for its output to drain
	if d := cfg.startDelay(); d > 0 {
		a.startTimer = time.NewTimer(d)
		a.set(svcgate.StateStartPending, "starting")
		return nil
	}
	a.retries = 0
	a.set(svcgate.StateRunning, "")
	return nil
}

// startProcess spawns the program with its output piped to its log files.
// The pipes are ours rather than os/exec's: with an io.Writer, Wait would
// also wait for every grandchild that inherited the pipe to close it.
func (a *actor) startProcess(cfg Program) (*spawned, error) {
	cmd := exec.Command(cfg.Command, cfg.Args...)
	cmd.Dir = cfg.Dir
	// os/exec keeps the last of duplicate keys, so the program's env wins.
	cmd.Env = os.Environ()
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) {
		cmd.Env = append(cmd.Env, k+"="+cfg.Env[k])
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	pr, err := startProc(cmd)
	outW.Close() // the child has its copies; ours would keep the pipes open
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}

	a.p.stdout.setLimits(*cfg.LogMaxBytes, *cfg.LogBackups)
	a.p.stderr.setLimits(*cfg.LogMaxBytes, *cfg.LogBackups)
	s := &spawned{proc: pr, exited: make(chan exitStatus, 1), output: make(chan struct{}), pipes: [2]*os.File{outR, errR}}
	var wg sync.WaitGroup
	wg.Go(func() { copyOutput(a.p.stdout, outR) })
	wg.Go(func() { copyOutput(a.p.stderr, errR) })
	go func() {
		wg.Wait()
		close(s.output)
	}()
	go func() {
		_ = cmd.Wait() // the status is in ProcessState
		s.exited <- exitInfo(cmd.ProcessState)
	}()
	return s, nil
}

// copyOutput drains r into w until every writer has closed the pipe.
func copyOutput(w *rotatingFile, r *os.File) {
	defer r.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			w.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// stop sends the stop signal to the whole group and arms the SIGKILL
// timer. A paused group also gets SIGCONT, or it could not act on the
// signal before the timeout.
func (a *actor) stop() {
	cfg := a.cfg()
	stopTimer(&a.startTimer)
	if err := a.cur.proc.signal(cfg.StopSignal); err != nil {
		a.b.log.Error("cannot send the stop signal; killing", "program", a.p.name, "pid", a.pid, "err", err)
		_ = a.cur.proc.kill()
	}
	if a.state == svcgate.StatePaused {
		_ = a.cur.proc.resume()
	}
	a.killTimer = time.NewTimer(time.Duration(cfg.StopTimeout))
	a.set(svcgate.StateStopPending, "")
}

// onExit applies the program's restart policy to the exit of its process.
func (a *actor) onExit(st exitStatus) {
	// The leader is gone; whatever it left in its group goes with it.
	a.cur.proc.cleanup()
	a.cur = nil
	a.outputs = slices.DeleteFunc(a.outputs, func(s *spawned) bool { return isClosed(s.output) })
	stopTimer(&a.startTimer)
	stopTimer(&a.killTimer)
	a.pid, a.exitCode = 0, st.code
	cfg := a.cfg()

	switch {
	case a.state == svcgate.StateStopPending: // the stop we asked for
		a.set(svcgate.StateStopped, "")
		if a.startAfterStop && !a.shutdown {
			a.startAfterStop = false
			r := result{res: svcgate.ControlResult{Changed: true}}
			if cfg.Disabled {
				r.err = a.errorf(svcgate.CodeInvalidTransition, "program %q is disabled; change its start type to start it", a.p.name)
			} else {
				a.retries = 0
				r.err = a.spawn()
			}
			a.answerWaiters(r)
		}

	case a.shutdown:
		// It exited by itself as Run ended: report how, never restart.
		a.settleExit(st)

	case a.state == svcgate.StateStartPending: // did not last start_seconds
		a.retries++
		if a.retries > *cfg.StartRetries {
			a.set(svcgate.StateFailed, "exited too quickly ("+st.text+")")
			return
		}
		a.backoffTimer = time.NewTimer(cfg.backoff(a.retries))
		a.set(svcgate.StateStartPending, "backoff")

	default: // running or paused: it had started properly, then exited
		// A disabled program is not restarted: disabled refuses starts,
		// the supervisor's own included.
		restart := cfg.Autorestart == RestartAlways || cfg.Autorestart == RestartOnFailure && !st.clean()
		if !restart || cfg.Disabled {
			a.settleExit(st)
			return
		}
		a.b.log.Info("program exited; restarting", "program", a.p.name, "status", st.text)
		a.retries = 0 // it had been running: a fresh run of attempts
		a.backoffTimer = time.NewTimer(cfg.backoff(1))
		a.set(svcgate.StateStartPending, "backoff")
	}
}

// settleExit enters stopped after a clean exit and failed otherwise.
func (a *actor) settleExit(st exitStatus) {
	if st.clean() {
		a.set(svcgate.StateStopped, "exited ("+st.text+")")
	} else {
		a.set(svcgate.StateFailed, "exited ("+st.text+")")
	}
}

// reconfigure publishes the program's new configuration and, if asked to
// and a process is up, restarts it so that a new command takes effect.
func (a *actor) reconfigure(restart bool) {
	a.publish(a.state, true)
	if restart && a.cur != nil && a.state != svcgate.StateStopPending {
		a.stop()
		a.startAfterStop = true
	}
}

func (a *actor) answerWaiters(r result) {
	for _, w := range a.waiters {
		w <- r
	}
	a.waiters = nil
}

// set moves to state s with detail sub and publishes the change.
func (a *actor) set(s svcgate.State, sub string) {
	prev := a.state
	if s != prev {
		a.since = a.b.now()
	}
	a.state, a.sub = s, sub
	a.publish(prev, false)
}

// publish stores a new snapshot and emits a changed event for it, unless
// nothing a caller can see changed (force: the configuration changed).
func (a *actor) publish(prev svcgate.State, force bool) {
	svc := a.build()
	if old := a.p.snap.Load(); !force && old != nil && sameService(*old, svc) {
		return
	}
	a.p.snap.Store(&svc)
	a.b.hub.publish(svcgate.Event{Type: svcgate.EventChanged, Time: a.b.now(), Service: cloneService(svc), Previous: prev})
}

// build makes the snapshot of the current state.
func (a *actor) build() svcgate.Service {
	cfg := a.cfg()
	accepts := []svcgate.Accept{}
	if a.state == svcgate.StateRunning || a.state == svcgate.StatePaused {
		accepts = append(accepts, svcgate.AcceptStop)
		if canPause {
			accepts = append(accepts, svcgate.AcceptPauseContinue)
		}
		if canSignal && cfg.ReloadSignal != "" {
			accepts = append(accepts, svcgate.AcceptReload)
		}
	}
	display := cfg.DisplayName
	if display == "" {
		display = a.p.name
	}
	return svcgate.Service{
		Name:         a.p.name,
		DisplayName:  display,
		Description:  cfg.Description,
		State:        a.state,
		SubState:     a.sub,
		StartType:    cfg.startType(),
		PID:          a.pid,
		Accepts:      accepts,
		ExitCode:     a.exitCode,
		Since:        a.since,
		Dependencies: []string{},
		Backend:      Name,
	}
}

// errorf returns an error carrying the program's current snapshot.
func (a *actor) errorf(code, format string, args ...any) *svcgate.Error {
	e := svcgate.Errorf(code, format, args...)
	svc := a.build()
	e.Service = &svc
	return e
}

func sameService(x, y svcgate.Service) bool {
	return x.State == y.State && x.SubState == y.SubState && x.PID == y.PID &&
		x.ExitCode == y.ExitCode && x.Since.Equal(y.Since) && slices.Equal(x.Accepts, y.Accepts) &&
		x.DisplayName == y.DisplayName && x.Description == y.Description && x.StartType == y.StartType
}

// timerC returns t's channel, or nil (never ready) when t is not armed.
func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

func stopTimer(t **time.Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

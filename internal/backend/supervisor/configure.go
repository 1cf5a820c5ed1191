package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/svcgate/svcgate"
)

// Create adds a program at run time from the create body and persists it
// under StateDir/programs/, so it survives a restart of the agent. The
// start type maps to autostart (auto: also started now, or as soon as Run
// starts; manual, the default: created stopped; disabled). Recovery maps to
// autorestart: restart actions give on_failure with backoff from their
// delays, "none" or no actions give never.
//
// It fails with invalid_name, invalid_request (binary_path not absolute,
// an invalid field), unsupported_action (account, password, dependencies,
// delayed_auto, recovery.reset_after, mixed recovery actions: the
// supervisor runs programs as the agent's user, without ordering),
// conflict (the name exists), backend_error (the file could not be
// written) and not_ready (after Run).
func (b *Backend) Create(ctx context.Context, spec svcgate.ServiceSpec) (svcgate.Service, error) {
	if err := validateProgramName(spec.Name); err != nil {
		return svcgate.Service{}, err
	}
	var unsupported []string
	if spec.Account != "" {
		unsupported = append(unsupported, errAccount)
	}
	if spec.Password != "" {
		unsupported = append(unsupported, errPassword)
	}
	if len(spec.Dependencies) > 0 {
		unsupported = append(unsupported, errDependencies)
	}
	if len(unsupported) > 0 {
		return svcgate.Service{}, svcgate.Errorf(svcgate.CodeUnsupportedAction, "%s", strings.Join(unsupported, "; "))
	}
	def := Program{
		Args:        slices.Clone(spec.Args),
		Env:         maps.Clone(spec.Env),
		Dir:         spec.Dir,
		DisplayName: spec.DisplayName,
		Description: spec.Description,
	}
	if err := setBinaryPath(&def, spec.BinaryPath); err != nil {
		return svcgate.Service{}, err
	}
	if err := setStartType(&def, spec.StartType); err != nil {
		return svcgate.Service{}, err
	}
	if err := setRecovery(&def, spec.Recovery); err != nil {
		return svcgate.Service{}, err
	}
	if probs := def.Validate(spec.Name); len(probs) > 0 {
		return svcgate.Service{}, svcgate.Errorf(svcgate.CodeInvalidRequest, "%s", strings.Join(probs, "; "))
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.phase == phaseDone {
		return svcgate.Service{}, svcgate.Errorf(svcgate.CodeNotReady, "the supervisor is shutting down")
	}
	if _, ok := b.progs[spec.Name]; ok {
		return svcgate.Service{}, svcgate.Errorf(svcgate.CodeConflict, "a program named %q already exists", spec.Name)
	}
	if err := b.persist(spec.Name, def); err != nil {
		return svcgate.Service{}, err
	}
	p := b.newProgram(spec.Name, def, false)
	b.addLocked(p)
	return p.snapshot(), nil
}

// Update changes the fields set in u of a program created at run time and
// persists the result. A new binary_path, args, env or dir takes effect at
// the next start; display name, description, start type and recovery at
// once. A program declared in the configuration file cannot be changed
// here: the file would undo it at the next reload.
//
// It fails with invalid_name, service_not_found, conflict (declared in the
// configuration file), invalid_request, unsupported_action (as Create),
// backend_error, not_ready and timeout.
func (b *Backend) Update(ctx context.Context, name string, u svcgate.ServiceUpdate) (svcgate.Service, error) {
	p, err := b.lookup(name)
	if err != nil {
		return svcgate.Service{}, err
	}
	var unsupported []string
	if u.Account != nil && *u.Account != "" {
		unsupported = append(unsupported, errAccount)
	}
	if u.Password != nil && *u.Password != "" {
		unsupported = append(unsupported, errPassword)
	}
	if u.Dependencies != nil && len(*u.Dependencies) > 0 {
		unsupported = append(unsupported, errDependencies)
	}
	if len(unsupported) > 0 {
		return svcgate.Service{}, svcgate.Errorf(svcgate.CodeUnsupportedAction, "%s", strings.Join(unsupported, "; "))
	}

	b.mu.Lock()
	if err := b.checkRuntimeProgram(p); err != nil {
		b.mu.Unlock()
		return svcgate.Service{}, err
	}
	def := p.config().raw.clone()
	if err := applyUpdate(&def, u); err != nil {
		b.mu.Unlock()
		return svcgate.Service{}, err
	}
	if probs := def.Validate(name); len(probs) > 0 {
		b.mu.Unlock()
		return svcgate.Service{}, svcgate.Errorf(svcgate.CodeInvalidRequest, "%s", strings.Join(probs, "; "))
	}
	if err := b.persist(name, def); err != nil {
		b.mu.Unlock()
		return svcgate.Service{}, err
	}
	p.setConfig(def)
	started := p.started
	if !started {
		p.a.reconfigure(false) // no actor yet: b owns the state
	}
	b.mu.Unlock()

	if started {
		// The actor republishes the snapshot (start type, display name)
		// and emits the changed event in order with its state changes.
		if _, err := p.send(ctx, command{kind: cmdConfig}); err != nil {
			return svcgate.Service{}, err
		}
	}
	return p.snapshot(), nil
}

// Delete removes a stopped program created at run time, from memory and
// from disk, and emits a removed event. Its log files are kept. It fails
// with invalid_name, service_not_found, conflict (the program is not
// stopped or failed, or it is declared in the configuration file),
// backend_error (its file could not be removed; it is gone from memory
// nonetheless), not_ready and timeout.
func (b *Backend) Delete(ctx context.Context, name string) error {
	p, err := b.lookup(name)
	if err != nil {
		return err
	}
	b.mu.Lock()
	if err := b.checkRuntimeProgram(p); err != nil {
		b.mu.Unlock()
		return err
	}
	var fileErr error
	if !p.started {
		// No actor: b owns the state. Check and forget under one lock,
		// or Run could start an actor for a forgotten program.
		if !p.snapshot().State.Down() {
			b.mu.Unlock()
			return svcgate.Errorf(svcgate.CodeConflict, "program %q is not stopped", name)
		}
		fileErr = b.forgetFileLocked(p)
		b.mu.Unlock()
	} else {
		b.mu.Unlock()
		// Only the actor knows for sure that no process runs: it exits
		// if the program is down, atomically with respect to Control.
		if _, err := p.send(ctx, command{kind: cmdRetire}); err != nil {
			return err
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			return ctxError(ctx, "waiting for program "+name+" to be released")
		}
		b.mu.Lock()
		fileErr = b.forgetFileLocked(p)
		b.mu.Unlock()
	}
	b.hub.publish(svcgate.Event{Type: svcgate.EventRemoved, Service: p.snapshot(), Time: b.now()})
	if fileErr != nil {
		b.log.Error("program deleted but its definition file remains; it will reappear at the next start",
			"program", name, "file", b.programFile(name), "err", fileErr)
		return backendError(fileErr, "program %q was deleted but its definition file could not be removed", name)
	}
	return nil
}

// forgetFileLocked forgets p and removes its file, under b.mu like
// Create's persist, so that a Create of the same name cannot slip in
// between and lose its new file.
func (b *Backend) forgetFileLocked(p *program) error {
	b.forgetLocked(p)
	if err := os.Remove(b.programFile(p.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// checkRuntimeProgram fails unless p is a live program created at run
// time. b.mu must be held.
func (b *Backend) checkRuntimeProgram(p *program) error {
	switch {
	case b.phase == phaseDone:
		return svcgate.Errorf(svcgate.CodeNotReady, "the supervisor is shutting down")
	case b.progs[p.name] != p || p.removed.Load():
		return svcgate.Errorf(svcgate.CodeServiceNotFound, "no program named %q", p.name)
	case p.configured:
		return svcgate.Errorf(svcgate.CodeConflict, "program %q is declared in the configuration file; edit it there", p.name)
	}
	return nil
}

const (
	errAccount      = "account: the supervisor runs programs as the agent's own user"
	errPassword     = "password: the supervisor runs programs as the agent's own user"
	errDependencies = "dependencies: the supervisor has no start ordering between programs"
)

func applyUpdate(def *Program, u svcgate.ServiceUpdate) error {
	if u.BinaryPath != nil {
		if err := setBinaryPath(def, *u.BinaryPath); err != nil {
			return err
		}
	}
	if u.StartType != nil {
		if err := setStartType(def, *u.StartType); err != nil {
			return err
		}
	}
	if u.Recovery != nil {
		if err := setRecovery(def, u.Recovery); err != nil {
			return err
		}
	}
	if u.DisplayName != nil {
		def.DisplayName = *u.DisplayName
	}
	if u.Description != nil {
		def.Description = *u.Description
	}
	if u.Args != nil {
		def.Args = slices.Clone(*u.Args)
	}
	if u.Env != nil {
		def.Env = maps.Clone(*u.Env)
	}
	if u.Dir != nil {
		def.Dir = *u.Dir
	}
	return nil
}

// setBinaryPath requires an absolute path: the agent's PATH and working
// directory are accidents of how it was started.
func setBinaryPath(def *Program, path string) error {
	if !filepath.IsAbs(path) {
		return svcgate.Errorf(svcgate.CodeInvalidRequest, "binary_path must be an absolute path, got %q", path)
	}
	def.Command = path
	return nil
}

func setStartType(def *Program, t svcgate.StartType) error {
	switch t {
	case svcgate.StartAuto:
		def.Autostart, def.Disabled = ptr(true), false
	case "", svcgate.StartManual:
		def.Autostart, def.Disabled = ptr(false), false
	case svcgate.StartDisabled:
		def.Autostart, def.Disabled = ptr(false), true
	case svcgate.StartDelayedAuto:
		return svcgate.Errorf(svcgate.CodeUnsupportedAction, "start_type: the supervisor has no delayed_auto start; use auto")
	default:
		return svcgate.Errorf(svcgate.CodeInvalidRequest, "start_type: unknown start type %q", t)
	}
	return nil
}

// setRecovery maps a Windows-style recovery policy onto autorestart. The
// supervisor's backoff doubles from backoff_initial up to backoff_max, so
// the first delay becomes backoff_initial and the last one backoff_max
// (5s, 30s, 60s restarts after 5s, 10s, 20s, 40s, 60s, 60s …). A delay of
// 0 means at once, which the supervisor spells 1ms since 0 is "default".
func setRecovery(def *Program, r *svcgate.Recovery) error {
	if r == nil {
		return nil
	}
	if r.ResetAfter != 0 {
		return svcgate.Errorf(svcgate.CodeUnsupportedAction,
			"recovery.reset_after: the supervisor forgets failures once a program has stayed up for its start_seconds, not after a fixed time")
	}
	kind := ""
	for i, a := range r.Actions {
		if a.Type != "restart" && a.Type != "none" {
			return svcgate.Errorf(svcgate.CodeInvalidRequest, "recovery.actions[%d].type: must be restart or none, got %q", i, a.Type)
		}
		if kind != "" && a.Type != kind {
			return svcgate.Errorf(svcgate.CodeUnsupportedAction,
				"recovery.actions: the supervisor either restarts on every failure or never; it cannot mix restart and none")
		}
		kind = a.Type
	}
	if kind == "" || kind == "none" {
		def.Autorestart = RestartNever
		return nil
	}
	first, last := r.Actions[0].Delay, r.Actions[len(r.Actions)-1].Delay
	if first == 0 {
		first = svcgate.Duration(time.Millisecond)
	}
	def.Autorestart = RestartOnFailure
	def.BackoffInitial, def.BackoffMax = first, max(first, last)
	return nil
}

func (b *Backend) programsDir() string { return filepath.Join(b.stateDir, "programs") }

func (b *Backend) programFile(name string) string {
	return filepath.Join(b.programsDir(), name+".json")
}

// persist writes def atomically: a crash leaves either the old file or the
// new one, never a torn one (temporary file, fsync, rename, fsync of the
// directory). The file is 0600: env may hold secrets.
func (b *Backend) persist(name string, def Program) error {
	data, err := json.MarshalIndent(def, "", "  ")
	if err != nil {
		return &svcgate.Error{Code: svcgate.CodeInternal, Message: "cannot encode program " + name, Err: err}
	}
	f, err := os.CreateTemp(b.programsDir(), "."+name+".*.tmp")
	if err != nil {
		return backendError(err, "cannot save program %q", name)
	}
	tmp := f.Name()
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, b.programFile(name))
	}
	if err != nil {
		os.Remove(tmp)
		return backendError(err, "cannot save program %q", name)
	}
	// Make the rename itself durable. Windows cannot open a directory for
	// syncing, and does not need to.
	if d, err := os.Open(b.programsDir()); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// loadPersisted reads the programs created at run time. A file that does
// not decode strictly is an error naming the file: starting without a
// program the operator created would be a silent surprise.
func (b *Backend) loadPersisted() (map[string]Program, error) {
	entries, err := os.ReadDir(b.programsDir())
	if err != nil {
		return nil, backendError(err, "cannot read %s", b.programsDir())
	}
	out := make(map[string]Program)
	for _, e := range entries {
		fname := e.Name()
		if strings.HasPrefix(fname, ".") {
			if strings.HasSuffix(fname, ".tmp") { // left by a crash during persist
				os.Remove(filepath.Join(b.programsDir(), fname))
			}
			continue
		}
		name, ok := strings.CutSuffix(fname, ".json")
		if !ok || e.IsDir() {
			continue
		}
		path := filepath.Join(b.programsDir(), fname)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, backendError(err, "cannot read %s", path)
		}
		var def Program
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&def); err != nil {
			return nil, svcgate.Errorf(svcgate.CodeInvalidRequest, "%s: %v", path, err)
		}
		out[name] = def
	}
	return out, nil
}

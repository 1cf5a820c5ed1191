package supervisor_test

// These tests run real processes (/bin/sh, sleep) and look at them
// through /proc, so they are Linux-only; the supervisor itself also
// builds and runs on the other Unix systems.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/backend/backendtest"
	"github.com/svcgate/svcgate/internal/backend/supervisor"
)

const settle = 10 * time.Second

func TestConformance(t *testing.T) {
	t.Parallel()
	sleep := sleepPath(t)
	var mu sync.Mutex
	configured := map[string]supervisor.Program{}
	n := 0
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) svcgate.Backend {
			b := mustNew(t, t.TempDir(), nil)
			run(t, b)
			return b
		},
		Fixture: func(t *testing.T, b svcgate.Backend, kind backendtest.FixtureKind) string {
			sb := b.(*supervisor.Backend)
			mu.Lock()
			defer mu.Unlock()
			n++
			name := fmt.Sprintf("%s-%d", kind, n)
			switch kind {
			case backendtest.LongRunning, backendtest.Pausable:
				// Through the Configurer, as an API client creates one,
				// with the default start_seconds of 1.
				if _, err := sb.Create(context.Background(), svcgate.ServiceSpec{Name: name, BinaryPath: sleep, Args: []string{"1000"}}); err != nil {
					t.Fatalf("Create: %v", err)
				}
			case backendtest.Failing:
				// Through the configuration, which alone can say "do not
				// retry": it fails within start_seconds and is not retried.
				configured[name] = supervisor.Program{
					Command: "/bin/sh", Args: []string{"-c", "exit 3"},
					Autostart: ptr(false), Autorestart: "never", StartSeconds: ptr(0.2), StartRetries: ptr(0),
				}
				if err := sb.SetPrograms(context.Background(), configured); err != nil {
					t.Fatalf("SetPrograms: %v", err)
				}
			default:
				t.Fatalf("unknown fixture kind %q", kind)
			}
			return name
		},
		Caps: backendtest.Capabilities{Pause: true, Watch: true, Parallel: true},
	})
}

// env is a running supervisor with a watch on it from the start.
type env struct {
	b    *supervisor.Backend
	dir  string
	rec  *backendtest.Recorder
	stop func()
}

func start(t *testing.T, progs map[string]supervisor.Program) *env {
	t.Helper()
	e := &env{dir: t.TempDir()}
	e.b = mustNew(t, e.dir, progs)
	e.rec = backendtest.Record(t, e.b)
	e.stop = run(t, e.b)
	return e
}

func (e *env) control(t *testing.T, name string, a svcgate.Action) (svcgate.ControlResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	return e.b.Control(ctx, name, a, svcgate.ControlOptions{})
}

func (e *env) mustControl(t *testing.T, name string, a svcgate.Action) svcgate.ControlResult {
	t.Helper()
	r, err := e.control(t, name, a)
	if err != nil {
		t.Fatalf("%s %s: %v", a, name, err)
	}
	return r
}

func (e *env) wait(t *testing.T, name string, st svcgate.State) svcgate.Service {
	t.Helper()
	return backendtest.WaitState(t, e.b, name, st, settle)
}

func sh(script string) supervisor.Program {
	return supervisor.Program{Command: "/bin/sh", Args: []string{"-c", script}}
}

func sleepPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	p, err = filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// groupMembers lists the live (not zombie) processes of process group
// pgid. Zombies are excluded: reaping orphans is init's job, and in a
// container init may not do it, but a zombie runs nothing.
func groupMembers(t *testing.T, pgid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, pgrp, ok := procStat(pid)
		if ok && pgrp == pgid && state != "Z" && state != "X" {
			out = append(out, pid)
		}
	}
	return out
}

// procStat reads a process's state letter and process group.
func procStat(pid int) (state string, pgrp int, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 3 {
		return "", 0, false
	}
	pgrp, err = strconv.Atoi(f[2])
	return f[0], pgrp, err == nil
}

// waitGroupGone waits until no live process is left in group pgid.
func waitGroupGone(t *testing.T, pgid int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := groupMembers(t, pgid)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v of group %d still alive after %v", left, pgid, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitMembers waits until group pgid has at least n live processes.
func waitMembers(t *testing.T, pgid, n int) []int {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		m := groupMembers(t, pgid)
		if len(m) >= n {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %d has processes %v, want at least %d", pgid, m, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestKilledProgramIsRestartedPromptly(t *testing.T) {
	t.Parallel()
	const backoff = 10 * time.Millisecond
	p := supervisor.Program{Command: sleepPath(t), Args: []string{"1000"}, StartSeconds: ptr(0.0),
		BackoffInitial: svcgate.Duration(backoff)}
	e := start(t, map[string]supervisor.Program{"web": p})
	before := e.wait(t, "web", svcgate.StateRunning)

	killed := time.Now()
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	down, downAt := e.rec.WaitFor(t, settle, "the backoff after the kill", func(ev svcgate.Event) bool {
		return ev.Service.Name == "web" && ev.Previous == svcgate.StateRunning
	})
	_, upAt := e.rec.WaitFor(t, settle, "the restart", func(ev svcgate.Event) bool {
		return ev.Service.Name == "web" && ev.Service.State == svcgate.StateRunning && ev.Service.PID != before.PID && ev.Service.PID != 0
	})
	if down.Service.State != svcgate.StateStartPending || down.Service.SubState != "backoff" {
		t.Errorf("after the kill: %s (%s), want start_pending (backoff)", down.Service.State, down.Service.SubState)
	}
	if down.Service.ExitCode != 128+9 || down.Service.PID != 0 {
		t.Errorf("after the kill: exit code %d, pid %d; want 137 and 0", down.Service.ExitCode, down.Service.PID)
	}
	// The bound is generous for -race on a loaded 2-core machine; a
	// polling design would show hundreds of milliseconds.
	const bound = 100 * time.Millisecond
	if d := downAt.Sub(killed); d > bound {
		t.Errorf("the exit reached the watcher %v after the kill, want within %v", d, bound)
	}
	if d := upAt.Sub(downAt); d > bound+backoff {
		t.Errorf("the restart reached the watcher %v after the exit, want within %v (backoff %v)", d, bound+backoff, backoff)
	}
	backendtest.CheckOrder(t, e.rec.Events("web"))
	t.Logf("kill → backoff event %v, backoff event → running event %v", downAt.Sub(killed), upAt.Sub(downAt))
}

func TestAutorestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		policy    string
		exit      int
		restarted bool
		settles   svcgate.State // when not restarted
	}{
		{"never", 0, false, svcgate.StateStopped},
		{"never", 3, false, svcgate.StateFailed},
		{"on_failure", 0, false, svcgate.StateStopped},
		{"on_failure", 3, true, ""},
		{"always", 0, true, ""},
		{"always", 3, true, ""},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("autorestart %s after exit status %d", tc.policy, tc.exit)
		if tc.restarted {
			name += " restarts"
		} else {
			name += " ends " + string(tc.settles)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := sh(fmt.Sprintf("sleep 0.2; exit %d", tc.exit))
			p.Autorestart, p.StartSeconds, p.BackoffInitial = tc.policy, ptr(0.05), svcgate.Duration(time.Millisecond)
			e := start(t, map[string]supervisor.Program{"p": p})
			first := e.wait(t, "p", svcgate.StateRunning)
			if tc.restarted {
				backendtest.WaitFor(t, e.b, "p", settle, "running again", func(s svcgate.Service) bool {
					return s.State == svcgate.StateRunning && s.PID != first.PID
				})
				return
			}
			svc := e.wait(t, "p", tc.settles)
			if svc.ExitCode != tc.exit || !strings.Contains(svc.SubState, "exit status") {
				t.Errorf("exit code %d, sub_state %q; want %d and the status", svc.ExitCode, svc.SubState, tc.exit)
			}
			time.Sleep(100 * time.Millisecond) // long enough for a wrongful restart to show
			if svc := mustGet(t, e.b, "p"); svc.State != tc.settles {
				t.Errorf("then %s, want it to stay %s", svc.State, tc.settles)
			}
		})
	}
}

func TestRetryLimitFailsTheProgram(t *testing.T) {
	t.Parallel()
	p := sh("exit 1")
	p.StartRetries, p.StartSeconds = ptr(2), ptr(1.0)
	p.BackoffInitial, p.BackoffMax = svcgate.Duration(20*time.Millisecond), svcgate.Duration(40*time.Millisecond)
	e := start(t, map[string]supervisor.Program{"p": p})
	began := time.Now()
	svc := e.wait(t, "p", svcgate.StateFailed)
	if svc.SubState != "exited too quickly (exit status 1)" || svc.ExitCode != 1 {
		t.Errorf("failed with sub_state %q, exit code %d", svc.SubState, svc.ExitCode)
	}
	var pids []int
	var backoffs int
	for _, ev := range e.rec.Events("p") {
		if ev.Service.State == svcgate.StateStartPending && ev.Service.PID != 0 && !slices.Contains(pids, ev.Service.PID) {
			pids = append(pids, ev.Service.PID)
		}
		if ev.Service.SubState == "backoff" {
			backoffs++
		}
	}
	if len(pids) != 3 || backoffs != 2 {
		t.Errorf("%d attempts with %d backoffs, want 1 start + 2 retries: %v", len(pids), backoffs, backendtest.States(e.rec.Events("p")))
	}
	// 20ms then 40ms of backoff, doubling.
	if d := time.Since(began); d < 60*time.Millisecond {
		t.Errorf("failed after %v, before the backoff could have elapsed", d)
	}
	backendtest.CheckOrder(t, e.rec.Events("p"))

	// Start on a failed program tries again, from a fresh retry count.
	if r := e.mustControl(t, "p", svcgate.ActionStart); !r.Changed {
		t.Error("start of a failed program reported no change")
	}
	e.wait(t, "p", svcgate.StateStartPending)
	e.wait(t, "p", svcgate.StateFailed)
}

func TestStartSecondsAreHonoured(t *testing.T) {
	t.Parallel()
	p := supervisor.Program{Command: sleepPath(t), Args: []string{"1000"}, Autostart: ptr(false), StartSeconds: ptr(0.4)}
	e := start(t, map[string]supervisor.Program{"p": p})
	issued := time.Now()
	e.mustControl(t, "p", svcgate.ActionStart)
	if d := time.Since(issued); d > 200*time.Millisecond {
		t.Errorf("Control waited %v; it must not wait for start_seconds", d)
	}
	svc := mustGet(t, e.b, "p")
	if svc.State != svcgate.StateStartPending || svc.PID == 0 || len(svc.Accepts) != 0 {
		t.Errorf("right after start: %s pid %d accepts %v; want start_pending with a pid and no accepts", svc.State, svc.PID, svc.Accepts)
	}
	e.wait(t, "p", svcgate.StateRunning)
	_, at := e.rec.WaitFor(t, settle, "running", func(ev svcgate.Event) bool { return ev.Service.State == svcgate.StateRunning })
	if d := at.Sub(issued); d < 400*time.Millisecond || d > 2*time.Second {
		t.Errorf("running after %v, want after start_seconds (400ms)", d)
	}
}

func TestStopTimeoutKillsAProgramIgnoringTheStopSignal(t *testing.T) {
	t.Parallel()
	p := sh(`trap "" TERM; sleep 100`)
	p.StartSeconds, p.StopTimeout = ptr(0.0), svcgate.Duration(300*time.Millisecond)
	e := start(t, map[string]supervisor.Program{"p": p})
	svc := e.wait(t, "p", svcgate.StateRunning)
	waitMembers(t, svc.PID, 2) // sh and its sleep, both ignoring TERM
	issued := time.Now()
	e.mustControl(t, "p", svcgate.ActionStop)
	if got := mustGet(t, e.b, "p"); got.State != svcgate.StateStopPending {
		t.Errorf("after stop: %s, want stop_pending while the program ignores TERM", got.State)
	}
	stopped := e.wait(t, "p", svcgate.StateStopped)
	if d := time.Since(issued); d < 300*time.Millisecond {
		t.Errorf("stopped after %v, before stop_timeout", d)
	}
	if stopped.ExitCode != 128+9 {
		t.Errorf("exit code %d, want 137 (SIGKILL)", stopped.ExitCode)
	}
	if !slices.Contains(backendtest.States(e.rec.Events("p")), "stop_pending(killing)") {
		t.Errorf("no stop_pending(killing) step: %v", backendtest.States(e.rec.Events("p")))
	}
	waitGroupGone(t, svc.PID, time.Second)
}

func TestStopLeavesNoProcessOfTheGroup(t *testing.T) {
	t.Parallel()
	p := sh("sleep 1000 & sleep 1000")
	p.StartSeconds = ptr(0.0)
	e := start(t, map[string]supervisor.Program{"p": p})
	svc := e.wait(t, "p", svcgate.StateRunning)
	if members := waitMembers(t, svc.PID, 3); !slices.Contains(members, svc.PID) {
		t.Fatalf("the group %d does not contain its leader: %v", svc.PID, members)
	}
	e.mustControl(t, "p", svcgate.ActionStop)
	e.wait(t, "p", svcgate.StateStopped)
	waitGroupGone(t, svc.PID, time.Second)
}

func TestAnExitingProgramTakesItsBackgroundChildrenWithIt(t *testing.T) {
	t.Parallel()
	p := sh("sleep 1000 & sleep 0.2; exit 0")
	p.StartSeconds, p.Autorestart = ptr(0.0), "never"
	e := start(t, map[string]supervisor.Program{"p": p})
	svc := e.wait(t, "p", svcgate.StateRunning)
	waitMembers(t, svc.PID, 2)
	e.wait(t, "p", svcgate.StateStopped)
	waitGroupGone(t, svc.PID, time.Second)
}

func TestRunLeavesNoChildBehind(t *testing.T) {
	t.Parallel()
	progs := map[string]supervisor.Program{
		"plain":    {Command: sleepPath(t), Args: []string{"1000"}, StartSeconds: ptr(0.0)},
		"tree":     withStartSeconds(sh("sleep 1000 & sleep 1000"), 0),
		"stubborn": withStartSeconds(sh(`trap "" TERM; sleep 1000`), 0),
	}
	progs["stubborn"] = withStopTimeout(progs["stubborn"], 200*time.Millisecond)
	e := start(t, progs)
	var pgids []int
	for name := range progs {
		pgids = append(pgids, e.wait(t, name, svcgate.StateRunning).PID)
	}
	e.mustControl(t, "tree", svcgate.ActionPause) // a paused program must stop too
	e.wait(t, "tree", svcgate.StatePaused)
	began := time.Now()
	e.stop() // returns when Run has returned
	t.Logf("Run returned %v after its context ended", time.Since(began))
	for _, pgid := range pgids {
		if left := groupMembers(t, pgid); len(left) > 0 {
			t.Errorf("after Run returned, group %d still has %v", pgid, left)
		}
	}
	for name := range progs {
		if svc := mustGet(t, e.b, name); svc.State != svcgate.StateStopped || svc.PID != 0 {
			t.Errorf("%s after Run: %s pid %d, want stopped", name, svc.State, svc.PID)
		}
	}
	_, err := e.b.Control(context.Background(), "plain", svcgate.ActionStart, svcgate.ControlOptions{})
	backendtest.WantCode(t, err, svcgate.CodeNotReady)
}

func withStartSeconds(p supervisor.Program, s float64) supervisor.Program {
	p.StartSeconds = ptr(s)
	return p
}

func withStopTimeout(p supervisor.Program, d time.Duration) supervisor.Program {
	p.StopTimeout = svcgate.Duration(d)
	return p
}

func TestPauseStopsEveryProcessOfTheGroup(t *testing.T) {
	t.Parallel()
	p := sh("sleep 1000 & sleep 1000")
	p.StartSeconds = ptr(0.0)
	e := start(t, map[string]supervisor.Program{"p": p})
	svc := e.wait(t, "p", svcgate.StateRunning)
	members := waitMembers(t, svc.PID, 3)
	// Let the shell finish forking: dash vforks, and a child stopped
	// before its exec would hold its parent in D, never T.
	waitProcStates(t, members, "S")

	e.mustControl(t, "p", svcgate.ActionPause)
	e.wait(t, "p", svcgate.StatePaused)
	waitProcStates(t, members, "T")
	e.mustControl(t, "p", svcgate.ActionContinue)
	e.wait(t, "p", svcgate.StateRunning)
	waitProcStates(t, members, "S")

	// A paused program stops promptly: the stop signal is followed by
	// SIGCONT so it can act on it.
	e.mustControl(t, "p", svcgate.ActionPause)
	e.wait(t, "p", svcgate.StatePaused)
	began := time.Now()
	e.mustControl(t, "p", svcgate.ActionStop)
	e.wait(t, "p", svcgate.StateStopped)
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("a paused program took %v to stop; it waited for the kill", d)
	}
	waitGroupGone(t, svc.PID, time.Second)
}

// waitProcStates waits until every pid is in state (T stopped, S sleeping).
func waitProcStates(t *testing.T, pids []int, state string) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		var wrong []string
		for _, pid := range pids {
			if st, _, _ := procStat(pid); st != state {
				wrong = append(wrong, fmt.Sprintf("%d:%s", pid, st))
			}
		}
		if len(wrong) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes not in state %s: %v", state, wrong)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestControlSemantics(t *testing.T) {
	t.Parallel()
	sleep := sleepPath(t)
	manual := supervisor.Program{Command: sleep, Args: []string{"1000"}, Autostart: ptr(false), StartSeconds: ptr(0.0)}
	reloadable := sh(`trap 'echo reloaded' HUP; echo ready; while :; do sleep 0.05; done`)
	reloadable.Autostart, reloadable.StartSeconds, reloadable.ReloadSignal = ptr(false), ptr(0.0), "HUP"
	backoff := sh("exit 1")
	backoff.StartSeconds, backoff.BackoffInitial = ptr(1.0), svcgate.Duration(time.Hour)
	e := start(t, map[string]supervisor.Program{
		"manual":   manual,
		"disabled": {Command: sleep, Args: []string{"1000"}, Disabled: true},
		"reload":   reloadable,
		"backoff":  backoff,
		"missing":  {Command: "/nonexistent/svcgate-test", Autostart: ptr(false)},
	})
	code := func(name string, a svcgate.Action, opts svcgate.ControlOptions) string {
		_, err := e.b.Control(context.Background(), name, a, opts)
		return svcgate.ErrorCode(err)
	}
	for _, tc := range []struct {
		spec, name string
		action     svcgate.Action
		opts       svcgate.ControlOptions
		want       string
	}{
		{"pause on a stopped program fails with invalid_transition", "manual", svcgate.ActionPause, svcgate.ControlOptions{}, svcgate.CodeInvalidTransition},
		{"continue on a stopped program fails with invalid_transition", "manual", svcgate.ActionContinue, svcgate.ControlOptions{}, svcgate.CodeInvalidTransition},
		{"start on a disabled program fails with invalid_transition", "disabled", svcgate.ActionStart, svcgate.ControlOptions{}, svcgate.CodeInvalidTransition},
		{"restart on a disabled program fails with invalid_transition", "disabled", svcgate.ActionRestart, svcgate.ControlOptions{}, svcgate.CodeInvalidTransition},
		{"reload without a reload_signal fails with unsupported_action", "manual", svcgate.ActionReload, svcgate.ControlOptions{}, svcgate.CodeUnsupportedAction},
		{"reload on a stopped program fails with invalid_transition", "reload", svcgate.ActionReload, svcgate.ControlOptions{}, svcgate.CodeInvalidTransition},
		{"start arguments fail with unsupported_action", "manual", svcgate.ActionStart, svcgate.ControlOptions{Args: []string{"x"}}, svcgate.CodeUnsupportedAction},
		{"an unknown action fails with invalid_request", "manual", "explode", svcgate.ControlOptions{}, svcgate.CodeInvalidRequest},
		{"a missing command fails with start_failed", "missing", svcgate.ActionStart, svcgate.ControlOptions{}, svcgate.CodeStartFailed},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			if got := code(tc.name, tc.action, tc.opts); got != tc.want {
				t.Errorf("%s %s: code %q, want %q", tc.action, tc.name, got, tc.want)
			}
		})
	}

	t.Run("a program whose command is missing is failed, saying why", func(t *testing.T) {
		svc := mustGet(t, e.b, "missing")
		if svc.State != svcgate.StateFailed || svc.SubState != "command not found" || svc.ExitCode != -1 {
			t.Errorf("%s (%s) exit code %d", svc.State, svc.SubState, svc.ExitCode)
		}
	})
	t.Run("reload sends the reload signal and the program stays running", func(t *testing.T) {
		e.mustControl(t, "reload", svcgate.ActionStart)
		before := e.wait(t, "reload", svcgate.StateRunning)
		if !before.Accepting(svcgate.AcceptReload) {
			t.Errorf("accepts %v, want reload", before.Accepts)
		}
		// Running means spawned (start_seconds 0); the trap is set once
		// the shell says so.
		waitForFile(t, filepath.Join(e.dir, "logs", "reload.out.log"), "ready")
		if r := e.mustControl(t, "reload", svcgate.ActionReload); !r.Changed {
			t.Error("reload reported no change")
		}
		waitForFile(t, filepath.Join(e.dir, "logs", "reload.out.log"), "reloaded")
		if svc := mustGet(t, e.b, "reload"); svc.State != svcgate.StateRunning || svc.PID != before.PID {
			t.Errorf("after reload: %s pid %d, want running pid %d", svc.State, svc.PID, before.PID)
		}
	})
	t.Run("stop during a backoff cancels it", func(t *testing.T) {
		backendtest.WaitFor(t, e.b, "backoff", settle, "in backoff", func(s svcgate.Service) bool { return s.SubState == "backoff" })
		if r := e.mustControl(t, "backoff", svcgate.ActionStop); !r.Changed {
			t.Error("stop in backoff reported no change")
		}
		if svc := mustGet(t, e.b, "backoff"); svc.State != svcgate.StateStopped {
			t.Errorf("after stop in backoff: %s", svc.State)
		}
	})
	t.Run("start and continue on a starting or running program change nothing", func(t *testing.T) {
		e.mustControl(t, "manual", svcgate.ActionStart)
		e.wait(t, "manual", svcgate.StateRunning)
		for _, a := range []svcgate.Action{svcgate.ActionStart, svcgate.ActionContinue} {
			if r := e.mustControl(t, "manual", a); r.Changed {
				t.Errorf("%s on running reported a change", a)
			}
		}
		e.mustControl(t, "manual", svcgate.ActionPause)
		if _, err := e.control(t, "manual", svcgate.ActionStart); !svcgate.IsCode(err, svcgate.CodeInvalidTransition) {
			t.Errorf("start on paused: %v, want invalid_transition", err)
		}
		e.mustControl(t, "manual", svcgate.ActionStop)
		e.wait(t, "manual", svcgate.StateStopped)
	})
	t.Run("restart of a stopped program starts it", func(t *testing.T) {
		if r := e.mustControl(t, "manual", svcgate.ActionRestart); !r.Changed {
			t.Error("restart of a stopped program reported no change")
		}
		e.wait(t, "manual", svcgate.StateRunning)
	})
	t.Run("restart returns once the old process is gone and the new one spawned", func(t *testing.T) {
		old := e.wait(t, "manual", svcgate.StateRunning)
		e.mustControl(t, "manual", svcgate.ActionRestart)
		svc := mustGet(t, e.b, "manual")
		if svc.PID == 0 || svc.PID == old.PID {
			t.Errorf("right after restart: pid %d (old %d), want the new process", svc.PID, old.PID)
		}
		if len(groupMembers(t, old.PID)) > 0 {
			t.Errorf("the old process group %d is still alive after restart", old.PID)
		}
	})
	t.Run("Delete of a running program fails with conflict", func(t *testing.T) {
		if _, err := e.b.Create(context.Background(), svcgate.ServiceSpec{Name: "rt", BinaryPath: sleep, Args: []string{"1000"}, StartType: svcgate.StartAuto}); err != nil {
			t.Fatal(err)
		}
		e.wait(t, "rt", svcgate.StateRunning)
		backendtest.WantCode(t, e.b.Delete(context.Background(), "rt"), svcgate.CodeConflict)
		e.mustControl(t, "rt", svcgate.ActionStop)
		e.wait(t, "rt", svcgate.StateStopped)
		if err := e.b.Delete(context.Background(), "rt"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		e.rec.WaitFor(t, settle, "the removed event", func(ev svcgate.Event) bool {
			return ev.Type == svcgate.EventRemoved && ev.Service.Name == "rt"
		})
		_, err := e.control(t, "rt", svcgate.ActionStart)
		backendtest.WantCode(t, err, svcgate.CodeServiceNotFound)
	})
}

func waitForFile(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		data, _ := os.ReadFile(path)
		if strings.Contains(string(data), want) {
			return string(data)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not contain %q: %q", path, want, data)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEnvironmentAndWorkingDirectory(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	// PATH comes from the agent; HOME is the agent's too but the
	// program's own value wins.
	p := sh(`echo "$SVCGATE_TEST_VAR|$HOME|$PATH|$(pwd)"`)
	p.Env, p.Dir = map[string]string{"SVCGATE_TEST_VAR": "program", "HOME": "/program-home"}, work
	p.StartSeconds, p.Autorestart = ptr(0.0), "never"
	e := start(t, map[string]supervisor.Program{"p": p})
	e.wait(t, "p", svcgate.StateStopped)
	got := waitForFile(t, filepath.Join(e.dir, "logs", "p.out.log"), work)
	if want := "program|/program-home|" + os.Getenv("PATH") + "|" + work + "\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestOutputIsCapturedAndRotated(t *testing.T) {
	t.Parallel()
	p := sh(`i=0; while [ $i -lt 300 ]; do echo "line $i"; echo "err $i" >&2; i=$((i+1)); done`)
	p.StartSeconds, p.Autorestart = ptr(0.0), "never"
	p.LogMaxBytes, p.LogBackups = ptr(int64(500)), ptr(2)
	e := start(t, map[string]supervisor.Program{"p": p})
	e.wait(t, "p", svcgate.StateStopped)
	e.stop() // Run returns once the output is drained and the files closed

	logs := filepath.Join(e.dir, "logs")
	var kept []string
	for _, f := range []string{"p.out.log.2", "p.out.log.1", "p.out.log"} {
		data, err := os.ReadFile(filepath.Join(logs, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(data) > 500 || len(data) == 0 || data[len(data)-1] != '\n' {
			t.Errorf("%s: %d bytes, want 1..500 ending in a whole line", f, len(data))
		}
		kept = append(kept, strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")...)
	}
	if _, err := os.Stat(filepath.Join(logs, "p.out.log.3")); !os.IsNotExist(err) {
		t.Errorf("p.out.log.3 exists (log_backups is 2): %v", err)
	}
	// What is kept is the end of the output, in order, lines intact.
	first, _ := strconv.Atoi(strings.TrimPrefix(kept[0], "line "))
	for i, l := range kept {
		if want := fmt.Sprintf("line %d", first+i); l != want {
			t.Fatalf("kept line %d is %q, want %q", i, l, want)
		}
	}
	if kept[len(kept)-1] != "line 299" {
		t.Errorf("last kept line %q, want line 299", kept[len(kept)-1])
	}

	lines := readLogs(t, e.b, "p", svcgate.LogOptions{})
	var out, errs []string
	for _, l := range lines {
		switch l.Stream {
		case "stdout":
			out = append(out, l.Text)
		case "stderr":
			errs = append(errs, l.Text)
		default:
			t.Fatalf("stream %q", l.Stream)
		}
		if l.Time.IsZero() {
			t.Errorf("line %q has no time", l.Text)
		}
	}
	if !slices.Equal(out, kept) {
		t.Errorf("Logs stdout has %d lines, the files %d", len(out), len(kept))
	}
	if len(errs) == 0 || errs[len(errs)-1] != "err 299" {
		t.Errorf("Logs stderr ends %q, want err 299", errs[max(0, len(errs)-1):])
	}
	if tail := readLogs(t, e.b, "p", svcgate.LogOptions{Tail: 3}); len(tail) != 3 || !slices.Equal(tail, lines[len(lines)-3:]) {
		t.Errorf("Tail 3 = %v, want the last 3 of %d lines", tail, len(lines))
	}
	if future := readLogs(t, e.b, "p", svcgate.LogOptions{Since: time.Now().Add(time.Hour)}); len(future) != 0 {
		t.Errorf("Since in the future returned %d lines", len(future))
	}
	_, err := e.b.Logs(context.Background(), "nope", svcgate.LogOptions{})
	backendtest.WantCode(t, err, svcgate.CodeServiceNotFound)
}

func readLogs(t *testing.T, b *supervisor.Backend, name string, opts svcgate.LogOptions) []svcgate.LogLine {
	t.Helper()
	ch, err := b.Logs(context.Background(), name, opts)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	var out []svcgate.LogLine
	for l := range ch {
		out = append(out, l)
	}
	return out
}

func TestLogsFollowAcrossRotations(t *testing.T) {
	t.Parallel()
	// About one rotation per poll of the follower (100ms), often two.
	p := sh(`i=0; while :; do echo "tick $i"; i=$((i+1)); sleep 0.01; done`)
	p.StartSeconds, p.LogMaxBytes, p.LogBackups = ptr(0.0), ptr(int64(64)), ptr(4)
	e := start(t, map[string]supervisor.Program{"p": p})
	e.wait(t, "p", svcgate.StateRunning)
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	ch, err := e.b.Logs(ctx, "p", svcgate.LogOptions{Follow: true, Tail: 1})
	if err != nil {
		t.Fatal(err)
	}
	// With 64-byte files, 40 consecutive ticks span several rotations.
	prev := -1
	for n := 0; n < 40; {
		l, ok := <-ch
		if !ok {
			t.Fatalf("the follow ended after %d lines: %v", n, ctx.Err())
		}
		i, err := strconv.Atoi(strings.TrimPrefix(l.Text, "tick "))
		if err != nil || l.Stream != "stdout" {
			t.Fatalf("line %q on %s", l.Text, l.Stream)
		}
		if prev >= 0 && i != prev+1 {
			t.Fatalf("tick %d followed tick %d: lines lost or repeated across a rotation", i, prev)
		}
		prev = i
		n++
	}
	cancel()
	for range ch {
	}
}

func TestCreateUpdateDeleteSurviveRestarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sleep := sleepPath(t)
	ctx := context.Background()

	b := mustNew(t, dir, nil)
	stop := run(t, b)
	rec := backendtest.Record(t, b)
	if _, err := b.Create(ctx, svcgate.ServiceSpec{Name: "job", BinaryPath: sleep, Args: []string{"1000"}, StartType: svcgate.StartAuto}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	rec.WaitFor(t, settle, "the added event", func(ev svcgate.Event) bool { return ev.Type == svcgate.EventAdded && ev.Service.Name == "job" })
	first := backendtest.WaitState(t, b, "job", svcgate.StateRunning, settle)
	if _, err := b.Update(ctx, "job", svcgate.ServiceUpdate{DisplayName: ptr("Job"), Args: ptr([]string{"999"})}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if svc := mustGet(t, b, "job"); svc.DisplayName != "Job" || svc.PID != first.PID {
		t.Errorf("after Update: %q pid %d; want the new name and the same process (args apply at next start)", svc.DisplayName, svc.PID)
	}
	rec.WaitFor(t, settle, "the changed event for the update", func(ev svcgate.Event) bool {
		return ev.Type == svcgate.EventChanged && ev.Service.DisplayName == "Job"
	})
	stop()
	waitGroupGone(t, first.PID, time.Second)

	// The agent restarts: the program is back, autostarted, with the new args.
	b2 := mustNew(t, dir, nil)
	stop2 := run(t, b2)
	svc := backendtest.WaitState(t, b2, "job", svcgate.StateRunning, settle)
	if svc.DisplayName != "Job" || svc.StartType != svcgate.StartAuto {
		t.Errorf("after restart: %+v", svc)
	}
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", svc.PID)); !strings.Contains(string(cmdline), "999") {
		t.Errorf("the restarted process runs %q, want the updated args", cmdline)
	}
	backendtest.WantCode(t, b2.Delete(ctx, "job"), svcgate.CodeConflict)
	if _, err := b2.Control(ctx, "job", svcgate.ActionStop, svcgate.ControlOptions{}); err != nil {
		t.Fatal(err)
	}
	backendtest.WaitState(t, b2, "job", svcgate.StateStopped, settle)
	if err := b2.Delete(ctx, "job"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	stop2()

	b3 := mustNew(t, dir, nil)
	if _, err := b3.Get(ctx, "job"); !svcgate.IsCode(err, svcgate.CodeServiceNotFound) {
		t.Errorf("a deleted program came back after a restart: %v", err)
	}
}

func TestSetPrograms(t *testing.T) {
	t.Parallel()
	sleep := sleepPath(t)
	long := func(args ...string) supervisor.Program {
		return supervisor.Program{Command: sleep, Args: append([]string{"1000"}, args...), StartSeconds: ptr(0.0)}
	}
	e := start(t, map[string]supervisor.Program{"keep": long(), "restart": long(), "remove": long(), "stopped": long()})
	ctx := context.Background()
	if _, err := e.b.Create(ctx, svcgate.ServiceSpec{Name: "runtime", BinaryPath: sleep, Args: []string{"1000"}}); err != nil {
		t.Fatal(err)
	}
	before := map[string]svcgate.Service{}
	for _, n := range []string{"keep", "restart", "remove", "stopped"} {
		before[n] = e.wait(t, n, svcgate.StateRunning)
	}
	e.mustControl(t, "stopped", svcgate.ActionStop)
	e.wait(t, "stopped", svcgate.StateStopped)

	keep := long()
	keep.Description = "now described"
	err := e.b.SetPrograms(ctx, map[string]supervisor.Program{
		"keep":    keep,
		"restart": long("1"),
		"stopped": long("1"),
		"added":   long(),
	})
	if err != nil {
		t.Fatalf("SetPrograms: %v", err)
	}
	if svc := mustGet(t, e.b, "keep"); svc.PID != before["keep"].PID || svc.Description != "now described" {
		t.Errorf("keep: pid %d (was %d), description %q; want the same process with the new description", svc.PID, before["keep"].PID, svc.Description)
	}
	backendtest.WaitFor(t, e.b, "restart", settle, "running a new process", func(s svcgate.Service) bool {
		return s.State == svcgate.StateRunning && s.PID != before["restart"].PID
	})
	if svc := mustGet(t, e.b, "stopped"); svc.State != svcgate.StateStopped {
		t.Errorf("a stopped program whose command changed is %s, want it left stopped", svc.State)
	}
	e.wait(t, "added", svcgate.StateRunning)
	if _, err := e.b.Get(ctx, "remove"); !svcgate.IsCode(err, svcgate.CodeServiceNotFound) {
		t.Errorf("the removed program is still there: %v", err)
	}
	waitGroupGone(t, before["remove"].PID, time.Second)
	if _, err := e.b.Get(ctx, "runtime"); err != nil {
		t.Errorf("SetPrograms dropped a runtime program: %v", err)
	}
	e.rec.WaitFor(t, settle, "the removed event", func(ev svcgate.Event) bool {
		return ev.Type == svcgate.EventRemoved && ev.Service.Name == "remove"
	})
	evs := e.rec.Events("remove")
	if len(evs) < 2 || evs[len(evs)-1].Type != svcgate.EventRemoved || evs[len(evs)-2].Service.State != svcgate.StateStopped {
		t.Errorf("the removed program's events end %v, want stopped then removed", backendtest.States(evs))
	}

	// An invalid set changes nothing and lists every problem.
	err = e.b.SetPrograms(ctx, map[string]supervisor.Program{"a": {}, "b": {Command: "x", StopSignal: "NOPE"}})
	backendtest.WantCode(t, err, svcgate.CodeInvalidRequest)
	if msg := svcgate.ErrorMessage(err); !strings.Contains(msg, "programs.a.command") || !strings.Contains(msg, "programs.b.stop_signal") {
		t.Errorf("error %q does not list both problems", msg)
	}
	if _, err := e.b.Get(ctx, "keep"); err != nil {
		t.Errorf("a refused SetPrograms removed a program: %v", err)
	}
}

func TestFiveHundredProgramsStartAndStop(t *testing.T) {
	t.Parallel()
	const n = 500
	sleep := sleepPath(t)
	progs := make(map[string]supervisor.Program, n)
	for i := range n {
		progs[fmt.Sprintf("p%03d", i)] = supervisor.Program{Command: sleep, Args: []string{"1000"}, StartSeconds: ptr(0.0)}
	}
	began := time.Now()
	e := start(t, progs)
	ctx := context.Background()
	var list []svcgate.Service
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		list, err = e.b.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, s := range list {
			if s.State == svcgate.StateRunning {
				running++
			}
		}
		if running == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d programs running after 30s", running, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d programs running after %v", n, time.Since(began))
	stopped := time.Now()
	e.stop()
	t.Logf("Run stopped them all in %v", time.Since(stopped))
	for _, s := range list {
		if st, _, ok := procStat(s.PID); ok && st != "Z" {
			t.Fatalf("%s (pid %d) is still alive after Run returned", s.Name, s.PID)
		}
	}
}

func mustGet(t *testing.T, b svcgate.Backend, name string) svcgate.Service {
	t.Helper()
	svc, err := b.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	return svc
}

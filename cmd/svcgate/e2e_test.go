//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/control"
	"github.com/svcgate/svcgate/internal/httpapi"
)

// These tests run the real program: run() serves on 127.0.0.1:0 with the
// built-in supervisor managing real processes, and run() as the CLI drives
// it.

// syncBuffer is an io.Writer that tests read while the program writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lineWriter hands every complete line to a channel with the time it was
// written, so latency is measured when the program wrote, not when a test
// looked.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan timedLine
}

type timedLine struct {
	at   time.Time
	text string
}

func (l *lineWriter) Write(p []byte) (int, error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.lines <- timedLine{now, string(l.buf[:i])}
		l.buf = l.buf[i+1:]
	}
}

func noEnv(string) string { return "" }

type agent struct {
	addr     string
	token    string
	cfgPath  string
	stateDir string
	logs     *syncBuffer
}

// startAgent runs `svcgate serve` on a free loopback port with programs
// (YAML, indented under "programs:") and stops it when the test ends,
// checking that it shut down cleanly.
func startAgent(t *testing.T, programs string) *agent {
	t.Helper()
	dir := t.TempDir()
	a := &agent{stateDir: filepath.Join(dir, "state"), cfgPath: filepath.Join(dir, "svcgate.yaml"), logs: &syncBuffer{}}
	cfg := fmt.Sprintf("listen: 127.0.0.1:0\nstate_dir: %s\nbackend: supervisor\nlog:\n  level: debug\nprograms:\n%s", a.stateDir, programs)
	if err := os.WriteFile(a.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"svcgate", "serve", "--config", a.cfgPath}, noEnv, strings.NewReader(""), io.Discard, a.logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s of its context ending")
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for a.addr == "" {
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not log that it listens; its log:\n%s", a.logs)
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended early: %v\n%s", err, a.logs)
		case <-time.After(10 * time.Millisecond):
		}
		sc := bufio.NewScanner(strings.NewReader(a.logs.String()))
		for sc.Scan() {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "svcgate is listening" {
				a.addr = "http://" + rec.Addr
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(a.stateDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	a.token = strings.TrimSpace(string(b))
	if !strings.Contains(a.logs.String(), filepath.Join(a.stateDir, "admin.token")) {
		t.Errorf("the log does not say where the admin token was written:\n%s", a.logs)
	}
	return a
}

type cliResult struct {
	stdout, stderr string
	code           int
}

// cli runs the CLI against the agent with the given arguments.
func (a *agent) cli(t *testing.T, args ...string) cliResult {
	t.Helper()
	return a.cliCtx(t.Context(), args...)
}

func (a *agent) cliCtx(ctx context.Context, args ...string) cliResult {
	var out, errb bytes.Buffer
	argv := append([]string{"svcgate", "--server", a.addr, "--token", a.token}, args...)
	err := run(ctx, argv, noEnv, strings.NewReader(""), &out, &errb)
	return cliResult{out.String(), errb.String(), exitCode(err)}
}

func (a *agent) client() *httpapi.Client { return httpapi.NewClient(a.addr, a.token, nil) }

func mustCode(t *testing.T, r cliResult, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
}

const demoPrograms = `
  web:
    command: /bin/sh
    args: ["-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
    autostart: false
    start_seconds: 0.2
    stop_timeout: 2s
  worker:
    command: /bin/sh
    args: ["-c", "trap 'echo reloaded' HUP; while :; do sleep 0.1; done"]
    reload_signal: HUP
    start_seconds: 0
    backoff_initial: 10ms
    backoff_max: 20ms
  slow:
    command: /bin/sleep
    args: ["1000"]
    autostart: false
    start_seconds: 5
  broken:
    command: /bin/sh
    args: ["-c", "exit 3"]
    autostart: false
    start_seconds: 0.5
    start_retries: 1
    backoff_initial: 10ms
`

func TestCLIAgainstTheRealAgent(t *testing.T) {
	a := startAgent(t, demoPrograms)
	c := a.client()
	waitFor(t, c, "worker", svcgate.StateRunning)

	t.Run("ls shows every program in a table", func(t *testing.T) {
		r := a.cli(t, "ls")
		mustCode(t, r, 0)
		for _, want := range []string{"NAME", "STATE", "PID", "SINCE", "web", "worker", "slow", "broken"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("ls output lacks %q:\n%s", want, r.stdout)
			}
		}
	})

	t.Run("ls filters and prints JSON", func(t *testing.T) {
		r := a.cli(t, "ls", "--state", "running", "-o", "json")
		mustCode(t, r, 0)
		var list []svcgate.Service
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
			t.Fatalf("ls -o json: %v\n%s", err, r.stdout)
		}
		if len(list) != 1 || list[0].Name != "worker" {
			t.Fatalf("ls --state running = %+v, want only worker", list)
		}
	})

	t.Run("start waits for running, a second start changes nothing", func(t *testing.T) {
		r := a.cli(t, "start", "web", "--wait", "10s")
		mustCode(t, r, 0)
		if !strings.Contains(r.stdout, "web: running (pid ") {
			t.Errorf("start said %q", r.stdout)
		}
		if s, _ := c.Get(t.Context(), "web"); s.State != svcgate.StateRunning {
			t.Errorf("after start web is %s", s.State)
		}
		r = a.cli(t, "start", "web", "-o", "json")
		mustCode(t, r, 0)
		var res []control.Result
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res) != 1 || res[0].Changed {
			t.Errorf("second start: %v %s; want one result with changed false", err, r.stdout)
		}
	})

	t.Run("status queries live", func(t *testing.T) {
		r := a.cli(t, "status", "web", "worker", "-o", "json")
		mustCode(t, r, 0)
		var list []svcgate.Service
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 2 || list[0].PID == 0 {
			t.Fatalf("status: %v %s", err, r.stdout)
		}
	})

	t.Run("pause, continue, reload and restart", func(t *testing.T) {
		mustCode(t, a.cli(t, "pause", "web"), 0)
		if s, _ := c.Get(t.Context(), "web"); s.State != svcgate.StatePaused {
			t.Fatalf("after pause web is %s", s.State)
		}
		mustCode(t, a.cli(t, "continue", "web"), 0)
		before, _ := c.Get(t.Context(), "web")
		if before.State != svcgate.StateRunning {
			t.Fatalf("after continue web is %s", before.State)
		}
		mustCode(t, a.cli(t, "reload", "worker"), 0)
		mustCode(t, a.cli(t, "restart", "web"), 0)
		after, _ := c.Get(t.Context(), "web")
		if after.State != svcgate.StateRunning || after.PID == before.PID {
			t.Fatalf("restart: before pid %d, after %s pid %d", before.PID, after.State, after.PID)
		}
	})

	t.Run("dry run changes nothing", func(t *testing.T) {
		r := a.cli(t, "stop", "web", "--dry-run")
		mustCode(t, r, 0)
		if !strings.Contains(r.stdout, "would stop web") {
			t.Errorf("dry run said %q", r.stdout)
		}
		if s, _ := c.Get(t.Context(), "web"); s.State != svcgate.StateRunning {
			t.Errorf("after a dry-run stop web is %s", s.State)
		}
	})

	t.Run("stop several names", func(t *testing.T) {
		mustCode(t, a.cli(t, "stop", "web", "slow"), 0)
		if s, _ := c.Get(t.Context(), "web"); s.State != svcgate.StateStopped {
			t.Errorf("after stop web is %s", s.State)
		}
	})

	t.Run("exit codes a script can use", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
			code int
			msg  string
		}{
			{"unknown service", []string{"start", "nosuch"}, exitNotFound, "service_not_found"},
			{"invalid name", []string{"stop", "a b"}, exitUsage, "invalid_name"},
			{"flag-like name", []string{"status", "--", "-x"}, exitUsage, "invalid_name"},
			{"pause on a stopped program", []string{"pause", "web"}, exitConflict, "invalid_transition"},
			{"reload without a reload signal", []string{"reload", "web", "--wait", "0"}, exitConflict, ""},
			{"a start that fails", []string{"start", "broken", "--wait", "20s"}, exitConflict, "start_failed"},
			{"a wait that runs out", []string{"start", "slow", "--wait", "300ms"}, exitTimeout, "timeout"},
			{"a wait beyond 5m", []string{"start", "web", "--wait", "6m"}, exitUsage, ""},
			{"an unknown verb", []string{"launch", "web"}, exitUsage, "unknown command"},
			{"an unknown flag", []string{"ls", "--colour"}, exitUsage, ""},
			{"no name", []string{"start"}, exitUsage, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := a.cli(t, tc.args...)
				mustCode(t, r, tc.code)
				if !strings.Contains(r.stderr, tc.msg) {
					t.Errorf("stderr %q lacks %q", r.stderr, tc.msg)
				}
			})
		}
		t.Run("a wrong token", func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(t.Context(), []string{"svcgate", "--server", a.addr, "--token", "svcg_wrong", "ls"}, noEnv, nil, &out, &errb)
			if exitCode(err) != exitDenied || !strings.Contains(errb.String(), "unauthenticated") {
				t.Fatalf("exit %d, stderr %q", exitCode(err), errb.String())
			}
		})
		t.Run("no agent listening", func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(t.Context(), []string{"svcgate", "--server", "127.0.0.1:1", "--token", a.token, "ls"}, noEnv, nil, &out, &errb)
			if exitCode(err) != exitUnavailable {
				t.Fatalf("exit %d, stderr %q", exitCode(err), errb.String())
			}
		})
	})

	t.Run("the token and address come from the environment or the config", func(t *testing.T) {
		var out, errb bytes.Buffer
		env := map[string]string{"SVCGATE_SERVER": a.addr, "SVCGATE_CONFIG": a.cfgPath}
		err := run(t.Context(), []string{"svcgate", "ls"}, func(k string) string { return env[k] }, nil, &out, &errb)
		if err != nil || !strings.Contains(out.String(), "worker") {
			t.Fatalf("ls with the token from the config's state_dir: %v %s %s", err, out.String(), errb.String())
		}
		env = map[string]string{"SVCGATE_SERVER": a.addr, "SVCGATE_TOKEN": a.token}
		out.Reset()
		if err := run(t.Context(), []string{"svcgate", "ls"}, func(k string) string { return env[k] }, nil, &out, &errb); err != nil {
			t.Fatalf("ls with SVCGATE_TOKEN: %v %s", err, errb.String())
		}
	})

	t.Run("the API answers a plain bearer request", func(t *testing.T) {
		req, _ := http.NewRequest("GET", a.addr+"/v1/services", nil)
		req.Header.Set("Authorization", "Bearer "+a.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Services []svcgate.Service }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 || len(body.Services) != 4 {
			t.Fatalf("GET /v1/services: %d %v %+v", resp.StatusCode, err, body)
		}
	})
}

// TestKilledProgramShowsOnEventsWithin100ms kills a supervised program with
// SIGKILL and measures, from the kill, when `svcgate events` prints that it
// went down and that it runs again.
func TestKilledProgramShowsOnEventsWithin100ms(t *testing.T) {
	a := startAgent(t, demoPrograms)
	c := a.client()
	before := waitFor(t, c, "worker", svcgate.StateRunning)

	lw := &lineWriter{lines: make(chan timedLine, 1024)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		argv := []string{"svcgate", "--server", a.addr, "--token", a.token, "events", "-o", "json"}
		run(ctx, argv, noEnv, nil, lw, io.Discard)
	}()
	t.Cleanup(func() { cancel(); <-done })
	// The stream prints nothing until something happens: restart web until
	// its events show that the stream is open.
	connected := false
	for attempt := 0; attempt < 20 && !connected; attempt++ {
		if _, err := c.Do(ctx, "web", svcgate.ActionRestart, control.Options{Wait: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
		wait := time.After(500 * time.Millisecond)
	drain:
		for {
			select {
			case l := <-lw.lines:
				if strings.Contains(l.text, `"name":"web"`) {
					connected = true
				}
			case <-wait:
				break drain
			}
		}
	}
	if !connected {
		t.Fatal("svcgate events printed nothing about web after 20 restarts")
	}

	killed := time.Now()
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var down, up time.Duration
	timeout := time.After(5 * time.Second)
	for down == 0 || up == 0 {
		select {
		case l := <-lw.lines:
			var ev svcgate.Event
			if err := json.Unmarshal([]byte(l.text), &ev); err != nil {
				t.Fatalf("events printed %q: %v", l.text, err)
			}
			if ev.Service.Name != "worker" {
				continue
			}
			switch {
			case down == 0 && ev.Previous == svcgate.StateRunning && ev.Service.State != svcgate.StateRunning:
				down = l.at.Sub(killed)
				if ev.Service.ExitCode != 128+int(syscall.SIGKILL) {
					t.Errorf("exit code after SIGKILL = %d, want %d", ev.Service.ExitCode, 128+int(syscall.SIGKILL))
				}
			case down != 0 && ev.Service.State == svcgate.StateRunning:
				up = l.at.Sub(killed)
				if ev.Service.PID == before.PID || ev.Service.PID == 0 {
					t.Errorf("running again with pid %d, old pid %d", ev.Service.PID, before.PID)
				}
			}
		case <-timeout:
			t.Fatalf("after 5s: down seen after %v, running again after %v", down, up)
		}
	}
	t.Logf("kill → down event printed in %v, → running again printed in %v", down, up)
	if down > 100*time.Millisecond || up > 100*time.Millisecond {
		t.Errorf("kill → down %v, → running %v; want both within 100ms", down, up)
	}
}

// TestFiveHundredProgramsInOneBatch declares 500 programs and stops and
// starts all of them with one POST /v1/actions each.
func TestFiveHundredProgramsInOneBatch(t *testing.T) {
	const n = 500
	var progs strings.Builder
	for i := range n {
		fmt.Fprintf(&progs, "  p%03d:\n    command: /bin/sleep\n    args: [\"1000\"]\n    start_seconds: 0\n    stop_timeout: 5s\n", i)
	}
	a := startAgent(t, progs.String())
	c := a.client()
	ctx := t.Context()

	running := 0
	eventually(t, 60*time.Second, func() bool {
		list, err := c.ListFiltered(ctx, httpapi.Filter{States: []svcgate.State{svcgate.StateRunning}})
		if err != nil {
			t.Fatal(err)
		}
		running = len(list.Services)
		return running == n
	}, func() string { return fmt.Sprintf("%d of %d programs running after 60s", running, n) })
	all, err := c.List(ctx)
	if err != nil || len(all) != n {
		t.Fatalf("List: %d services, %v", len(all), err)
	}

	for _, action := range []svcgate.Action{svcgate.ActionStop, svcgate.ActionStart} {
		items := make([]httpapi.BatchItem, n)
		for i := range items {
			items[i] = httpapi.BatchItem{ServiceID: fmt.Sprintf("p%03d", i), Action: action}
		}
		start := time.Now()
		res, err := c.Batch(ctx, items, control.Options{Wait: time.Minute})
		if err != nil {
			t.Fatalf("batch %s: %v", action, err)
		}
		t.Logf("batch %s of %d programs took %v", action, n, time.Since(start))
		if res.Succeeded != n || res.Failed != 0 || len(res.Results) != n {
			t.Fatalf("batch %s: %d succeeded, %d failed, %d results", action, res.Succeeded, res.Failed, len(res.Results))
		}
		for i, r := range res.Results {
			if r.ServiceID != items[i].ServiceID || r.Status != http.StatusOK || !r.Changed || r.Service == nil || r.Service.State != action.Target() {
				t.Fatalf("batch %s item %d: %+v", action, i, r)
			}
		}
		list, err := c.ListFiltered(ctx, httpapi.Filter{States: []svcgate.State{action.Target()}})
		if err != nil || len(list.Services) != n {
			t.Fatalf("after batch %s: %d services %s (%v)", action, len(list.Services), action.Target(), err)
		}
	}
}

func TestServeRefusesABadConfigNamingEveryProblem(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	bad := `listen: 127.0.0.1:0
state_dir: ` + dir + `
http:
  read_timeot: 5s
  idle_timeout: -5s
programs:
  web:
    command: /bin/true
  web:
    command: /bin/false
`
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"svcgate", "serve", "--config", path}, noEnv, nil, io.Discard, &stderr)
	if err == nil {
		t.Fatal("serve accepted a bad configuration")
	}
	for _, want := range []string{"bad.yaml:4", "read_timeot", "bad.yaml:5", "idle_timeout", "bad.yaml:9", "web"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the error lacks %q:\n%s", want, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "admin.token")); err == nil {
		t.Error("a refused configuration still created an admin token")
	}
}

func waitFor(t *testing.T, c *httpapi.Client, name string, st svcgate.State) svcgate.Service {
	t.Helper()
	var s svcgate.Service
	var err error
	eventually(t, 10*time.Second, func() bool {
		s, err = c.Get(t.Context(), name)
		return err == nil && s.State == st
	}, func() string { return fmt.Sprintf("%s is %s (%v), want %s", name, s.State, err, st) })
	return s
}

// eventually polls cond until it holds, failing with the message of why
// when timeout passes first.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, why func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(why())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReloadAppliesProgramsAndKeepsTheOldConfigOnErrors(t *testing.T) {
	a := startAgent(t, demoPrograms)
	c := a.client()
	waitFor(t, c, "worker", svcgate.StateRunning)

	reload := func() (int, string) {
		req, _ := http.NewRequest("POST", a.addr+"/v1/agent/reload", nil)
		req.Header.Set("Authorization", "Bearer "+a.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	rewrite := func(programs string) {
		b, err := os.ReadFile(a.cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		head, _, _ := strings.Cut(string(b), "programs:\n")
		if err := os.WriteFile(a.cfgPath, []byte(head+"programs:\n"+programs), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("a bad file is refused with its problems and changes nothing", func(t *testing.T) {
		rewrite(demoPrograms + "  extra:\n    command: /bin/sleep\n    stop_timeout: -1s\n    colour: red\n")
		status, body := reload()
		if status != http.StatusBadRequest || !strings.Contains(body, "invalid_request") || !strings.Contains(body, "colour") {
			t.Fatalf("reload of a bad file: %d %s", status, body)
		}
		if _, err := c.Get(t.Context(), "extra"); !svcgate.IsCode(err, svcgate.CodeServiceNotFound) {
			t.Fatalf("a refused reload added a program: %v", err)
		}
	})

	t.Run("POST /v1/agent/reload adds and removes programs", func(t *testing.T) {
		without, _, _ := strings.Cut(demoPrograms, "  slow:\n")
		rewrite(without + "  extra:\n    command: /bin/sleep\n    args: [\"1000\"]\n    start_seconds: 0\n")
		status, body := reload()
		if status != http.StatusOK || !strings.Contains(body, `"config_generation":2`) {
			t.Fatalf("reload: %d %s", status, body)
		}
		waitFor(t, c, "extra", svcgate.StateRunning)
		if _, err := c.Get(t.Context(), "slow"); !svcgate.IsCode(err, svcgate.CodeServiceNotFound) {
			t.Fatalf("slow is still there after its removal: %v", err)
		}
	})

	t.Run("SIGHUP reloads too", func(t *testing.T) {
		rewrite(demoPrograms)
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		var info httpapi.AgentInfo
		var err error
		eventually(t, 10*time.Second, func() bool {
			info, err = c.Agent(t.Context())
			return err == nil && info.ConfigGeneration == 3
		}, func() string {
			return fmt.Sprintf("10s after SIGHUP: generation %d, %v; want 3", info.ConfigGeneration, err)
		})
		if s, err := c.Get(t.Context(), "slow"); err != nil || s.State != svcgate.StateStopped {
			t.Fatalf("slow after SIGHUP: %v %v", s.State, err)
		}
		if _, err := c.Get(t.Context(), "extra"); !svcgate.IsCode(err, svcgate.CodeServiceNotFound) {
			t.Fatalf("extra is still there after its removal: %v", err)
		}
	})
}

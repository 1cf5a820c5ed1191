package supervisor_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/backend/backendtest"
	"github.com/svcgate/svcgate/internal/backend/supervisor"
)

func ptr[T any](v T) *T { return &v }

// mustNew builds a supervisor over dir.
func mustNew(tb testing.TB, dir string, progs map[string]supervisor.Program) *supervisor.Backend {
	tb.Helper()
	b, err := supervisor.New(supervisor.Options{StateDir: dir, Programs: progs})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return b
}

// run runs b until the test ends or the returned stop is called, and
// checks that Run returns in time.
func run(tb testing.TB, b *supervisor.Backend) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	select {
	case <-b.Ready():
	case err := <-done:
		cancel()
		tb.Fatalf("Run returned at once: %v", err)
	}
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			tb.Errorf("Run did not return within 30s of its context ending")
		}
	})
	tb.Cleanup(stop)
	return stop
}

func TestValidateListsEveryProblem(t *testing.T) {
	t.Parallel()
	bad := supervisor.Program{
		Command:        "",
		Args:           []string{"ok", "x\x00y"},
		Env:            map[string]string{"A=B": "1", "C": "\x00"},
		Dir:            "relative/dir",
		Autorestart:    "sometimes",
		StartSeconds:   ptr(-1.0),
		StartRetries:   ptr(-2),
		BackoffInitial: svcgate.Duration(10 * time.Second),
		BackoffMax:     svcgate.Duration(5 * time.Second),
		StopSignal:     "SIGWINCH",
		ReloadSignal:   "BOGUS",
		StopTimeout:    svcgate.Duration(-time.Second),
		LogMaxBytes:    ptr(int64(-1)),
		LogBackups:     ptr(-1),
	}
	probs := bad.Validate("web")
	for _, field := range []string{
		"programs.web.command:", "programs.web.args[1]:", "programs.web.env.A=B:", "programs.web.env.C:",
		"programs.web.dir:", "programs.web.autorestart:", "programs.web.start_seconds:", "programs.web.start_retries:",
		"programs.web.backoff_max:", "programs.web.stop_signal:", "programs.web.reload_signal:",
		"programs.web.stop_timeout:", "programs.web.log_max_bytes:", "programs.web.log_backups:",
	} {
		if !containsPrefix(probs, field) {
			t.Errorf("Validate does not report %q; got:\n%s", field, strings.Join(probs, "\n"))
		}
	}
	if len(probs) != 14 {
		t.Errorf("Validate reported %d problems, want 14:\n%s", len(probs), strings.Join(probs, "\n"))
	}
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := supervisor.Program{Command: "/bin/true"}
	tests := []struct {
		name    string
		program string
		p       supervisor.Program
		want    string // a problem starting with this; "" for valid
	}{
		{"a minimal program is valid", "web", ok, ""},
		{"a command found via PATH is valid", "web", supervisor.Program{Command: "sleep"}, ""},
		{"signals may carry the SIG prefix in any case", "web", supervisor.Program{Command: "x", StopSignal: "sigint", ReloadSignal: "SIGHUP"}, ""},
		{"every listed signal is accepted", "web", supervisor.Program{Command: "x", StopSignal: "QUIT", ReloadSignal: "USR2"}, ""},
		{"zero start_seconds, retries and log sizes are valid", "web", supervisor.Program{Command: "x", StartSeconds: ptr(0.0), StartRetries: ptr(0), LogMaxBytes: ptr(int64(0)), LogBackups: ptr(0)}, ""},
		{"a long backoff_initial raises the default backoff_max", "web", supervisor.Program{Command: "x", BackoffInitial: svcgate.Duration(time.Minute)}, ""},
		{"a blank command is refused", "web", supervisor.Program{Command: "  "}, "programs.web.command: must not be empty"},
		{"a NUL in the command is refused", "web", supervisor.Program{Command: "/bin/a\x00b"}, "programs.web.command: must not contain a NUL byte"},
		{"a negative stop_timeout is refused", "web", supervisor.Program{Command: "x", StopTimeout: -1}, "programs.web.stop_timeout: must be positive"},
		{"an empty env name is refused", "web", supervisor.Program{Command: "x", Env: map[string]string{"": "v"}}, "programs.web.env:"},
		{"a name with a slash is refused", "a/b", ok, "programs.a/b:"},
		{"a name with a colon, fine for svcgate, is refused as a file name", "a:b", ok, "programs.a:b:"},
		{"a name starting with a dot is refused", ".hidden", ok, "programs..hidden:"},
		{"an empty name is refused", "", ok, "programs.:"},
		{"a 300-character name is refused", strings.Repeat("x", 300), ok, "programs." + strings.Repeat("x", 300) + ":"},
		{"names may use letters, digits and _ . @ -", "Web_1.2@host-a", ok, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			probs := tc.p.Validate(tc.program)
			switch {
			case tc.want == "" && len(probs) > 0:
				t.Errorf("Validate = %q, want no problem", probs)
			case tc.want != "" && !containsPrefix(probs, tc.want):
				t.Errorf("Validate = %q, want a problem starting %q", probs, tc.want)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	t.Parallel()
	got := supervisor.Program{Command: "x", StopSignal: "sigint"}.WithDefaults()
	want := supervisor.Program{
		Command:        "x",
		Autostart:      ptr(true),
		Autorestart:    supervisor.RestartOnFailure,
		StartSeconds:   ptr(1.0),
		StartRetries:   ptr(3),
		BackoffInitial: svcgate.Duration(time.Second),
		BackoffMax:     svcgate.Duration(30 * time.Second),
		StopSignal:     "INT",
		StopTimeout:    svcgate.Duration(10 * time.Second),
		LogMaxBytes:    ptr(int64(10 << 20)),
		LogBackups:     ptr(3),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("WithDefaults (-want +got):\n%s", diff)
	}
	explicit := supervisor.Program{Command: "x", Autostart: ptr(false), StartSeconds: ptr(0.0), LogBackups: ptr(0)}.WithDefaults()
	if *explicit.Autostart || *explicit.StartSeconds != 0 || *explicit.LogBackups != 0 {
		t.Errorf("WithDefaults overrode explicit zero values: %+v", explicit)
	}
}

func TestNewReportsEveryInvalidProgram(t *testing.T) {
	t.Parallel()
	_, err := supervisor.New(supervisor.Options{StateDir: t.TempDir(), Programs: map[string]supervisor.Program{
		"a":   {Command: ""},
		"b":   {Command: "x", Autorestart: "maybe"},
		"c/d": {Command: "x"},
	}})
	backendtest.WantCode(t, err, svcgate.CodeInvalidRequest)
	for _, want := range []string{"programs.a.command", "programs.b.autorestart", "programs.c/d:"} {
		if !strings.Contains(svcgate.ErrorMessage(err), want) {
			t.Errorf("New error %q does not mention %q", svcgate.ErrorMessage(err), want)
		}
	}
	_, err = supervisor.New(supervisor.Options{})
	backendtest.WantCode(t, err, svcgate.CodeInvalidRequest)
}

func TestBeforeRun(t *testing.T) {
	t.Parallel()
	b := mustNew(t, t.TempDir(), map[string]supervisor.Program{
		"web": {Command: "/bin/true", DisplayName: "Web server"},
		"off": {Command: "/bin/true", Disabled: true},
		"man": {Command: "/bin/true", Autostart: ptr(false)},
	})
	ctx := context.Background()

	t.Run("List shows every program stopped, with defaults filled in", func(t *testing.T) {
		list, err := b.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, svc := range list {
			names = append(names, svc.Name)
			if svc.State != svcgate.StateStopped || svc.PID != 0 || svc.Backend != "supervisor" {
				t.Errorf("%s: %+v", svc.Name, svc)
			}
			if svc.Accepts == nil || svc.Dependencies == nil || svc.Since.IsZero() {
				t.Errorf("%s: accepts %v, dependencies %v, since %v: want empty lists and a time", svc.Name, svc.Accepts, svc.Dependencies, svc.Since)
			}
		}
		if diff := cmp.Diff([]string{"man", "off", "web"}, names); diff != "" {
			t.Errorf("List names, sorted (-want +got):\n%s", diff)
		}
	})
	t.Run("Get reports display name and start type", func(t *testing.T) {
		for name, want := range map[string][2]string{
			"web": {"Web server", "auto"}, "off": {"off", "disabled"}, "man": {"man", "manual"},
		} {
			svc, err := b.Get(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if svc.DisplayName != want[0] || string(svc.StartType) != want[1] {
				t.Errorf("%s: display name %q, start type %q; want %q", name, svc.DisplayName, svc.StartType, want)
			}
		}
	})
	t.Run("JSON has empty lists, not null", func(t *testing.T) {
		svc, _ := b.Get(ctx, "web")
		data, _ := json.Marshal(svc)
		for _, want := range []string{`"accepts":[]`, `"dependencies":[]`, `"backend":"supervisor"`} {
			if !strings.Contains(string(data), want) {
				t.Errorf("%s lacks %s", data, want)
			}
		}
	})
	t.Run("Control fails with not_ready", func(t *testing.T) {
		_, err := b.Control(ctx, "web", svcgate.ActionStart, svcgate.ControlOptions{})
		backendtest.WantCode(t, err, svcgate.CodeNotReady)
	})
	t.Run("Control checks the name before readiness", func(t *testing.T) {
		_, err := b.Control(ctx, "nope", svcgate.ActionStart, svcgate.ControlOptions{})
		backendtest.WantCode(t, err, svcgate.CodeServiceNotFound)
		_, err = b.Control(ctx, "a b", svcgate.ActionStart, svcgate.ControlOptions{})
		backendtest.WantCode(t, err, svcgate.CodeInvalidName)
	})
}

func TestCreateRejects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := mustNew(t, dir, map[string]supervisor.Program{"cfg": {Command: "/bin/true"}})
	bin := absBinary(t)
	ctx := context.Background()
	tests := []struct {
		name string
		spec svcgate.ServiceSpec
		code string
	}{
		{"an invalid name", svcgate.ServiceSpec{Name: "../x", BinaryPath: bin}, svcgate.CodeInvalidName},
		{"a name the supervisor cannot use as a file name", svcgate.ServiceSpec{Name: "a:b", BinaryPath: bin}, svcgate.CodeInvalidName},
		{"a relative binary_path", svcgate.ServiceSpec{Name: "x", BinaryPath: "sleep"}, svcgate.CodeInvalidRequest},
		{"an empty binary_path", svcgate.ServiceSpec{Name: "x"}, svcgate.CodeInvalidRequest},
		{"an account", svcgate.ServiceSpec{Name: "x", BinaryPath: bin, Account: "LocalSystem"}, svcgate.CodeUnsupportedAction},
		{"a password", svcgate.ServiceSpec{Name: "x", BinaryPath: bin, Password: "secret"}, svcgate.CodeUnsupportedAction},
		{"dependencies", svcgate.ServiceSpec{Name: "x", BinaryPath: bin, Dependencies: []string{"tcpip"}}, svcgate.CodeUnsupportedAction},
		{"a delayed_auto start type", svcgate.ServiceSpec{Name: "x", BinaryPath: bin, StartType: svcgate.StartDelayedAuto}, svcgate.CodeUnsupportedAction},
		{"an unknown start type", svcgate.ServiceSpec{Name: "x", BinaryPath: bin, StartType: "sometimes"}, svcgate.CodeInvalidRequest},
		{"recovery reset_after", svcgate.ServiceSpec{Name: "x", BinaryPath: bin, Recovery: &svcgate.Recovery{
			Actions: []svcgate.RecoveryAction{{Type: "restart"}}, ResetAfter: svcgate.Duration(time.Hour)}}, svcgate.CodeUnsupportedAction},
		{"mixed recovery actions", svcgate.ServiceSpec{Name: "x", BinaryPath: bin, Recovery: &svcgate.Recovery{
			Actions: []svcgate.RecoveryAction{{Type: "restart"}, {Type: "none"}}}}, svcgate.CodeUnsupportedAction},
		{"an unknown recovery action", svcgate.ServiceSpec{Name: "x", BinaryPath: bin, Recovery: &svcgate.Recovery{
			Actions: []svcgate.RecoveryAction{{Type: "reboot"}}}}, svcgate.CodeInvalidRequest},
		{"a relative dir", svcgate.ServiceSpec{Name: "x", BinaryPath: bin, Dir: "rel"}, svcgate.CodeInvalidRequest},
		{"the name of a configured program", svcgate.ServiceSpec{Name: "cfg", BinaryPath: bin}, svcgate.CodeConflict},
	}
	for _, tc := range tests {
		t.Run("Create with "+tc.name+" fails with "+tc.code, func(t *testing.T) {
			_, err := b.Create(ctx, tc.spec)
			backendtest.WantCode(t, err, tc.code)
		})
	}
	if list, _ := b.List(ctx); len(list) != 1 {
		t.Errorf("refused creates left programs behind: %v", list)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "programs")); len(entries) != 0 {
		t.Errorf("refused creates left files behind: %v", entries)
	}
}

func TestConfigurerBeforeRunPersists(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := absBinary(t)
	ctx := context.Background()
	b := mustNew(t, dir, map[string]supervisor.Program{"cfg": {Command: "/bin/true"}})

	svc, err := b.Create(ctx, svcgate.ServiceSpec{
		Name: "job", BinaryPath: bin, Args: []string{"1"}, DisplayName: "Job", Description: "a job",
		Env: map[string]string{"SECRET": "x"}, StartType: svcgate.StartDisabled,
		Recovery: &svcgate.Recovery{Actions: []svcgate.RecoveryAction{
			{Type: "restart", Delay: svcgate.Duration(5 * time.Second)},
			{Type: "restart", Delay: svcgate.Duration(time.Minute)},
		}},
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if svc.StartType != svcgate.StartDisabled || svc.DisplayName != "Job" || svc.State != svcgate.StateStopped {
		t.Errorf("Create returned %+v", svc)
	}
	_, err = b.Create(ctx, svcgate.ServiceSpec{Name: "job", BinaryPath: bin})
	backendtest.WantCode(t, err, svcgate.CodeConflict)

	file := filepath.Join(dir, "programs", "job.json")
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("persisted file: %v, mode %v; want mode 0600", err, fi.Mode())
		}
	}
	got := readProgram(t, file)
	want := supervisor.Program{
		Command: bin, Args: []string{"1"}, Env: map[string]string{"SECRET": "x"}, DisplayName: "Job", Description: "a job",
		Autostart: ptr(false), Disabled: true, Autorestart: "on_failure",
		BackoffInitial: svcgate.Duration(5 * time.Second), BackoffMax: svcgate.Duration(time.Minute),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("persisted program (-want +got):\n%s", diff)
	}

	svc, err = b.Update(ctx, "job", svcgate.ServiceUpdate{
		DisplayName: ptr("Job 2"), StartType: ptr(svcgate.StartManual),
		Recovery: &svcgate.Recovery{Actions: []svcgate.RecoveryAction{{Type: "none"}}},
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if svc.DisplayName != "Job 2" || svc.StartType != svcgate.StartManual {
		t.Errorf("Update returned %+v", svc)
	}
	if got := readProgram(t, file); got.Autorestart != "never" || got.DisplayName != "Job 2" || got.Disabled {
		t.Errorf("Update not persisted: %+v", got)
	}
	for _, tc := range []struct {
		name string
		u    svcgate.ServiceUpdate
		code string
	}{
		{"an account", svcgate.ServiceUpdate{Account: ptr("root")}, svcgate.CodeUnsupportedAction},
		{"a relative binary path", svcgate.ServiceUpdate{BinaryPath: ptr("bin/x")}, svcgate.CodeInvalidRequest},
		{"an invalid env", svcgate.ServiceUpdate{Env: ptr(map[string]string{"A=B": "c"})}, svcgate.CodeInvalidRequest},
	} {
		_, err := b.Update(ctx, "job", tc.u)
		if !svcgate.IsCode(err, tc.code) {
			t.Errorf("Update with %s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if got := readProgram(t, file); got.DisplayName != "Job 2" || got.Command != bin {
		t.Errorf("a refused update changed the file: %+v", got)
	}
	_, err = b.Update(ctx, "cfg", svcgate.ServiceUpdate{DisplayName: ptr("x")})
	backendtest.WantCode(t, err, svcgate.CodeConflict)
	backendtest.WantCode(t, b.Delete(ctx, "cfg"), svcgate.CodeConflict)
	_, err = b.Update(ctx, "nope", svcgate.ServiceUpdate{})
	backendtest.WantCode(t, err, svcgate.CodeServiceNotFound)

	// A new agent over the same state directory finds the program.
	b2 := mustNew(t, dir, nil)
	svc, err = b2.Get(ctx, "job")
	if err != nil || svc.DisplayName != "Job 2" {
		t.Fatalf("after reload: %+v, %v", svc, err)
	}
	if err := b2.Delete(ctx, "job"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("Delete left %s: %v", file, err)
	}
	backendtest.WantCode(t, b2.Delete(ctx, "job"), svcgate.CodeServiceNotFound)
	if _, err := mustNew(t, dir, nil).Get(ctx, "job"); !svcgate.IsCode(err, svcgate.CodeServiceNotFound) {
		t.Errorf("a deleted program came back: %v", err)
	}
}

func TestPersistedProgramLosesToConfiguredOne(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	b := mustNew(t, dir, nil)
	if _, err := b.Create(ctx, svcgate.ServiceSpec{Name: "web", BinaryPath: absBinary(t), DisplayName: "runtime"}); err != nil {
		t.Fatal(err)
	}
	b2 := mustNew(t, dir, map[string]supervisor.Program{"web": {Command: "/bin/true", DisplayName: "configured"}})
	if svc, _ := b2.Get(ctx, "web"); svc.DisplayName != "configured" {
		t.Errorf("display name %q, want the configured program's", svc.DisplayName)
	}
}

func TestNewRejectsACorruptProgramFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mustNew(t, dir, nil)
	if err := os.WriteFile(filepath.Join(dir, "programs", "bad.json"), []byte(`{"command": "/bin/true", "colour": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := supervisor.New(supervisor.Options{StateDir: dir})
	backendtest.WantCode(t, err, svcgate.CodeInvalidRequest)
	if !strings.Contains(svcgate.ErrorMessage(err), "bad.json") {
		t.Errorf("error %q does not name the file", svcgate.ErrorMessage(err))
	}
}

func TestSlowWatcherMissesNothing(t *testing.T) {
	t.Parallel()
	b := mustNew(t, t.TempDir(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := b.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads while far more events than any channel buffer happen.
	const n = 400
	for i := range n {
		if _, err := b.Create(context.Background(), svcgate.ServiceSpec{Name: "p" + strconv.Itoa(i), BinaryPath: absBinary(t)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the watch closed after %d events", i)
			}
			if ev.Type != svcgate.EventAdded || ev.Service.Name != "p"+strconv.Itoa(i) {
				t.Fatalf("event %d: %s %s, want added p%d", i, ev.Type, ev.Service.Name, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d did not arrive", i)
		}
	}
	cancel()
	for range events {
	}
}

func TestRunTwiceFails(t *testing.T) {
	t.Parallel()
	b := mustNew(t, t.TempDir(), nil)
	stop := run(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := b.Run(ctx); err == nil {
		t.Error("a second Run succeeded")
	}
	stop()
	_, err := b.Watch(context.Background())
	backendtest.WantCode(t, err, svcgate.CodeNotReady)
}

func readProgram(t *testing.T, path string) supervisor.Program {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p supervisor.Program
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return p
}

// absBinary is an absolute path to an existing executable; Create wants
// one, and these tests never start it.
func absBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

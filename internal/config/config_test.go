package config_test

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/backend/supervisor"
	"github.com/svcgate/svcgate/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// ignoreOrigin skips where a Config was read from, which is not part of its
// value.
var ignoreOrigin = cmpopts.IgnoreUnexported(config.Config{})

func ptr[T any](v T) *T { return &v }

func seconds(n float64) svcgate.Duration { return svcgate.Duration(n * float64(time.Second)) }

// mustParse parses yaml that must be valid.
func mustParse(tb testing.TB, yaml string) *config.Config {
	tb.Helper()
	c, err := config.Parse([]byte(yaml), "test.yaml")
	if err != nil {
		tb.Fatalf("Parse:\n%v", err)
	}
	return c
}

// mustFail parses yaml that must be invalid and returns its problems.
func mustFail(tb testing.TB, yaml string) []config.Problem {
	tb.Helper()
	c, err := config.Parse([]byte(yaml), "test.yaml")
	if err == nil {
		tb.Fatalf("Parse succeeded, want an error; got %+v", c)
	}
	if c != nil {
		tb.Errorf("Parse returned a Config along with its error")
	}
	var e *config.Error
	if !errors.As(err, &e) {
		tb.Fatalf("Parse error is %T (%v), want *config.Error", err, err)
	}
	if e.Source != "test.yaml" {
		tb.Errorf("Error.Source = %q, want test.yaml", e.Source)
	}
	return e.Problems
}

func mustGetwd(tb testing.TB) string {
	tb.Helper()
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	return wd
}

func TestDefault(t *testing.T) {
	want := &config.Config{
		Listen:   "127.0.0.1:8484",
		StateDir: filepath.Join(mustGetwd(t), "state"),
		Backend:  "auto",
		Log:      config.Log{Level: "info", Format: "json"},
		HTTP: config.HTTP{
			MaxBodyBytes:      1 << 20,
			MaxHeaderBytes:    64 << 10,
			ReadHeaderTimeout: seconds(5),
			ReadTimeout:       seconds(30),
			WriteTimeout:      0,
			IdleTimeout:       seconds(120),
			ShutdownTimeout:   seconds(10),
		},
		Events: config.Events{Buffer: 4096},
	}

	t.Run("has every documented default", func(t *testing.T) {
		if diff := cmp.Diff(want, config.Default(), ignoreOrigin); diff != "" {
			t.Errorf("Default() mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("is valid", func(t *testing.T) {
		if err := config.Default().Validate(); err != nil {
			t.Errorf("Default().Validate():\n%v", err)
		}
	})
	t.Run("is loopback so it may serve plain HTTP", func(t *testing.T) {
		if !config.Default().Loopback() {
			t.Error("Default().Loopback() = false")
		}
	})
	t.Run("returns a fresh value each call", func(t *testing.T) {
		a := config.Default()
		a.Listen = "changed"
		if b := config.Default(); b.Listen == "changed" {
			t.Error("changing one Default() changed the next")
		}
	})

	for name, input := range map[string]string{
		"an empty file means all defaults":            "",
		"a file of comments means all defaults":       "# nothing here yet\n\n# really\n",
		"an empty document means all defaults":        "---\n",
		"a null document means all defaults":          "~\n",
		"null sections keep their defaults":           "http:\nlog: ~\nprograms:\n",
		"keys set to their defaults change nothing":   "listen: 127.0.0.1:8484\nbackend: auto\nevents: {buffer: 4096}\n",
		"a document end marker changes nothing":       "listen: 127.0.0.1:8484\n...\n",
		"a null value keeps the default of its field": "listen:\nhttp:\n  read_timeout: ~\n",
	} {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(want, mustParse(t, input), ignoreOrigin); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseFullFile(t *testing.T) {
	c, err := config.Load(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatalf("Load:\n%v", err)
	}
	want := &config.Config{
		Listen:   "[::1]:9090",
		StateDir: "/var/lib/svcgate",
		Backend:  "supervisor",
		Log:      config.Log{Level: "debug", Format: "text"},
		HTTP: config.HTTP{
			MaxBodyBytes:      2 << 20,
			MaxHeaderBytes:    32 << 10,
			ReadHeaderTimeout: seconds(2),
			ReadTimeout:       seconds(60),
			WriteTimeout:      seconds(45),
			IdleTimeout:       seconds(300),
			ShutdownTimeout:   seconds(90),
		},
		Events: config.Events{Buffer: 100},
		Programs: map[string]supervisor.Program{
			"web": {
				Command:        "/usr/bin/env",
				Args:           []string{"python3", "-m", "http.server", "8000"},
				Env:            map[string]string{"PYTHONUNBUFFERED": "1"},
				Dir:            "/srv/web",
				DisplayName:    "Web",
				Description:    "The demo web server.",
				Autostart:      ptr(false),
				Disabled:       true,
				Autorestart:    "always",
				StartSeconds:   ptr(2.5),
				StartRetries:   ptr(5),
				BackoffInitial: seconds(2),
				BackoffMax:     seconds(60),
				StopSignal:     "INT",
				StopTimeout:    seconds(20),
				LogMaxBytes:    ptr(int64(1024)),
				LogBackups:     ptr(0),
				ReloadSignal:   "HUP",
			},
			"worker": {Command: "/bin/sleep", Args: []string{"infinity"}},
		},
	}
	if filepath.Separator != '/' {
		// On Windows "/var/lib/svcgate" has no drive, so it is resolved.
		want.StateDir = c.StateDir
	}
	if diff := cmp.Diff(want, c, ignoreOrigin); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	if c.Loopback() != true {
		t.Errorf("Loopback() of [::1]:9090 = false")
	}
}

// TestParseRefuses lists what an operator can get wrong and what they are
// told. Each case names the exact problems: a line, a field, and a fragment
// of the message that says what to fix.
func TestParseRefuses(t *testing.T) {
	type want struct {
		line     int
		field    string
		fragment string
	}
	tests := []struct {
		name  string
		input string
		want  []want
	}{
		{
			name:  "a typo'd key is reported with its line and the key it is close to",
			input: "listen: 127.0.0.1:8484\nbakend: supervisor\n",
			want:  []want{{2, "bakend", "unknown field (did you mean backend?)"}},
		},
		{
			name:  "two typos are both reported, each with its line",
			input: "http:\n  read_timout: 5s\n  max_body_byte: 10\nlog:\n  levl: debug\n",
			want: []want{
				{2, "http.read_timout", "did you mean read_timeout?"},
				{3, "http.max_body_byte", "did you mean max_body_bytes?"},
				{5, "log.levl", "did you mean level?"},
			},
		},
		{
			name:  "a key far from every known one gets no suggestion",
			input: "colour: blue\n",
			want:  []want{{1, "colour", "unknown field"}},
		},
		{
			name:  "a typo inside a program is reported with its line",
			input: "backend: supervisor\nprograms:\n  web:\n    command: /bin/true\n    stop_timout: 5s\n",
			want:  []want{{5, "programs.web.stop_timout", "did you mean stop_timeout?"}},
		},
		{
			name:  "a negative timeout is refused at its line",
			input: "http:\n  read_timeout: -5s\n",
			want:  []want{{2, "http.read_timeout", `duration "-5s" is negative`}},
		},
		{
			name:  "a negative program timeout is refused at its line",
			input: "programs:\n  web:\n    command: /bin/true\n    stop_timeout: -1s\n",
			want:  []want{{4, "programs.web.stop_timeout", `duration "-1s" is negative`}},
		},
		{
			name:  "a duration without a unit is refused",
			input: "http:\n  idle_timeout: 30\n",
			want:  []want{{2, "http.idle_timeout", `invalid duration "30"`}},
		},
		{
			name:  "a zero timeout that must be positive is refused at its line",
			input: "http:\n  read_timeout: 0s\n",
			want:  []want{{2, "http.read_timeout", "must be positive"}},
		},
		{
			name: "a program declared twice is reported with both lines",
			input: "programs:\n  web:\n    command: /bin/true\n  worker:\n    command: /bin/true\n" +
				"  web:\n    command: /bin/false\n",
			want: []want{{6, "programs.web", "defined twice, first at line 2"}},
		},
		{
			name:  "a key repeated in a section is reported with both lines",
			input: "http:\n  read_timeout: 5s\n  read_timeout: 6s\n",
			want:  []want{{3, "http.read_timeout", "defined twice, first at line 2"}},
		},
		{
			name:  "an unknown backend is named with the choices",
			input: "backend: sytemd\n",
			want:  []want{{1, "backend", `unknown backend "sytemd" (want auto, windows, systemd or supervisor)`}},
		},
		{
			name:  "programs under the systemd backend are refused",
			input: "backend: systemd\nprograms:\n  web:\n    command: /bin/true\n",
			want:  []want{{2, "programs", "only the supervisor backend runs programs"}},
		},
		{
			name:  "programs under the windows backend are refused",
			input: "backend: windows\nprograms:\n  web:\n    command: C:\\demo.exe\n",
			want:  []want{{2, "programs", "only the supervisor backend runs programs"}},
		},
		{
			name:  "a program's own problems carry the line of their field",
			input: "programs:\n  web:\n    command: /bin/true\n    autorestart: sometimes\n",
			want:  []want{{4, "programs.web.autorestart", "must be never, on_failure or always"}},
		},
		{
			name:  "a missing program field is reported at the program's line",
			input: "programs:\n  web:\n    args: [x]\n",
			want:  []want{{2, "programs.web.command", "must not be empty"}},
		},
		{
			name:  "a bad program name is reported at its line",
			input: "programs:\n  \"my web\":\n    command: /bin/true\n",
			want:  []want{{2, "programs.my web", "space"}},
		},
		{
			name:  "an unknown log level and format are named",
			input: "log:\n  level: verbose\n  format: xml\n",
			want: []want{
				{2, "log.level", `unknown level "verbose" (want debug, info, warn or error)`},
				{3, "log.format", `unknown format "xml" (want json or text)`},
			},
		},
		{
			name:  "a listen address without a port is refused",
			input: "listen: localhost\n",
			want:  []want{{1, "listen", "must be host:port"}},
		},
		{
			name:  "a listen port out of range is refused",
			input: "listen: 127.0.0.1:65536\n",
			want:  []want{{1, "listen", "port must be a number from 0 to 65535"}},
		},
		{
			name:  "a named listen port is refused",
			input: "listen: 127.0.0.1:http\n",
			want:  []want{{1, "listen", "port must be a number"}},
		},
		{
			name:  "a listen host that is no host name is refused",
			input: "listen: \"my host:80\"\n",
			want:  []want{{1, "listen", "neither an IP address nor a host name"}},
		},
		{
			name:  "an empty state_dir is refused",
			input: "state_dir: \"\"\n",
			want:  []want{{1, "state_dir", "must not be empty"}},
		},
		{
			name:  "sizes must be positive",
			input: "http:\n  max_body_bytes: 0\n  max_header_bytes: -1\n",
			want: []want{
				{2, "http.max_body_bytes", "must be positive, got 0"},
				{3, "http.max_header_bytes", "must be positive, got -1"},
			},
		},
		{
			name:  "an event buffer below one is refused",
			input: "events:\n  buffer: 0\n",
			want:  []want{{2, "events.buffer", "must be from 1 to 1000000, got 0"}},
		},
		{
			name:  "an absurdly large event buffer is refused",
			input: "events:\n  buffer: 1000001\n",
			want:  []want{{2, "events.buffer", "must be from 1 to 1000000"}},
		},
		{
			name:  "a word where a number belongs names the field and the type",
			input: "events:\n  buffer: lots\n",
			want:  []want{{2, "events.buffer", `must be an integer, not "lots"`}},
		},
		{
			name:  "a fraction where a count belongs is refused, not truncated",
			input: "events:\n  buffer: 1.5\n",
			want:  []want{{2, "events.buffer", `must be an integer, not "1.5"`}},
		},
		{
			name:  "an empty program name is refused at its line",
			input: "programs:\n  \"\":\n    command: /bin/true\n",
			want:  []want{{2, "programs", `keys must be plain names, not ""`}},
		},
		{
			name:  "an integer too large for its field is called out of range",
			input: "events:\n  buffer: 99999999999999999999\n",
			want:  []want{{2, "events.buffer", "99999999999999999999 is out of range"}},
		},
		{
			name:  "a word that is no boolean is refused",
			input: "programs:\n  web:\n    command: /bin/true\n    autostart: maybe\n",
			want:  []want{{4, "programs.web.autostart", `must be true or false, not "maybe"`}},
		},
		{
			name:  "a list where a string belongs is refused once",
			input: "programs:\n  web:\n    command: [/bin/sh, -c]\n",
			want:  []want{{3, "programs.web.command", "must be a string, not a list"}},
		},
		{
			name:  "a scalar where a section belongs is refused",
			input: "http: fast\n",
			want:  []want{{1, "http", `must be a mapping of keys to values, not "fast"`}},
		},
		{
			name:  "a string where a list belongs is refused",
			input: "programs:\n  web:\n    command: /bin/sh\n    args: -c true\n",
			want:  []want{{4, "programs.web.args", `must be a list, not "-c true"`}},
		},
		{
			name:  "a list at the top is refused",
			input: "- listen: 127.0.0.1:1\n",
			want:  []want{{1, "", "must be a mapping of keys to values, not a list"}},
		},
		{
			name:  "a second YAML document is refused at its start",
			input: "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n",
			want:  []want{{2, "", "a second YAML document starts here"}},
		},
		{
			name:  "a syntax error is reported with its line",
			input: "listen: 127.0.0.1:1\nhttp: read_timeout: 5s\n",
			want:  []want{{2, "", "mapping values are not allowed in this context"}},
		},
		{
			name:  "a tab indent is reported with its line",
			input: "http:\n\tread_timeout: 5s\n",
			want:  []want{{2, "", "cannot start any token"}},
		},
		{
			name:  "an alias to a value of the wrong kind is refused at the alias",
			input: "listen: &addr 127.0.0.1:1\nhttp: *addr\n",
			want:  []want{{2, "http", "must be a mapping of keys to values"}},
		},
		{
			name:  "an unknown key merged in from an anchor is reported at the anchor",
			input: "programs:\n  a: &base\n    command: /bin/true\n    colour: red\n  b:\n    <<: *base\n",
			want:  []want{{4, "programs.a.colour", "unknown field"}},
		},
		{
			name:  "a merge of something that is not a mapping is refused",
			input: "programs:\n  a:\n    <<: 5\n    command: /bin/true\n",
			want:  []want{{3, "programs.a", "<< must merge a mapping"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustFail(t, tt.input)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tt.want), dump(got))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Line != w.line || g.Field != w.field || !strings.Contains(g.Message, w.fragment) {
					t.Errorf("problem %d = %d %q %q\nwant        %d %q containing %q", i, g.Line, g.Field, g.Message, w.line, w.field, w.fragment)
				}
			}
		})
	}
}

func dump(ps []config.Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("\t")
		b.WriteString((&config.Error{Problems: []config.Problem{p}}).Error())
		b.WriteString("\n")
	}
	return b.String()
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		input string
		check func(*config.Config) bool
	}{
		{"a write timeout of zero means none", "http:\n  write_timeout: 0s\n",
			func(c *config.Config) bool { return c.HTTP.WriteTimeout == 0 }},
		{"port zero picks a free port", "listen: 127.0.0.1:0\n",
			func(c *config.Config) bool { return c.Listen == "127.0.0.1:0" }},
		{"an empty host listens on every interface", "listen: :8484\n",
			func(c *config.Config) bool { return !c.Loopback() }},
		{"programs are allowed under backend auto", "programs:\n  web:\n    command: /bin/true\n",
			func(c *config.Config) bool { return c.Programs["web"].Command == "/bin/true" }},
		{"an anchor can share program settings through a merge key",
			"programs:\n  a: &base\n    command: /bin/sleep\n    stop_timeout: 3s\n  b:\n    <<: *base\n    args: [\"1\"]\n",
			func(c *config.Config) bool {
				b := c.Programs["b"]
				return b.Command == "/bin/sleep" && b.StopTimeout == seconds(3) && len(b.Args) == 1
			}},
		{"yes means true for a boolean, as yaml.v3 keeps from YAML 1.1",
			"programs:\n  web:\n    command: /bin/true\n    autostart: yes\n",
			func(c *config.Config) bool { return *c.Programs["web"].Autostart }},
		{"an empty programs section means no programs", "programs: {}\n",
			func(c *config.Config) bool { return c.Programs == nil }},
		{"a whole number written as a float is an integer", "events:\n  buffer: 1e3\n",
			func(c *config.Config) bool { return c.Events.Buffer == 1000 }},
		{"keys of flow mappings are checked like block ones", "http: {read_timeout: 7s}\n",
			func(c *config.Config) bool { return c.HTTP.ReadTimeout == seconds(7) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c := mustParse(t, tt.input); !tt.check(c) {
				t.Errorf("parsed to %+v", c)
			}
		})
	}
}

// TestSeveralProblemsAreAllListed is the promise behind the whole package:
// one run shows every mistake in a file, in file order, with lines.
func TestSeveralProblemsAreAllListed(t *testing.T) {
	// Parsed under a fixed name so the golden text is the same on every OS.
	_, err := config.Parse([]byte(mustRead(t, filepath.Join("testdata", "several.yaml"))), "several.yaml")
	var e *config.Error
	if !errors.As(err, &e) {
		t.Fatalf("Load error is %T (%v), want *config.Error", err, err)
	}
	want := []config.Problem{
		{Line: 3, Field: "backend", Message: `unknown backend "sytemd" (want auto, windows, systemd or supervisor)`},
		{Line: 5, Field: "http.read_timout", Message: "unknown field (did you mean read_timeout?)"},
		{Line: 6, Field: "http.shutdown_timeout", Message: `duration "-1s" is negative`},
		{Line: 8, Field: "events.buffer", Message: "must be from 1 to 1000000, got 0"},
	}
	if diff := cmp.Diff(want, e.Problems); diff != "" {
		t.Errorf("problems mismatch (-want +got):\n%s", diff)
	}
	golden(t, filepath.Join("testdata", "several.golden"), err.Error()+"\n")
}

// golden compares got with the file at path, or rewrites the file with
// -update.
func golden(tb testing.TB, path, got string) {
	tb.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		tb.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  *config.Error
		want string
	}{
		{"file, line, field and message",
			&config.Error{Source: "a.yaml", Problems: []config.Problem{{Line: 3, Field: "listen", Message: "bad"}}},
			"a.yaml:3: listen: bad"},
		{"a problem without a line names only the file",
			&config.Error{Source: "a.yaml", Problems: []config.Problem{{Field: "listen", Message: "bad"}}},
			"a.yaml: listen: bad"},
		{"a problem of the whole file has no field",
			&config.Error{Source: "a.yaml", Problems: []config.Problem{{Line: 2, Message: "syntax"}}},
			"a.yaml:2: syntax"},
		{"without a source the line is spelled out",
			&config.Error{Problems: []config.Problem{{Line: 2, Field: "f", Message: "m"}}},
			"line 2: f: m"},
		{"one problem per line",
			&config.Error{Source: "a", Problems: []config.Problem{{Line: 1, Field: "x", Message: "m1"}, {Line: 2, Field: "y", Message: "m2"}}},
			"a:1: x: m1\na:2: y: m2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestValidate covers Configs built in code, which never went through the
// decoder that refuses negative durations.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*config.Config)
		want   []config.Problem
	}{
		{"negative durations are reported even without a file", func(c *config.Config) {
			c.HTTP.ReadTimeout = seconds(-1)
			c.HTTP.WriteTimeout = seconds(-2)
		}, []config.Problem{
			{Field: "http.read_timeout", Message: "must not be negative, got -1s"},
			{Field: "http.write_timeout", Message: "must not be negative, got -2s (0 means no timeout)"},
		}},
		{"zero timeouts that must be positive are reported", func(c *config.Config) {
			c.HTTP.ReadHeaderTimeout = 0
			c.HTTP.IdleTimeout = 0
			c.HTTP.ShutdownTimeout = 0
		}, []config.Problem{
			{Field: "http.read_header_timeout", Message: "must be positive"},
			{Field: "http.idle_timeout", Message: "must be positive"},
			{Field: "http.shutdown_timeout", Message: "must be positive"},
		}},
		{"a relative state_dir is refused", func(c *config.Config) { c.StateDir = "state" },
			[]config.Problem{{Field: "state_dir", Message: `must be an absolute path, got "state"`}}},
		{"programs are validated by the supervisor's rules", func(c *config.Config) {
			c.Programs = map[string]supervisor.Program{"b": {}, "a": {Command: "/bin/true", Autorestart: "sometimes"}}
		}, []config.Problem{
			{Field: "programs.a.autorestart", Message: `must be never, on_failure or always, got "sometimes"`},
			{Field: "programs.b.command", Message: "must not be empty"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.modify(c)
			err := c.Validate()
			var e *config.Error
			if !errors.As(err, &e) {
				t.Fatalf("Validate() = %v, want *config.Error", err)
			}
			if diff := cmp.Diff(tt.want, e.Problems); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("a parsed config keeps its lines for a later Validate", func(t *testing.T) {
		c := mustParse(t, "# reloaded\nhttp:\n  read_timeout: 9s\n")
		c.HTTP.ReadTimeout = 0
		want := "test.yaml:3: http.read_timeout: must be positive"
		if err := c.Validate(); err == nil || err.Error() != want {
			t.Errorf("Validate() = %v, want %s", err, want)
		}
	})
}

func TestStateDirIsMadeAbsolute(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	wd := mustGetwd(t) // dir after symlinks such as macOS's /var → /private/var
	abs := filepath.Join(t.TempDir(), "elsewhere")
	tests := []struct {
		name, stateDir, want string
	}{
		{"the default is under the working directory", "", filepath.Join(wd, "state")},
		{"a dot-relative path is resolved against the working directory", "./data", filepath.Join(wd, "data")},
		{"a bare relative path is resolved against the working directory", "run/svcgate", filepath.Join(wd, "run", "svcgate")},
		{"a parent-relative path is resolved and cleaned", "../up", filepath.Join(filepath.Dir(wd), "up")},
		{"an absolute path is kept", abs, abs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := ""
			if tt.stateDir != "" {
				input = "state_dir: " + tt.stateDir + "\n"
			}
			if got := mustParse(t, input).StateDir; got != tt.want {
				t.Errorf("StateDir = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDurationsUseTextUnmarshaler pins the yaml.v3 behaviour the package
// relies on: scalars are handed to svcgate.Duration's UnmarshalText, so
// "1m30s" works and negative values are refused by Duration itself.
func TestDurationsUseTextUnmarshaler(t *testing.T) {
	var v struct {
		D svcgate.Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 1m30s\n"), &v); err != nil || v.D != seconds(90) {
		t.Errorf("yaml.v3 decoded 1m30s to %v, %v; want 1m30s, nil", v.D, err)
	}
	if err := yaml.Unmarshal([]byte("d: -1s\n"), &v); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("yaml.v3 decoded -1s with error %v, want Duration's refusal", err)
	}
	if c := mustParse(t, "http:\n  shutdown_timeout: 1m30s\n"); c.HTTP.ShutdownTimeout != seconds(90) {
		t.Errorf("shutdown_timeout = %v, want 1m30s", c.HTTP.ShutdownTimeout)
	}
}

// TestKeysAgreeWithYAMLv3 guards the hand-written key check against
// drifting from yaml.v3's own field rules, for instance when a field is
// added to supervisor.Program: a Config with every field set is encoded,
// then decoded both by yaml.v3 in strict mode and by Parse.
func TestKeysAgreeWithYAMLv3(t *testing.T) {
	c := mustParse(t, mustRead(t, filepath.Join("testdata", "full.yaml")))
	for _, f := range structFieldsNotSetIn(c.Programs["web"]) {
		t.Errorf("testdata/full.yaml leaves programs.web.%s unset; set every field so this test covers it", f)
	}
	data, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}

	strict := config.Default()
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(strict); err != nil {
		t.Fatalf("yaml.v3 strict decode of the encoded config: %v", err)
	}
	parsed, err := config.Parse(data, "encoded.yaml")
	if err != nil {
		t.Fatalf("Parse of the encoded config:\n%v\n%s", err, data)
	}
	if diff := cmp.Diff(strict, parsed, ignoreOrigin); diff != "" {
		t.Errorf("Parse and yaml.v3 disagree (-yaml.v3 +Parse):\n%s", diff)
	}
	if diff := cmp.Diff(c, parsed, ignoreOrigin, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("encode then Parse changed the config (-before +after):\n%s", diff)
	}
}

// structFieldsNotSetIn lists the YAML keys of p that hold their zero value.
func structFieldsNotSetIn(p supervisor.Program) []string {
	data, _ := yaml.Marshal(supervisor.Program{})
	var zero, set map[string]any
	_ = yaml.Unmarshal(data, &zero)
	data, _ = yaml.Marshal(p)
	_ = yaml.Unmarshal(data, &set)
	var unset []string
	for k := range zero {
		if cmp.Equal(zero[k], set[k]) {
			unset = append(unset, k)
		}
	}
	return unset
}

func mustRead(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestLoopback(t *testing.T) {
	tests := []struct {
		listen string
		want   bool
	}{
		{"127.0.0.1:8484", true},
		{"127.8.9.10:1", true},
		{"[::1]:8484", true},
		{"[::ffff:127.0.0.1]:8484", true},
		{"localhost:8484", true},
		{"LocalHost:8484", true},
		{":8484", false},
		{"0.0.0.0:8484", false},
		{"[::]:8484", false},
		{"192.168.1.10:8484", false},
		{"example.com:8484", false},
		{"localhost.example.com:8484", false},
		{"not an address", false},
	}
	for _, tt := range tests {
		name := "is not loopback"
		if tt.want {
			name = "is loopback"
		}
		t.Run(tt.listen+" "+name, func(t *testing.T) {
			c := config.Default()
			c.Listen = tt.listen
			if got := c.Loopback(); got != tt.want {
				t.Errorf("Loopback() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Run("a missing file is a path error, not a config error", func(t *testing.T) {
		_, err := config.Load(filepath.Join(t.TempDir(), "missing.yaml"))
		var e *config.Error
		if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &e) {
			t.Errorf("Load(missing) = %v, want fs.ErrNotExist and no *config.Error", err)
		}
	})
	t.Run("problems name the file by its path", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bad.yaml")
		if err := os.WriteFile(path, []byte("listen: x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(path)
		if want := path + ":1: listen: "; err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Load error = %v, want it to start with %q", err, want)
		}
	})
}

// Package config loads, validates and holds svcgate's one YAML
// configuration file.
//
// Decoding is strict: unknown keys, duplicate keys, values of the wrong type
// and extra YAML documents are refused, and every problem in a file is
// reported at once with its line, so an operator fixes a file in one pass
// instead of one error per restart.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/backend/supervisor"
)

// Config is the agent's whole configuration. The zero value is not useful:
// start from Default, Parse or Load. A *Config that has been handed to a
// Store is shared between goroutines and must be treated as read-only.
type Config struct {
	// Listen is the host:port the API listens on. Only a loopback address
	// may serve plain HTTP (see Loopback); port 0 picks a free port.
	Listen string `yaml:"listen"`
	// StateDir holds tokens, the audit log, supervisor logs and runtime
	// programs. Parse stores it absolute, resolved against the working
	// directory at load time, so a later chdir cannot move it.
	StateDir string `yaml:"state_dir"`
	// Backend is auto, windows, systemd or supervisor. Auto is resolved
	// when the agent starts, not here, so that one file can be checked on
	// any machine.
	Backend string `yaml:"backend"`
	// Log configures the agent's own log on stderr.
	Log Log `yaml:"log"`
	// HTTP bounds the API server's resource use.
	HTTP HTTP `yaml:"http"`
	// Events configures the event hub.
	Events Events `yaml:"events"`
	// Programs are the supervisor backend's programs by name; nil when
	// none are declared. Under backend auto they are accepted and only
	// used if auto picks the supervisor.
	Programs map[string]supervisor.Program `yaml:"programs"`

	// origin remembers where the configuration came from, so that
	// Validate can point at lines even when called after Parse.
	origin *origin
}

// Log configures the agent's own log.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json (for collectors) or text (for people at a terminal).
	Format string `yaml:"format"`
}

// HTTP bounds the API server. Every limit exists so that a slow or hostile
// client cannot hold the agent's memory or connections; see DESIGN.md §4.
type HTTP struct {
	// MaxBodyBytes caps a request body; larger ones get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxHeaderBytes caps the request header (http.Server.MaxHeaderBytes).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// ReadHeaderTimeout bounds reading the request header (Slowloris).
	ReadHeaderTimeout svcgate.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole non-streaming request.
	ReadTimeout svcgate.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response; 0 means none, because the
	// event and log streams are long-lived and handlers set their own
	// deadlines.
	WriteTimeout svcgate.Duration `yaml:"write_timeout"`
	// IdleTimeout closes keep-alive connections left idle this long.
	IdleTimeout svcgate.Duration `yaml:"idle_timeout"`
	// ShutdownTimeout is how long in-flight requests may drain on SIGTERM
	// or an SCM stop before the server is closed hard.
	ShutdownTimeout svcgate.Duration `yaml:"shutdown_timeout"`
}

// Events configures the event hub.
type Events struct {
	// Buffer is how many recent events are kept so that an SSE client
	// reconnecting with Last-Event-ID misses nothing.
	Buffer int `yaml:"buffer"`
}

// origin is where a Config was read from.
type origin struct {
	source string
	// lines maps a field path ("programs.web.stop_timeout") to the line
	// of its key in the source.
	lines map[string]int
}

// The accepted values of the enumerated fields, in the order messages list
// them.
var (
	backends   = []string{"auto", "windows", "systemd", "supervisor"}
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"json", "text"}
)

// Default returns the configuration svcgate runs with when no file is
// given: the API on 127.0.0.1:8484, state in ./state (made absolute against
// the current working directory), backend auto, no programs. Each call
// returns a new Config the caller may change.
func Default() *Config {
	return &Config{
		Listen:   "127.0.0.1:8484",
		StateDir: absPath("state"),
		Backend:  "auto",
		Log:      Log{Level: "info", Format: "json"},
		HTTP: HTTP{
			MaxBodyBytes:      1 << 20,
			MaxHeaderBytes:    64 << 10,
			ReadHeaderTimeout: svcgate.Duration(5 * time.Second),
			ReadTimeout:       svcgate.Duration(30 * time.Second),
			WriteTimeout:      0,
			IdleTimeout:       svcgate.Duration(120 * time.Second),
			ShutdownTimeout:   svcgate.Duration(10 * time.Second),
		},
		Events: Events{Buffer: 4096},
	}
}

// absPath returns p made absolute, or p unchanged if the working directory
// cannot be determined; Validate then reports the relative path rather than
// this function guessing one.
func absPath(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// Load reads the file at path and parses it with Parse, naming the file by
// path in every message. A file that cannot be read is an ordinary wrapped
// *fs.PathError; a file that can be read but is not a valid configuration
// is an *Error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes data strictly over Default, makes state_dir absolute
// against the current working directory, and validates the result. source
// names the file in messages ("" for none). Empty data, or data holding
// only comments, yields the defaults.
//
// Any problem, in decoding or validation, makes Parse return a nil Config
// and an *Error listing every problem found, in file order.
func Parse(data []byte, source string) (*Config, error) {
	c := Default()
	d := decode(data, c)
	if c.StateDir != "" && !filepath.IsAbs(c.StateDir) {
		a, err := filepath.Abs(c.StateDir)
		if err != nil {
			d.add(d.lines["state_dir"], "state_dir", "cannot be made absolute: %v", err)
			d.refusedValues = append(d.refusedValues, "state_dir")
		} else {
			c.StateDir = a
		}
	}
	if len(c.Programs) == 0 {
		c.Programs = nil // "programs: {}" means none, as documented
	}
	c.origin = &origin{source: source, lines: d.lines}

	problems := d.problems
	for _, p := range c.problems() {
		// A field whose value was refused while decoding kept its
		// default or became empty; what validation says about that
		// value would only repeat the first problem less precisely.
		if !d.refused(p.Field) {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return nil, newError(source, problems)
	}
	return c, nil
}

// Loopback reports whether the listen host is a loopback address or
// "localhost". Only then may the API be served without TLS: anything else,
// including an empty host (every interface), is reachable from the
// network. An unparsable listen address is not loopback.
func (c *Config) Loopback() bool {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback() // includes ::ffff:127.0.0.0/104
}

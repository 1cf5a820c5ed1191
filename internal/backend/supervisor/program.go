package supervisor

import (
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/svcgate/svcgate"
)

// Program declares one supervised program. It is both the configuration
// file's shape (YAML) and the form runtime-created programs are persisted in
// under the state directory (JSON).
//
// Zero values mean "use the default"; WithDefaults fills them in and its doc
// comment lists the defaults.
type Program struct {
	Command     string            `yaml:"command" json:"command"`
	Args        []string          `yaml:"args" json:"args,omitempty"`
	Env         map[string]string `yaml:"env" json:"env,omitempty"`
	Dir         string            `yaml:"dir" json:"dir,omitempty"`
	DisplayName string            `yaml:"display_name" json:"display_name,omitempty"`
	Description string            `yaml:"description" json:"description,omitempty"`
	// Autostart starts the program when the agent starts (start type auto);
	// nil means true.
	Autostart *bool `yaml:"autostart" json:"autostart,omitempty"`
	// Disabled refuses starts (start type disabled). It wins over Autostart.
	Disabled bool `yaml:"disabled" json:"disabled,omitempty"`
	// Autorestart is never, on_failure (default) or always.
	Autorestart string `yaml:"autorestart" json:"autorestart,omitempty"`
	// StartSeconds is how long a process must stay up to count as running
	// (default 1).
	StartSeconds *float64 `yaml:"start_seconds" json:"start_seconds,omitempty"`
	// StartRetries is how many failed starts in a row are retried with
	// exponential backoff before the program is failed (default 3).
	StartRetries *int `yaml:"start_retries" json:"start_retries,omitempty"`
	// BackoffInitial and BackoffMax bound the delay between restarts
	// (defaults 1s and 30s).
	BackoffInitial svcgate.Duration `yaml:"backoff_initial" json:"backoff_initial,omitempty"`
	BackoffMax     svcgate.Duration `yaml:"backoff_max" json:"backoff_max,omitempty"`
	// StopSignal is sent to the process group on stop (default TERM).
	StopSignal string `yaml:"stop_signal" json:"stop_signal,omitempty"`
	// StopTimeout is how long to wait after StopSignal before SIGKILL
	// (default 10s).
	StopTimeout svcgate.Duration `yaml:"stop_timeout" json:"stop_timeout,omitempty"`
	// LogMaxBytes and LogBackups bound the captured stdout/stderr files
	// (defaults 10 MiB and 3). LogMaxBytes 0 turns rotation off; LogBackups
	// 0 truncates the file when it is full instead of keeping a backup.
	LogMaxBytes *int64 `yaml:"log_max_bytes" json:"log_max_bytes,omitempty"`
	LogBackups  *int   `yaml:"log_backups" json:"log_backups,omitempty"`
	// ReloadSignal, when set, is sent to the process group on reload and
	// makes the program accept reload; empty (the default) means the
	// program cannot reload.
	ReloadSignal string `yaml:"reload_signal" json:"reload_signal,omitempty"`
}

// The autorestart policies.
const (
	RestartNever     = "never"
	RestartOnFailure = "on_failure"
	RestartAlways    = "always"
)

// The defaults WithDefaults applies.
const (
	DefaultStartSeconds   = 1.0
	DefaultStartRetries   = 3
	DefaultBackoffInitial = time.Second
	DefaultBackoffMax     = 30 * time.Second
	DefaultStopSignal     = "TERM"
	DefaultStopTimeout    = 10 * time.Second
	DefaultLogMaxBytes    = 10 << 20
	DefaultLogBackups     = 3
)

// signalNames are the signals a program may name, without the SIG prefix.
// The list is the same on every OS so a configuration validates the same
// everywhere; on Windows only the stop itself is honoured (see
// proc_windows.go).
var signalNames = []string{"TERM", "INT", "HUP", "QUIT", "KILL", "USR1", "USR2"}

// normalizeSignal returns the canonical name of sig ("sigterm" → "TERM") and
// whether it is one the supervisor knows.
func normalizeSignal(sig string) (string, bool) {
	s := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(sig)), "SIG")
	return s, slices.Contains(signalNames, s)
}

// WithDefaults returns p with every unset field given its default: autostart
// true, autorestart on_failure, start_seconds 1, start_retries 3, backoff 1s
// doubling up to 30s (or up to backoff_initial when that is longer),
// stop_signal TERM, stop_timeout 10s, log_max_bytes 10 MiB, log_backups 3.
// Signal names are normalised to their bare upper-case form. Slices and maps
// are copied, so the result shares no memory with p.
func (p Program) WithDefaults() Program {
	q := p.clone()
	if q.Autostart == nil {
		q.Autostart = ptr(true)
	}
	if q.Autorestart == "" {
		q.Autorestart = RestartOnFailure
	}
	if q.StartSeconds == nil {
		q.StartSeconds = ptr(DefaultStartSeconds)
	}
	if q.StartRetries == nil {
		q.StartRetries = ptr(DefaultStartRetries)
	}
	if q.BackoffInitial == 0 {
		q.BackoffInitial = svcgate.Duration(DefaultBackoffInitial)
	}
	if q.BackoffMax == 0 {
		q.BackoffMax = max(svcgate.Duration(DefaultBackoffMax), q.BackoffInitial)
	}
	if q.StopSignal == "" {
		q.StopSignal = DefaultStopSignal
	}
	if s, ok := normalizeSignal(q.StopSignal); ok {
		q.StopSignal = s
	}
	if s, ok := normalizeSignal(q.ReloadSignal); ok {
		q.ReloadSignal = s
	}
	if q.StopTimeout == 0 {
		q.StopTimeout = svcgate.Duration(DefaultStopTimeout)
	}
	if q.LogMaxBytes == nil {
		q.LogMaxBytes = ptr(int64(DefaultLogMaxBytes))
	}
	if q.LogBackups == nil {
		q.LogBackups = ptr(DefaultLogBackups)
	}
	return q
}

// Validate returns every problem with p declared under name, each a
// sentence that names the field as the configuration file spells it
// ("programs.web.stop_timeout: must not be negative"). An empty result
// means p is valid. Validate does not look at the file system: a command
// that does not exist fails at start, not here.
func (p Program) Validate(name string) []string {
	var probs []string
	add := func(field, format string, args ...any) {
		probs = append(probs, fmt.Sprintf("programs.%s.%s: %s", name, field, fmt.Sprintf(format, args...)))
	}
	if err := validateProgramName(name); err != nil {
		probs = append(probs, fmt.Sprintf("programs.%s: %s", name, svcgate.ErrorMessage(err)))
	}

	switch {
	case strings.TrimSpace(p.Command) == "":
		add("command", "must not be empty")
	case strings.ContainsRune(p.Command, 0):
		add("command", "must not contain a NUL byte")
	}
	for i, a := range p.Args {
		if strings.ContainsRune(a, 0) {
			add(fmt.Sprintf("args[%d]", i), "must not contain a NUL byte")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.Env)) {
		switch {
		case k == "":
			add("env", "has an empty variable name")
		case strings.ContainsAny(k, "=\x00"):
			add("env."+k, "variable name must not contain '=' or a NUL byte")
		case strings.ContainsRune(p.Env[k], 0):
			add("env."+k, "value must not contain a NUL byte")
		}
	}
	switch {
	case strings.ContainsRune(p.Dir, 0):
		add("dir", "must not contain a NUL byte")
	case p.Dir != "" && !filepath.IsAbs(p.Dir):
		// The agent's own working directory is an accident of how it
		// was started, so a relative dir would mean different things
		// under systemd, the SCM and a shell.
		add("dir", "must be an absolute path, got %q", p.Dir)
	}

	switch p.Autorestart {
	case "", RestartNever, RestartOnFailure, RestartAlways:
	default:
		add("autorestart", "must be never, on_failure or always, got %q", p.Autorestart)
	}
	if s := p.StartSeconds; s != nil && (*s < 0 || math.IsNaN(*s) || math.IsInf(*s, 0)) {
		add("start_seconds", "must be a non-negative number, got %v", *s)
	}
	if p.StartRetries != nil && *p.StartRetries < 0 {
		add("start_retries", "must not be negative, got %d", *p.StartRetries)
	}
	if p.BackoffInitial < 0 {
		add("backoff_initial", "must not be negative")
	}
	if p.BackoffMax < 0 {
		add("backoff_max", "must not be negative")
	}
	if p.BackoffInitial >= 0 && p.BackoffMax > 0 {
		if d := p.WithDefaults(); d.BackoffMax < d.BackoffInitial {
			add("backoff_max", "must not be less than backoff_initial (%s < %s)", d.BackoffMax, d.BackoffInitial)
		}
	}
	if _, ok := normalizeSignal(p.StopSignal); p.StopSignal != "" && !ok {
		add("stop_signal", "unknown signal %q (want one of %s, with or without SIG)", p.StopSignal, strings.Join(signalNames, ", "))
	}
	if _, ok := normalizeSignal(p.ReloadSignal); p.ReloadSignal != "" && !ok {
		add("reload_signal", "unknown signal %q (want one of %s, with or without SIG)", p.ReloadSignal, strings.Join(signalNames, ", "))
	}
	if p.StopTimeout < 0 {
		add("stop_timeout", "must be positive")
	}
	if p.LogMaxBytes != nil && *p.LogMaxBytes < 0 {
		add("log_max_bytes", "must not be negative, got %d", *p.LogMaxBytes)
	}
	if p.LogBackups != nil && *p.LogBackups < 0 {
		add("log_backups", "must not be negative, got %d", *p.LogBackups)
	}
	return probs
}

// validateProgramName applies svcgate's name grammar and then the
// supervisor's stricter one: the name becomes a file name under the state
// directory, so only letters, digits and _ . @ - are allowed.
func validateProgramName(name string) error {
	if err := svcgate.ValidateName(name); err != nil {
		return err
	}
	for _, c := range []byte(name) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '.' || c == '@' || c == '-'
		if !ok {
			return svcgate.Errorf(svcgate.CodeInvalidName,
				"program name %q contains %q; the supervisor allows only letters, digits and _ . @ -", name, c)
		}
	}
	return nil
}

// clone returns a deep copy of p.
func (p Program) clone() Program {
	q := p
	q.Args = slices.Clone(p.Args)
	q.Env = maps.Clone(p.Env)
	q.Autostart = clonePtr(p.Autostart)
	q.StartSeconds = clonePtr(p.StartSeconds)
	q.StartRetries = clonePtr(p.StartRetries)
	q.LogMaxBytes = clonePtr(p.LogMaxBytes)
	q.LogBackups = clonePtr(p.LogBackups)
	return q
}

// equal reports whether p and q mean the same program once defaults apply.
func (p Program) equal(q Program) bool {
	return reflect.DeepEqual(normalizeEmpty(p.WithDefaults()), normalizeEmpty(q.WithDefaults()))
}

// sameExec reports whether p and q run the same process, so that a change
// between them does not need a restart to take effect.
func (p Program) sameExec(q Program) bool {
	return p.Command == q.Command && slices.Equal(p.Args, q.Args) &&
		maps.Equal(p.Env, q.Env) && p.Dir == q.Dir
}

// normalizeEmpty makes empty and nil slices and maps compare equal.
func normalizeEmpty(p Program) Program {
	if len(p.Args) == 0 {
		p.Args = nil
	}
	if len(p.Env) == 0 {
		p.Env = nil
	}
	return p
}

func (p Program) autostart() bool { return p.Autostart == nil || *p.Autostart }

func (p Program) startType() svcgate.StartType {
	switch {
	case p.Disabled:
		return svcgate.StartDisabled
	case p.autostart():
		return svcgate.StartAuto
	}
	return svcgate.StartManual
}

// startDelay is StartSeconds as a duration; p must have its defaults.
func (p Program) startDelay() time.Duration {
	return time.Duration(*p.StartSeconds * float64(time.Second))
}

// backoff returns the delay before start attempt n+1 after n failures in a
// row (n ≥ 1): backoff_initial doubling, capped at backoff_max.
func (p Program) backoff(n int) time.Duration {
	d, limit := time.Duration(p.BackoffInitial), time.Duration(p.BackoffMax)
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

func ptr[T any](v T) *T { return &v }

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	return ptr(*p)
}

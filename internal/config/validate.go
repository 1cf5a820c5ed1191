package config

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/svcgate/svcgate"
)

// Error is an invalid configuration: every problem found, so that an
// operator can fix the whole file in one pass.
type Error struct {
	// Source names the file, as given to Parse; "" when there is none.
	Source string
	// Problems are in file order; problems without a line come last.
	Problems []Problem
}

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Line is the 1-based line in the source, 0 when unknown (a default
	// value, or a Config not read from a file).
	Line int
	// Field is the path of the offending key as the file spells it
	// ("http.read_timeout", "programs.web.args[0]"); "" for problems of
	// the file as a whole, such as a syntax error.
	Field string
	// Message says what is wrong, in lower case without a final period.
	Message string
}

// Error returns one problem per line, each as "file:line: field: message",
// leaving out the parts that are not known.
func (e *Error) Error() string {
	if len(e.Problems) == 0 {
		return e.location(0) + "invalid configuration"
	}
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.location(p.Line))
		if p.Field != "" {
			b.WriteString(p.Field)
			b.WriteString(": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// location returns the "file:line: " prefix of a message.
func (e *Error) location(line int) string {
	switch {
	case e.Source != "" && line > 0:
		return fmt.Sprintf("%s:%d: ", e.Source, line)
	case e.Source != "":
		return e.Source + ": "
	case line > 0:
		return fmt.Sprintf("line %d: ", line)
	}
	return ""
}

// newError returns an *Error holding problems sorted into file order. The
// sort is stable so that problems on one line keep the order they were
// found in.
func newError(source string, problems []Problem) *Error {
	problems = slices.Clone(problems)
	slices.SortStableFunc(problems, func(a, b Problem) int {
		switch {
		case a.Line == b.Line:
			return 0
		case a.Line == 0:
			return 1
		case b.Line == 0:
			return -1
		}
		return cmp.Compare(a.Line, b.Line)
	})
	return &Error{Source: source, Problems: problems}
}

// Validate checks every field and returns an *Error listing all problems,
// or nil. For a Config from Parse or Load the problems carry the lines of
// the offending keys. Validate does not touch the file system or the
// network: whether the port is free or the state directory writable is
// found out when the agent uses them.
func (c *Config) Validate() error {
	problems := c.problems()
	if len(problems) == 0 {
		return nil
	}
	source := ""
	if c.origin != nil {
		source = c.origin.source
	}
	return newError(source, problems)
}

// problems returns every problem of c, each with the line of its field
// when c was read from a file.
func (c *Config) problems() []Problem {
	var probs []Problem
	add := func(field, format string, args ...any) {
		probs = append(probs, Problem{Line: c.line(field), Field: field, Message: fmt.Sprintf(format, args...)})
	}

	if msg := checkListen(c.Listen); msg != "" {
		add("listen", "%s", msg)
	}
	switch {
	case c.StateDir == "":
		add("state_dir", "must not be empty")
	case !filepath.IsAbs(c.StateDir):
		add("state_dir", "must be an absolute path, got %q", c.StateDir)
	}
	if !slices.Contains(backends, c.Backend) {
		add("backend", "unknown backend %q (want %s)", c.Backend, orList(backends))
	}
	if !slices.Contains(logLevels, c.Log.Level) {
		add("log.level", "unknown level %q (want %s)", c.Log.Level, orList(logLevels))
	}
	if !slices.Contains(logFormats, c.Log.Format) {
		add("log.format", "unknown format %q (want %s)", c.Log.Format, orList(logFormats))
	}

	positiveSize := func(field string, n int64) {
		if n <= 0 {
			add(field, "must be positive, got %d", n)
		}
	}
	positiveSize("http.max_body_bytes", c.HTTP.MaxBodyBytes)
	positiveSize("http.max_header_bytes", int64(c.HTTP.MaxHeaderBytes))
	// A Config built in code can hold negative durations even though
	// decoding refuses them, so they are checked here too.
	positiveTimeout := func(field string, d svcgate.Duration) {
		switch {
		case d < 0:
			add(field, "must not be negative, got %s", d)
		case d == 0:
			add(field, "must be positive")
		}
	}
	positiveTimeout("http.read_header_timeout", c.HTTP.ReadHeaderTimeout)
	positiveTimeout("http.read_timeout", c.HTTP.ReadTimeout)
	if c.HTTP.WriteTimeout < 0 {
		add("http.write_timeout", "must not be negative, got %s (0 means no timeout)", c.HTTP.WriteTimeout)
	}
	positiveTimeout("http.idle_timeout", c.HTTP.IdleTimeout)
	positiveTimeout("http.shutdown_timeout", c.HTTP.ShutdownTimeout)

	// The buffer is allocated up front; a million events is already far
	// more than any reconnecting client could need.
	const maxBuffer = 1_000_000
	if c.Events.Buffer < 1 || c.Events.Buffer > maxBuffer {
		add("events.buffer", "must be from 1 to %d, got %d", maxBuffer, c.Events.Buffer)
	}

	if len(c.Programs) > 0 && (c.Backend == "windows" || c.Backend == "systemd") {
		add("programs", "only the supervisor backend runs programs, but backend is %s", c.Backend)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Programs)) {
		for _, s := range c.Programs[name].Validate(name) {
			field, msg := splitProgramProblem(name, s)
			add(field, "%s", msg)
		}
	}
	return probs
}

// line returns the line of field's key, or of its nearest ancestor that
// was written in the file ("programs.web" for a missing
// "programs.web.command"), or 0.
func (c *Config) line(field string) int {
	if c.origin == nil {
		return 0
	}
	for f := field; f != ""; f = parentPath(f) {
		if l, ok := c.origin.lines[f]; ok {
			return l
		}
	}
	return 0
}

// parentPath strips the last element of a field path: "a.b[2]" → "a.b",
// "a.b" → "a", "a" → "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// splitProgramProblem splits one of supervisor.Program.Validate's
// sentences, "programs.web.stop_timeout: must be positive", into its field
// and message, so the problem can carry the field's line. A sentence that
// does not start with the program's path is kept whole under the program.
func splitProgramProblem(name, s string) (field, msg string) {
	prefix := "programs." + name
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return prefix, s
	}
	f, m, ok := strings.Cut(rest, ": ")
	if !ok {
		return prefix, s
	}
	return prefix + f, m
}

// checkListen returns what is wrong with a listen address, or "".
func checkListen(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Sprintf("must be host:port such as 127.0.0.1:8484, got %q", listen)
	}
	// Service names ("http") are refused: a typo in a number must not
	// silently resolve to some other port.
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port != strconv.FormatUint(n, 10) {
		return fmt.Sprintf("port must be a number from 0 to 65535, got %q", port)
	}
	if host != "" && !validHost(host) {
		return fmt.Sprintf("host %q is neither an IP address nor a host name", host)
	}
	return ""
}

// validHost reports whether h is an IP address (with an optional IPv6
// zone) or a DNS host name.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// orList renders a list of choices as "a, b or c".
func orList(choices []string) string {
	if len(choices) == 1 {
		return choices[0]
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}

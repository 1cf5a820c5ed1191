package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/authn"
	"github.com/svcgate/svcgate/internal/config"
	"github.com/svcgate/svcgate/internal/httpapi"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// env is what the program reads from its surroundings; tests pass their
// own.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// globalFlags are the flags every client verb shares.
type globalFlags struct {
	server  string
	token   string
	config  string
	output  string
	timeout time.Duration
}

// run is the whole program: it parses args and runs one verb. It returns
// the verb's error; main turns it into an exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	var g globalFlags
	root := &cobra.Command{
		Use:           "svcgate",
		Short:         "Control a host's services through an authenticated HTTP API",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		// With subcommands, cobra passes an unknown verb here as an argument.
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q; see svcgate --help", args[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetArgs(args[1:])
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", "", "agent address (default $SVCGATE_SERVER, the config's listen address, or http://127.0.0.1:8484)")
	pf.StringVar(&g.token, "token", "", "API token (default $SVCGATE_TOKEN, or the local agent's admin.token)")
	pf.StringVar(&g.config, "config", "", "configuration file (default $SVCGATE_CONFIG)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	pf.DurationVar(&g.timeout, "timeout", 0, "give up on the agent after this long (0: no limit beyond --wait)")

	root.AddCommand(
		serveCmd(e, &g),
		lsCmd(e, &g),
		statusCmd(e, &g),
		eventsCmd(e, &g),
	)
	for _, a := range svcgate.Actions {
		root.AddCommand(actionCmd(e, &g, a))
	}
	err := root.ExecuteContext(ctx)
	var s silentError
	if err != nil && !errors.As(err, &s) {
		reportError(stderr, err)
	}
	return err
}

// usageError marks errors in how the command was called.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// reportError prints err for a person: the problem code first, so that
// scripts reading stderr can match it.
func reportError(w io.Writer, err error) {
	var se *svcgate.Error
	if errors.As(err, &se) {
		fmt.Fprintf(w, "svcgate: %s: %s\n", se.Code, se.Message)
		if se.Service != nil {
			s := se.Service
			fmt.Fprintf(w, "  %s is %s%s (exit code %d)\n", s.Name, s.State, subState(*s), s.ExitCode)
		}
		if len(se.Dependents) > 0 {
			fmt.Fprintf(w, "  running dependents: %s\n", strings.Join(se.Dependents, ", "))
		}
		return
	}
	fmt.Fprintf(w, "svcgate: %v\n", err)
}

// Exit codes a script can rely on.
const (
	exitOK          = 0
	exitFailure     = 1 // anything else, including internal and backend errors
	exitUsage       = 2 // bad flags or arguments, invalid names and requests
	exitDenied      = 3 // unauthenticated or forbidden
	exitNotFound    = 4 // no such service
	exitConflict    = 5 // the service is not in a state that allows the action, or failed to start
	exitTimeout     = 6 // the target state was not reached in time
	exitUnavailable = 7 // the agent could not be reached or is not ready
)

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	var se *svcgate.Error
	if !errors.As(err, &se) {
		if isUnreachable(err) {
			return exitUnavailable
		}
		return exitFailure
	}
	switch se.Code {
	case svcgate.CodeInvalidRequest, svcgate.CodeInvalidName, svcgate.CodeInvalidWait, svcgate.CodeNotFound,
		svcgate.CodeBodyTooLarge, svcgate.CodeUnsupportedMediaType, svcgate.CodeMethodNotAllowed:
		return exitUsage
	case svcgate.CodeUnauthenticated, svcgate.CodeForbidden, svcgate.CodeProtectedService:
		return exitDenied
	case svcgate.CodeServiceNotFound:
		return exitNotFound
	case svcgate.CodeInvalidTransition, svcgate.CodeStartFailed, svcgate.CodeConflict,
		svcgate.CodeDependentsRunning, svcgate.CodeUnsupportedAction:
		return exitConflict
	case svcgate.CodeTimeout:
		return exitTimeout
	case svcgate.CodeNotReady, svcgate.CodeAuditUnavailable, svcgate.CodeRateLimited:
		return exitUnavailable
	}
	return exitFailure
}

// isUnreachable reports whether err means the agent could not be reached:
// no connection could be made, or it did not answer in time.
func isUnreachable(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// client builds the API client from flags, the environment and, for the
// local agent, its configuration and token file.
func (g *globalFlags) client(e env) (*httpapi.Client, error) {
	if g.output != "table" && g.output != "json" {
		return nil, usagef("--output must be table or json, not %q", g.output)
	}
	cfgPath := firstNonEmpty(g.config, e.getenv("SVCGATE_CONFIG"))
	var cfg *config.Config
	if cfgPath != "" {
		c, err := config.Load(cfgPath)
		if err != nil {
			return nil, err
		}
		cfg = c
	}
	server := firstNonEmpty(g.server, e.getenv("SVCGATE_SERVER"))
	if server == "" && cfg != nil {
		server = cfg.Listen
	}
	if server == "" {
		server = config.Default().Listen
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	token := firstNonEmpty(g.token, e.getenv("SVCGATE_TOKEN"))
	if token == "" {
		stateDir := config.Default().StateDir
		if cfg != nil {
			stateDir = cfg.StateDir
		}
		b, err := os.ReadFile(filepath.Join(stateDir, authn.AdminTokenFile))
		if err != nil {
			return nil, usagef("no API token: pass --token, set SVCGATE_TOKEN, or run where the local agent's %s is readable (%v)", authn.AdminTokenFile, err)
		}
		token = strings.TrimSpace(string(b))
	}
	return httpapi.NewClient(strings.TrimRight(server, "/"), token, &http.Client{Timeout: g.timeout}), nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

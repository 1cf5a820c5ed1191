package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/control"
	"github.com/svcgate/svcgate/internal/httpapi"
)

func lsCmd(e env, g *globalFlags) *cobra.Command {
	var f httpapi.Filter
	var states, startTypes string
	c := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List services with their state, pid and time of the last change",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := g.client(e)
			if err != nil {
				return err
			}
			for _, s := range splitList(states) {
				f.States = append(f.States, svcgate.State(s))
			}
			for _, s := range splitList(startTypes) {
				f.StartTypes = append(f.StartTypes, svcgate.StartType(s))
			}
			list, err := cl.ListFiltered(c.Context(), f)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(e.stdout, list.Services)
			}
			writeTable(e.stdout, list.Services, time.Now())
			return nil
		},
	}
	c.Flags().StringVar(&states, "state", "", "only services in these states (comma-separated)")
	c.Flags().StringVar(&f.Name, "name", "", "only services whose name matches this glob")
	c.Flags().StringVar(&startTypes, "start-type", "", "only services of these start types (comma-separated)")
	return c
}

func statusCmd(e env, g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status NAME...",
		Short: "Show services, queried live",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, names []string) error {
			cl, err := g.client(e)
			if err != nil {
				return err
			}
			var list []svcgate.Service
			var firstErr error
			for _, n := range names {
				s, err := cl.Get(c.Context(), n)
				if err != nil {
					reportError(e.stderr, err)
					firstErr = cmpErr(firstErr, err)
					continue
				}
				list = append(list, s)
			}
			if g.output == "json" {
				if err := writeJSON(e.stdout, list); err != nil {
					return err
				}
			} else if len(list) > 0 {
				writeTable(e.stdout, list, time.Now())
			}
			return silent(firstErr)
		},
	}
}

func actionCmd(e env, g *globalFlags, a svcgate.Action) *cobra.Command {
	var o control.Options
	var stopDependents bool
	c := &cobra.Command{
		Use:   string(a) + " NAME...",
		Short: actionHelp[a],
		Long: actionHelp[a] + `.

Each service is acted on in turn and the command waits (--wait, default 30s,
0 to not wait) until it reaches its target state. The exit code is 0 when
every service did, else that of the first failure.`,
		Args: minArgs(1),
		RunE: func(c *cobra.Command, names []string) error {
			if o.Wait < 0 || o.Wait > svcgate.WaitMax {
				return usagef("--wait must be between 0 and %s", svcgate.WaitMax)
			}
			o.StopDependents = stopDependents
			cl, err := g.client(e)
			if err != nil {
				return err
			}
			var firstErr error
			var results []control.Result
			for _, n := range names {
				res, err := doAction(c.Context(), e, cl, n, a, o)
				if err != nil {
					reportError(e.stderr, err)
					firstErr = cmpErr(firstErr, err)
					continue
				}
				results = append(results, res)
				if g.output != "json" {
					fmt.Fprintln(e.stdout, describeResult(n, a, res))
				}
			}
			if g.output == "json" {
				if err := writeJSON(e.stdout, results); err != nil {
					return err
				}
			}
			return silent(firstErr)
		},
	}
	c.Flags().DurationVar(&o.Wait, "wait", svcgate.WaitDefault, "how long to wait for the target state (0: do not wait)")
	c.Flags().BoolVar(&o.DryRun, "dry-run", false, "check and show the plan without changing anything")
	if a == svcgate.ActionStop || a == svcgate.ActionRestart {
		c.Flags().BoolVar(&stopDependents, "stop-dependents", false, "stop running services that depend on this one first")
	}
	if a == svcgate.ActionStart {
		c.Flags().StringSliceVar(&o.Args, "arg", nil, "argument passed to the service on start (repeatable; Windows)")
	}
	return c
}

var actionHelp = map[svcgate.Action]string{
	svcgate.ActionStart:    "Start services",
	svcgate.ActionStop:     "Stop services",
	svcgate.ActionRestart:  "Restart services: stop, then start",
	svcgate.ActionPause:    "Pause services",
	svcgate.ActionContinue: "Continue paused services",
	svcgate.ActionReload:   "Ask services to reload their configuration",
}

// doAction runs one action, showing a progress line on a terminal while
// the agent waits for the target state.
func doAction(ctx context.Context, e env, cl *httpapi.Client, name string, a svcgate.Action, o control.Options) (control.Result, error) {
	if o.Wait == 0 || o.DryRun || !isTerminal(e.stderr) {
		return cl.Do(ctx, name, a, o)
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		frames := []rune(`|/-\`)
		start := time.Now()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(e.stderr, "\r%c %s %s ... %.1fs", frames[i%len(frames)], actionVerb(a), name, time.Since(start).Seconds())
			select {
			case <-done:
				fmt.Fprint(e.stderr, "\r\033[K")
				return
			case <-t.C:
			}
		}
	}()
	res, err := cl.Do(ctx, name, a, o)
	close(done)
	<-stopped
	return res, err
}

func actionVerb(a svcgate.Action) string {
	switch a {
	case svcgate.ActionStop:
		return "stopping"
	case svcgate.ActionContinue:
		return "continuing"
	default:
		return strings.TrimSuffix(string(a), "e") + "ing"
	}
}

func describeResult(name string, a svcgate.Action, r control.Result) string {
	s := r.Service
	switch {
	case r.DryRun && len(r.Plan) == 0:
		return fmt.Sprintf("%s: would do nothing (%s)", name, s.State)
	case r.DryRun:
		var steps []string
		for _, p := range r.Plan {
			steps = append(steps, fmt.Sprintf("%s %s (%s → %s)", p.Action, p.Service, p.From, p.To))
		}
		return fmt.Sprintf("%s: would %s", name, strings.Join(steps, ", then "))
	case !r.Changed:
		return fmt.Sprintf("%s: already %s", name, s.State)
	case r.Pending:
		return fmt.Sprintf("%s: %s requested, now %s", name, a, s.State)
	}
	msg := fmt.Sprintf("%s: %s%s", name, s.State, subState(s))
	if s.PID != 0 {
		msg += fmt.Sprintf(" (pid %d)", s.PID)
	}
	msg += " in " + roundDuration(r.Duration)
	if len(r.Stopped) > 0 {
		msg += "; stopped first: " + strings.Join(r.Stopped, ", ")
	}
	return msg
}

func eventsCmd(e env, g *globalFlags) *cobra.Command {
	var after uint64
	c := &cobra.Command{
		Use:   "events",
		Short: "Follow state changes as they happen",
		Long: `Follow state changes as they happen, until interrupted. A dropped connection
is resumed where it left off (Last-Event-ID), so no change is missed while the
agent keeps it in its buffer; if it no longer does, a notice says so.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := g.client(e)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(e.stdout)
			err = cl.Events(c.Context(), after, func(ev svcgate.Event) error {
				if ev.Type == httpapi.EventReset {
					fmt.Fprintln(e.stderr, "svcgate: some events were missed; run svcgate ls for the current state")
					return nil
				}
				if g.output == "json" {
					return enc.Encode(ev)
				}
				fmt.Fprintln(e.stdout, describeEvent(ev))
				return nil
			})
			if c.Context().Err() != nil {
				// Interrupted by the operator: the normal way to stop.
				return nil
			}
			return err
		},
	}
	c.Flags().Uint64Var(&after, "after", 0, "replay the buffered events after this sequence number first")
	return c
}

// roundDuration prints d to the millisecond, and a sub-millisecond
// duration as such rather than as "0s".
func roundDuration(d time.Duration) string {
	if d < time.Millisecond {
		return "<1ms"
	}
	return d.Round(time.Millisecond).String()
}

func describeEvent(ev svcgate.Event) string {
	s := ev.Service
	ts := ev.Time.Local().Format("15:04:05.000")
	switch ev.Type {
	case svcgate.EventAdded:
		return fmt.Sprintf("%s #%d %s added (%s)", ts, ev.Seq, s.Name, s.State)
	case svcgate.EventRemoved:
		return fmt.Sprintf("%s #%d %s removed", ts, ev.Seq, s.Name)
	}
	line := fmt.Sprintf("%s #%d %s %s → %s%s", ts, ev.Seq, s.Name, ev.Previous, s.State, subState(s))
	if s.PID != 0 {
		line += fmt.Sprintf(" pid %d", s.PID)
	}
	if s.State.Down() && s.ExitCode != 0 {
		line += fmt.Sprintf(" exit code %d", s.ExitCode)
	}
	return line
}

func writeTable(w io.Writer, list []svcgate.Service, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPID\tSINCE\tSTART\tDESCRIPTION")
	for _, s := range list {
		pid := "-"
		if s.PID != 0 {
			pid = fmt.Sprint(s.PID)
		}
		state := string(s.State) + subState(s)
		if s.State == svcgate.StateFailed && s.ExitCode != 0 {
			state += fmt.Sprintf(" exit %d", s.ExitCode)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, state, pid, age(s.Since, now), s.StartType, oneLine(s.Description))
	}
	tw.Flush()
}

func subState(s svcgate.Service) string {
	if s.SubState == "" || s.SubState == string(s.State) {
		return ""
	}
	return " (" + s.SubState + ")"
}

// age prints how long ago t was, in the one or two largest units.
func age(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func minArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s needs at least %d argument(s); see svcgate %s --help", c.Name(), n, c.Name())
		}
		return nil
	}
}

// cmpErr keeps the first error of several.
func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// silentError carries an exit status for errors already reported.
type silentError struct{ err error }

func (s silentError) Error() string { return s.err.Error() }
func (s silentError) Unwrap() error { return s.err }

// silent marks err as already printed, keeping its exit code.
func silent(err error) error {
	if err == nil {
		return nil
	}
	return silentError{err}
}

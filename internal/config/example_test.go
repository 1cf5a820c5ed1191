package config_test

import (
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/svcgate/svcgate/internal/backend/supervisor"
	"github.com/svcgate/svcgate/internal/config"
)

// TestQuickstartExample keeps examples/quickstart.yaml, the file the README
// tells a newcomer to run, valid and doing what its comments promise.
func TestQuickstartExample(t *testing.T) {
	c, err := config.Load(filepath.Join("..", "..", "examples", "quickstart.yaml"))
	if err != nil {
		t.Fatalf("Load:\n%v", err)
	}

	t.Run("runs the supervisor on loopback with a state dir under the working directory", func(t *testing.T) {
		if c.Backend != "supervisor" || c.Listen != "127.0.0.1:8484" || !c.Loopback() {
			t.Errorf("backend %q listen %q, want supervisor on 127.0.0.1:8484", c.Backend, c.Listen)
		}
		if want := filepath.Join(mustGetwd(t), "state"); c.StateDir != want {
			t.Errorf("state_dir = %q, want %q", c.StateDir, want)
		}
	})

	t.Run("declares web, worker and flaky", func(t *testing.T) {
		var names []string
		for n := range c.Programs {
			names = append(names, n)
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"flaky", "web", "worker"}) {
			t.Fatalf("programs = %v", names)
		}
	})

	t.Run("web waits for an operator, worker and flaky start with the agent", func(t *testing.T) {
		for name, want := range map[string]bool{"web": false, "worker": true, "flaky": true} {
			p := c.Programs[name].WithDefaults()
			if *p.Autostart != want {
				t.Errorf("%s autostart = %v, want %v", name, *p.Autostart, want)
			}
		}
	})

	t.Run("flaky fails before it counts as started, so the retry limit shows", func(t *testing.T) {
		p := c.Programs["flaky"].WithDefaults()
		if p.Autorestart != supervisor.RestartOnFailure || *p.StartSeconds <= 3 || *p.StartRetries < 1 {
			t.Errorf("flaky: autorestart %s, start_seconds %v, start_retries %d; want on_failure, > 3, >= 1",
				p.Autorestart, *p.StartSeconds, *p.StartRetries)
		}
	})

	t.Run("every script is valid sh", func(t *testing.T) {
		sh, err := exec.LookPath("sh")
		if err != nil {
			t.Skip("no sh on this machine")
		}
		for name, p := range c.Programs {
			if p.Command != "/bin/sh" || len(p.Args) != 2 || p.Args[0] != "-c" {
				t.Errorf("%s: want /bin/sh -c SCRIPT, got %s %q", name, p.Command, p.Args)
				continue
			}
			// -n reads the script without running it.
			if out, err := exec.Command(sh, "-n", "-c", p.Args[1]).CombinedOutput(); err != nil {
				t.Errorf("%s: sh -n: %v\n%s", name, err, out)
			}
		}
	})
}

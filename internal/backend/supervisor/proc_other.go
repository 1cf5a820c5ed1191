//go:build !unix && !windows

package supervisor

import (
	"errors"
	"os"
	"os/exec"
)

// On systems that are neither Unix nor Windows the supervisor can list and
// configure programs but not run them.
const (
	canPause  = false
	canSignal = false
)

var errNoProcesses = errors.New("the supervisor cannot run processes on this operating system")

type proc struct {
	cmd *exec.Cmd
	pid int
}

func startProc(*exec.Cmd) (*proc, error) { return nil, errNoProcesses }

func (p *proc) signal(string) error { return errNoProcesses }
func (p *proc) kill() error         { return errNoProcesses }
func (p *proc) pause() error        { return errNoProcesses }
func (p *proc) resume() error       { return errNoProcesses }
func (p *proc) cleanup()            {}

func exitInfo(ps *os.ProcessState) exitStatus {
	if ps == nil {
		return exitStatus{code: -1, text: "unknown exit status"}
	}
	return exitStatus{code: ps.ExitCode(), text: ps.String()}
}

// errnoOf finds no OS error number on these systems.
func errnoOf(error) string { return "" }

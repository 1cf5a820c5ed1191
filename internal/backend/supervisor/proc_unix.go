//go:build unix

package supervisor

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// canPause and canSignal say what the OS lets the supervisor do to a
// running program: Unix has SIGSTOP/SIGCONT and arbitrary signals.
const (
	canPause  = true
	canSignal = true
)

var unixSignals = map[string]syscall.Signal{
	"TERM": syscall.SIGTERM,
	"INT":  syscall.SIGINT,
	"HUP":  syscall.SIGHUP,
	"QUIT": syscall.SIGQUIT,
	"KILL": syscall.SIGKILL,
	"USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

// proc is one spawned program and the process group it leads.
type proc struct {
	cmd *exec.Cmd
	pid int
}

// startProc starts cmd as the leader of a new process group, so that a
// signal to -pid reaches every process the program forks, however deep.
// A daemon that calls setsid(2) leaves the group and escapes; only cgroups
// could catch it, and those are systemd's job.
func startProc(cmd *exec.Cmd) (*proc, error) {
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &proc{cmd: cmd, pid: cmd.Process.Pid}, nil
}

// signal sends the named signal to the whole process group.
func (p *proc) signal(name string) error {
	sig, ok := unixSignals[name]
	if !ok {
		return errors.New("unknown signal " + name)
	}
	return p.group(sig)
}

func (p *proc) kill() error   { return p.group(syscall.SIGKILL) }
func (p *proc) pause() error  { return p.group(syscall.SIGSTOP) }
func (p *proc) resume() error { return p.group(syscall.SIGCONT) }

// cleanup kills whatever is left of the group once its leader has exited:
// a program's background children must not outlive it, as with systemd's
// KillMode=control-group. POSIX does not reuse a pid as long as a process
// group with that id exists, so -pid cannot hit an unrelated group here.
func (p *proc) cleanup() { _ = p.group(syscall.SIGKILL) }

// group signals the process group; a group that no longer exists is not an
// error, since the exit is reported separately by Wait.
func (p *proc) group(sig syscall.Signal) error {
	err := syscall.Kill(-p.pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	if err != nil {
		return os.NewSyscallError("kill", err)
	}
	return nil
}

// exitInfo describes how a process ended. A death by signal is reported
// as 128+signal, the shell's convention, so that exit_code is never
// ambiguous with a real status in 0..127.
func exitInfo(ps *os.ProcessState) exitStatus {
	if ps == nil {
		return exitStatus{code: -1, text: "unknown exit status"}
	}
	st := exitStatus{code: ps.ExitCode(), text: ps.String()}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		st.code = 128 + int(ws.Signal())
		st.signaled = true
	}
	return st
}

// errnoOf returns the OS error number in err's chain, for Error.OSError.
func errnoOf(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return strconv.Itoa(int(errno))
	}
	return ""
}

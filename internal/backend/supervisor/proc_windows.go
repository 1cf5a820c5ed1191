package supervisor

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Windows has neither SIGSTOP nor arbitrary signals: pause, continue and
// reload are unsupported_action there.
const (
	canPause  = false
	canSignal = false
)

// proc is one spawned program and the job object that holds its process
// tree: terminating the job kills every descendant, the Windows counterpart
// of signalling a Unix process group.
type proc struct {
	cmd *exec.Cmd
	pid int
	job windows.Handle
}

var errNoSignals = errors.New("signals are not supported on Windows")

// startProc starts cmd in a new console process group and a job object
// that kills the whole tree when its last handle closes, so even a crash of
// the agent leaves no program behind. os/exec cannot create the process
// suspended, so a child that spawns a grandchild in its first instants
// could place it before the assignment; the window is microseconds.
func startProc(cmd *exec.Cmd) (*proc, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return nil, os.NewSyscallError("CreateJobObject", err)
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{
		BasicLimitInformation: windows.JOBOBJECT_BASIC_LIMIT_INFORMATION{
			LimitFlags: windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
		},
	}
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return nil, os.NewSyscallError("SetInformationJobObject", err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.CREATE_NEW_PROCESS_GROUP}
	if err := cmd.Start(); err != nil {
		windows.CloseHandle(job)
		return nil, err
	}
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, job: job}
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, uint32(p.pid))
	if err == nil {
		err = windows.AssignProcessToJobObject(job, h)
		windows.CloseHandle(h)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		windows.CloseHandle(job)
		return nil, os.NewSyscallError("AssignProcessToJobObject", err)
	}
	return p, nil
}

// signal asks the program to stop. Windows knows no signals: anything but
// KILL becomes a CTRL_BREAK to the program's console process group, which
// only reaches it when the agent shares a console with it (not when the
// agent runs as a service); when it cannot be delivered the job is
// terminated at once rather than waiting stop_timeout for nothing.
func (p *proc) signal(name string) error {
	if name != "KILL" && windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(p.pid)) == nil {
		return nil
	}
	return p.kill()
}

func (p *proc) kill() error {
	if err := windows.TerminateJobObject(p.job, 1); err != nil {
		return os.NewSyscallError("TerminateJobObject", err)
	}
	return nil
}

func (p *proc) pause() error  { return errNoSignals }
func (p *proc) resume() error { return errNoSignals }

// cleanup kills what is left of the tree and releases the job.
func (p *proc) cleanup() {
	_ = windows.TerminateJobObject(p.job, 1)
	_ = windows.CloseHandle(p.job)
}

func exitInfo(ps *os.ProcessState) exitStatus {
	if ps == nil {
		return exitStatus{code: -1, text: "unknown exit status"}
	}
	return exitStatus{code: ps.ExitCode(), text: ps.String()}
}

// errnoOf returns the OS error number in err's chain, for Error.OSError.
func errnoOf(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return strconv.Itoa(int(errno))
	}
	return ""
}

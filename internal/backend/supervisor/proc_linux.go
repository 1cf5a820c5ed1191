package supervisor

import "syscall"

// sysProcAttr puts the child in its own process group and, as a safety net
// for a crash of the agent, asks the kernel to SIGKILL it when the agent
// dies. Pdeathsig fires when the forking OS thread exits, not the process
// (golang/go#27505); the Go runtime does not retire threads that have not
// been locked, so in practice it fires with the agent.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

//go:build unix && !linux

package supervisor

import "syscall"

// sysProcAttr puts the child in its own process group. These systems have
// no Pdeathsig: children of a crashed agent survive it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// logPath is where the named stream ("out" or "err") of a program is kept.
func logPath(stateDir, name, stream string) string {
	return filepath.Join(stateDir, "logs", name+"."+stream+".log")
}

// rotatingFile is an append-only log file that rotates by size, keeping
// backups path.1 (newest) … path.N. It is shared by the output copiers of a
// program's successive processes, hence the mutex.
type rotatingFile struct {
	path string
	log  *slog.Logger

	mu       sync.Mutex
	maxBytes int64 // 0: never rotate
	backups  int
	f        *os.File
	size     int64
	broken   bool // a write error was logged; stay quiet until one succeeds
}

func newRotatingFile(path string, log *slog.Logger) *rotatingFile {
	return &rotatingFile{path: path, log: log}
}

// setLimits changes the rotation bounds; they apply from the next write.
func (w *rotatingFile) setLimits(maxBytes int64, backups int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.maxBytes, w.backups = maxBytes, backups
}

// Write appends p, rotating whenever the file would grow past its limit.
// It rotates at the last line boundary that fits, so lines are not split
// between files unless one is longer than the whole limit. Write never
// fails: the copier must keep draining the pipe whatever the disk does, or
// the program would block on a full pipe; errors are logged once.
func (w *rotatingFile) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		if w.f == nil {
			if err := w.open(); err != nil {
				w.fail(err)
				return n, nil
			}
		}
		if w.maxBytes <= 0 || w.size+int64(len(p)) <= w.maxBytes {
			w.write(p)
			break
		}
		// room is negative when the file is already over the limit (the
		// limit was lowered).
		room := max(0, min(w.maxBytes-w.size, int64(len(p))))
		cut := bytes.LastIndexByte(p[:room], '\n') + 1
		if cut == 0 && w.size == 0 {
			cut = int(room) // one line longer than the limit: split it
		}
		if cut > 0 {
			w.write(p[:cut])
			p = p[cut:]
		}
		if err := w.rotate(); err != nil {
			w.fail(err)
			return n, nil
		}
	}
	return n, nil
}

func (w *rotatingFile) write(p []byte) {
	m, err := w.f.Write(p)
	w.size += int64(m)
	if err != nil {
		w.fail(err)
		return
	}
	w.broken = false
}

func (w *rotatingFile) fail(err error) {
	if !w.broken {
		w.log.Error("cannot write program output; dropping it", "file", w.path, "err", err)
	}
	w.broken = true
}

func (w *rotatingFile) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// rotate shifts path.i to path.i+1, dropping the oldest, and starts a new
// file; with no backups it starts the file over.
func (w *rotatingFile) rotate() error {
	w.f.Close()
	w.f = nil
	if w.backups == 0 {
		return os.Truncate(w.path, 0)
	}
	for i := w.backups - 1; i >= 1; i-- {
		err := os.Rename(backupPath(w.path, i), backupPath(w.path, i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return os.Rename(w.path, backupPath(w.path, 1))
}

// Close closes the current file; a later Write reopens it.
func (w *rotatingFile) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

func backupPath(path string, i int) string { return fmt.Sprintf("%s.%d", path, i) }

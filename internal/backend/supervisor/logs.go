package supervisor

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/svcgate/svcgate"
)

// followInterval is how often Follow looks for new output. Polling keeps
// it portable (no inotify on Windows or macOS) and costs one read per
// stream per tick.
const followInterval = 100 * time.Millisecond

// Logs returns the captured output of a program, stdout and stderr lines
// together, oldest first, and with opts.Follow keeps the channel open for
// new lines, across rotations, until ctx ends.
//
// The files hold raw output, so a line has no time of its own: history
// lines carry the modification time of the file they come from, followed
// lines the time they were read. Hence lines of the two streams are
// ordered by file, not interleaved line by line, and opts.Since selects
// whole files (those written at or after Since). Logs works before Run
// and for a stopped program. It fails with invalid_name,
// service_not_found and invalid_request (a negative Tail).
func (b *Backend) Logs(ctx context.Context, name string, opts svcgate.LogOptions) (<-chan svcgate.LogLine, error) {
	if _, err := b.lookup(name); err != nil {
		return nil, err
	}
	if opts.Tail < 0 {
		return nil, svcgate.Errorf(svcgate.CodeInvalidRequest, "tail must not be negative")
	}
	out := make(chan svcgate.LogLine, 256)
	go func() {
		defer close(out)
		r := logReader{b: b, name: name, opts: opts, out: out}
		r.run(ctx)
	}()
	return out, nil
}

type logReader struct {
	b    *Backend
	name string
	opts svcgate.LogOptions
	out  chan<- svcgate.LogLine
}

// logFile is one file of history: a backup or the current file.
type logFile struct {
	stream string
	path   string
	index  int // backup number; 0 for the current file
	mtime  time.Time
}

func (r *logReader) run(ctx context.Context) {
	streams := []struct{ name, path string }{
		{"stdout", logPath(r.b.stateDir, r.name, "out")},
		{"stderr", logPath(r.b.stateDir, r.name, "err")},
	}
	// Open the current files before reading anything, so that following
	// resumes exactly where the history ends.
	var followers []*follower
	var files []logFile
	for _, s := range streams {
		fl := &follower{stream: s.name, path: s.path}
		if f, err := os.Open(s.path); err == nil {
			fl.f = f
			if fi, err := f.Stat(); err == nil {
				files = append(files, logFile{stream: s.name, path: s.path, mtime: fi.ModTime()})
			}
		}
		defer fl.close()
		followers = append(followers, fl)
		files = append(files, r.backups(s.name, s.path)...)
	}
	// Oldest first: by modification time; at equal times older backups
	// (higher numbers) first and the current file (0) last.
	slices.SortStableFunc(files, func(x, y logFile) int {
		if c := x.mtime.Compare(y.mtime); c != 0 {
			return c
		}
		return cmp.Compare(y.index, x.index)
	})

	var tail []svcgate.LogLine // ring of the last Tail lines
	emit := func(l svcgate.LogLine) bool {
		if r.opts.Tail == 0 {
			return r.send(ctx, l)
		}
		if len(tail) == r.opts.Tail {
			tail = append(tail[:0], tail[1:]...)
		}
		tail = append(tail, l)
		return true
	}
	for _, lf := range files {
		if !r.opts.Since.IsZero() && lf.mtime.Before(r.opts.Since) {
			continue
		}
		var fl *follower
		if lf.index == 0 {
			fl = followers[slices.IndexFunc(followers, func(f *follower) bool { return f.stream == lf.stream })]
		}
		if !r.readHistory(lf, fl, emit) {
			return
		}
	}
	for _, l := range tail {
		if !r.send(ctx, l) {
			return
		}
	}
	if !r.opts.Follow {
		return
	}

	t := time.NewTicker(followInterval)
	defer t.Stop()
	for {
		for _, fl := range followers {
			if !fl.poll(func(text string) bool {
				return r.send(ctx, svcgate.LogLine{Time: r.b.now(), Stream: fl.stream, Text: text})
			}) {
				return
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// backups lists path.1 … path.N, whatever N the program has (it may have
// changed since they were written).
func (r *logReader) backups(stream, path string) []logFile {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil
	}
	prefix := filepath.Base(path) + "."
	var out []logFile
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		i, err := strconv.Atoi(n)
		if err != nil || i < 1 {
			continue
		}
		if fi, err := e.Info(); err == nil {
			out = append(out, logFile{stream: stream, path: filepath.Join(filepath.Dir(path), e.Name()), index: i, mtime: fi.ModTime()})
		}
	}
	return out
}

// readHistory emits the lines of lf. The current file is read through the
// follower's descriptor, and with Follow a last line without its newline
// is left to the follower, which will see the rest of it.
func (r *logReader) readHistory(lf logFile, fl *follower, emit func(svcgate.LogLine) bool) bool {
	var rd io.Reader
	if fl != nil {
		if fl.f == nil {
			return true
		}
		rd = fl.f
	} else {
		f, err := os.Open(lf.path)
		if err != nil {
			return true // rotated away since it was listed
		}
		defer f.Close()
		rd = f
	}
	br := bufio.NewReaderSize(rd, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if !emit(svcgate.LogLine{Time: lf.mtime, Stream: lf.stream, Text: trimEOL(line)}) {
				return false
			}
		} else if len(line) > 0 {
			if fl != nil && r.opts.Follow {
				fl.pending = append(fl.pending, line...)
			} else if !emit(svcgate.LogLine{Time: lf.mtime, Stream: lf.stream, Text: trimEOL(line)}) {
				return false
			}
		}
		if err != nil {
			return true
		}
	}
}

func (r *logReader) send(ctx context.Context, l svcgate.LogLine) bool {
	if !r.opts.Since.IsZero() && l.Time.Before(r.opts.Since) {
		return true
	}
	select {
	case r.out <- l:
		return true
	case <-ctx.Done():
		return false
	}
}

// follower tails one stream's current file, reopening it when the writer
// rotates it away and starting over when it is truncated.
type follower struct {
	stream  string
	path    string
	f       *os.File
	pending []byte // a line whose newline has not been written yet
}

// poll emits the complete lines written since the last poll; it returns
// false when emit does (the consumer is gone).
func (fl *follower) poll(emit func(string) bool) bool {
	buf := make([]byte, 32<<10)
	for range 2 { // the old file's tail, then the new file after a rotation
		if fl.f == nil {
			f, err := os.Open(fl.path)
			if err != nil {
				return true // not written yet
			}
			fl.f = f
		}
		for {
			n, err := fl.f.Read(buf)
			fl.pending = append(fl.pending, buf[:n]...)
			for {
				i := bytes.IndexByte(fl.pending, '\n')
				if i < 0 {
					break
				}
				if !emit(trimEOL(fl.pending[:i+1])) {
					return false
				}
				fl.pending = fl.pending[i+1:]
			}
			if err != nil || n == 0 {
				break
			}
		}
		cur, err1 := fl.f.Stat()
		now, err2 := os.Stat(fl.path)
		switch {
		case err1 != nil:
			return true
		case err2 == nil && !os.SameFile(cur, now), errors.Is(err2, os.ErrNotExist):
			// Rotated: the old file is drained; what is left of a line
			// stays there. Files rotated since are newer than it.
			if len(fl.pending) > 0 && !emit(trimEOL(fl.pending)) {
				return false
			}
			fl.pending = nil
			if !fl.readRotated(cur, emit) {
				return false
			}
			fl.close()
			continue
		case err2 == nil:
			if off, err := fl.f.Seek(0, io.SeekCurrent); err == nil && now.Size() < off {
				fl.f.Seek(0, io.SeekStart) // truncated (log_backups 0)
				fl.pending = nil
			}
		}
		return true
	}
	return true
}

// readRotated emits the backups newer than the file old, which the
// writer rotated away: when several rotations happen between two polls,
// old is now path.k and path.k-1 … path.1 hold what came after it. If old
// is gone altogether every backup is newer than it.
func (fl *follower) readRotated(old os.FileInfo, emit func(string) bool) bool {
	k := 1
	for ; ; k++ {
		fi, err := os.Stat(backupPath(fl.path, k))
		if err != nil {
			break // past the last backup: old was dropped
		}
		if os.SameFile(fi, old) {
			break
		}
	}
	for i := k - 1; i >= 1; i-- {
		data, err := os.ReadFile(backupPath(fl.path, i))
		if err != nil {
			continue
		}
		for line := range bytes.Lines(data) {
			if !emit(trimEOL(line)) {
				return false
			}
		}
	}
	return true
}

func (fl *follower) close() {
	if fl.f != nil {
		fl.f.Close()
		fl.f = nil
	}
}

func trimEOL(b []byte) string {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return string(bytes.TrimSuffix(b, []byte("\r")))
}

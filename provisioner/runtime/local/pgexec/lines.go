package pgexec

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
)

// progressLine matches pg_basebackup's --progress report, e.g.
// "  1234/22433 kB (5%), 0/1 tablespace (…)".
var progressLine = regexp.MustCompile(`^\s*(\d+)/(\d+) kB \(\d+%\)`)

// parseProgress returns the bytes done and expected in a --progress line.
func parseProgress(line string) (done, total int64, ok bool) {
	m := progressLine.FindStringSubmatch(line)
	if m == nil {
		return 0, 0, false
	}
	d, err1 := strconv.ParseInt(m[1], 10, 64)
	t, err2 := strconv.ParseInt(m[2], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return d * 1024, t * 1024, true
}

// ProgressFunc turns a pg_basebackup Progress callback (nil: none) into a
// line handler for LineWriter that reports --progress lines and says which
// lines it took.
func ProgressFunc(report func(done, total int64)) func(string) bool {
	return func(line string) bool {
		done, total, ok := parseProgress(line)
		if ok && report != nil {
			report(done, total)
		}
		return ok
	}
}

// logTailLines bounds what a LineWriter keeps of a program's output.
const logTailLines = 20

// LineWriter splits what a program writes into lines (at line feeds and
// carriage returns), hands each line to its handler, and keeps the last
// lines the handler did not take, for messages. Write must not be called
// concurrently: exec calls it from one goroutine at a time when Stdout and
// Stderr are the same writer, and stdcopy from one goroutine.
type LineWriter struct {
	onLine func(string) bool
	buf    []byte
	tail   []string
}

// NewLineWriter returns a LineWriter that hands each line to onLine (nil:
// it takes none).
func NewLineWriter(onLine func(string) bool) *LineWriter {
	return &LineWriter{onLine: onLine}
}

// Write splits p, and what came before it, into lines.
func (w *LineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexAny(w.buf, "\r\n")
		if i < 0 {
			return len(p), nil
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// Flush hands on the last line when the output did not end with a line
// break; call it once the program is done.
func (w *LineWriter) Flush() {
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}

// Tail returns the last lines the handler did not take, trimmed, one a
// line.
func (w *LineWriter) Tail() string { return strings.Join(w.tail, "\n") }

func (w *LineWriter) line(l string) {
	if strings.TrimSpace(l) == "" || (w.onLine != nil && w.onLine(l)) {
		return
	}
	w.tail = append(w.tail, strings.TrimSpace(l))
	if len(w.tail) > logTailLines {
		w.tail = w.tail[len(w.tail)-logTailLines:]
	}
}

package runtimetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"pgdeck/provisioner/runtime"
)

// testStream checks Stream: a dump larger than any buffer comes out whole
// and byte for byte what the server holds, a script streamed in runs, and a
// failing command's error carries its standard error.
func testStream(t *testing.T, rt runtime.Runtime, port int) {
	ctx := t.Context()
	id := primary("suite-stream")
	cleanupRemove(t, rt, id)

	if err := rt.Stream(ctx, id, nil, io.Discard, "psql", "-c", "select 1"); !errors.Is(err, runtime.ErrMissing) {
		t.Fatalf("stream in a missing instance: error = %v, want ErrMissing", err)
	}
	if err := rt.Create(ctx, runtime.Spec{ID: id, Port: port}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := rt.Start(ctx, id); err != nil {
		t.Fatalf("start: %v", err)
	}

	// In: 20,000 rows through psql's standard input.
	var script strings.Builder
	script.WriteString("create table t (n int, s text);\ncopy t from stdin;\n")
	for i := range 20000 {
		fmt.Fprintf(&script, "%d\trow %d %s\n", i, i, strings.Repeat("x", 100))
	}
	script.WriteString("\\.\n")
	if err := rt.Stream(ctx, id, strings.NewReader(script.String()), io.Discard,
		"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"); err != nil {
		t.Fatalf("stream a script in: %v", err)
	}
	if got := psql(t, rt, id, "select count(*) from t"); got != "20000" {
		t.Fatalf("rows after streaming the script in = %s, want 20000", got)
	}

	// Out: the table as COPY text, compared with the server's own hash.
	h := sha256.New()
	var n countWriter
	if err := rt.Stream(ctx, id, nil, io.MultiWriter(h, &n),
		"psql", "-X", "-d", "postgres", "-c", "copy (select * from t order by n) to stdout"); err != nil {
		t.Fatalf("stream out: %v", err)
	}
	want := psql(t, rt, id, "select encode(sha256(convert_to(string_agg(n || E'\\t' || s || E'\\n', '' order by n), 'UTF8')), 'hex') from t")
	if got := fmt.Sprintf("%x", h.Sum(nil)); got != want || n < 2_000_000 {
		t.Fatalf("streamed %d bytes hashing %s, want over 2 MB hashing %s", n, got, want)
	}

	// A failing command: its standard error is in the error.
	var out bytes.Buffer
	err := rt.Stream(ctx, id, nil, &out, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", "select * from no_such_table")
	if err == nil || !strings.Contains(err.Error(), `relation "no_such_table" does not exist`) {
		t.Fatalf("failing stream: error = %v, want psql's message", err)
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

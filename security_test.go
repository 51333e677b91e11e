package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"pgdeck/internal/testkit"
)

// TestServerAgainstAnonymousClients runs the real binary and does what an
// anonymous client can do to it: large uploads, a flood of parallel wrong
// logins, a body sent a byte at a time, an idle keep-alive connection.
//
// Not parallel: it loads the machine (50 MB uploads, a flood of argon2id
// hashes) and the other real-cluster tests of this package wait for
// processes to exit.
func TestServerAgainstAnonymousClients(t *testing.T) {
	b := newCrashBox(t, buildPgdeck(t))
	tmp := t.TempDir()
	metricsAddr := testkit.FreeAddr(t)
	b.env = append(b.env, "TMPDIR="+tmp, "PGDECK_READ_TIMEOUT=2s", "PGDECK_IDLE_TIMEOUT=2s", "PGDECK_METRICS_ADDR="+metricsAddr)
	b.start()
	base := "http://" + b.addr
	if !strings.Contains(b.logs.String(), "setup_code=") {
		t.Errorf("a fresh pgdeck prints no setup code:\n%s", b.logs)
	}
	b.cli(cliPassword+"\n", "user", "add", "--email", "ada@example.com", "--role", "owner")

	t.Run("uploads leave nothing in the temp folder", func(t *testing.T) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		fw, _ := w.CreateFormFile("file", "big.bin")
		fw.Write(bytes.Repeat([]byte("A"), 50<<20))
		w.Close()
		for _, path := range []string{"/login", "/no-such-page"} {
			for _, chunked := range []bool{false, true} {
				var body io.Reader = bytes.NewReader(buf.Bytes())
				if chunked {
					body = io.MultiReader(body) // no length: sent chunked
				}
				res, err := http.Post(base+path, w.FormDataContentType(), body)
				if err != nil {
					t.Errorf("POST %s (chunked %v): %v", path, chunked, err)
					continue
				}
				res.Body.Close()
				if res.StatusCode < 400 || res.StatusCode > 499 {
					t.Errorf("POST %s (chunked %v): %d, want 4xx", path, chunked, res.StatusCode)
				}
			}
		}
		left, _ := filepath.Glob(filepath.Join(tmp, "*"))
		if len(left) > 0 {
			t.Errorf("uploads left %v in TMPDIR", left)
		}
	})

	t.Run("parallel wrong logins", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := client.Get(base + "/login")
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := goquery.NewDocumentFromReader(res.Body)
		res.Body.Close()
		token, _ := doc.Find(`input[name="_csrf"]`).Attr("value")
		codes := make([]int, 30)
		var wg sync.WaitGroup
		for i := range codes {
			wg.Go(func() {
				res, err := client.PostForm(base+"/login", url.Values{"_csrf": {token}, "email": {"ada@example.com"}, "password": {fmt.Sprint("wrong ", i)}})
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				codes[i] = res.StatusCode
			})
		}
		wg.Wait()
		count := map[int]int{}
		for _, c := range codes {
			count[c]++
		}
		if count[http.StatusUnauthorized] > 5 || count[http.StatusUnauthorized]+count[http.StatusTooManyRequests]+count[http.StatusServiceUnavailable] != 30 {
			t.Errorf("30 parallel wrong logins answered %v, want at most 5 × 401 and the rest 429 (or 503)", count)
		}
		b.mu.Lock()
		pid := b.cmd.Process.Pid
		b.mu.Unlock()
		status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
				// Each argon2id hash takes 64 MiB; 30 at once took 2 GB.
				if kb == 0 || kb > 768<<10 {
					t.Errorf("peak RSS of pgdeck = %d kB, want under 768 MiB", kb)
				}
			}
		}
	})

	t.Run("a body sent a byte at a time is cut off", func(t *testing.T) {
		conn, err := net.Dial("tcp", b.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		const size = 100000
		fmt.Fprintf(conn, "POST /login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", b.addr, size)
		cut := make(chan struct{})
		go func() { io.Copy(io.Discard, conn); close(cut) }()
		sent := 0
		guard := time.After(2 * time.Minute)
	send:
		for sent < size {
			select {
			case <-cut:
				break send
			case <-guard:
				t.Fatalf("pgdeck still reads a slow body after 2 min with PGDECK_READ_TIMEOUT=2s (%d bytes sent)", sent)
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := conn.Write([]byte("a")); err != nil {
				break
			}
			sent++
		}
		if sent >= size {
			t.Errorf("pgdeck read the whole slow body")
		}
	})

	t.Run("an idle keep-alive connection is closed", func(t *testing.T) {
		conn, err := net.Dial("tcp", b.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", b.addr)
		r := bufio.NewReader(conn)
		res, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.Close {
			t.Fatal("the server did not keep the connection alive at all")
		}
		conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
		if _, err := r.ReadByte(); err != io.EOF {
			t.Errorf("idle keep-alive connection: read returned %v, want EOF (closed by pgdeck)", err)
		}
	})

	t.Run("metrics on their own address", func(t *testing.T) {
		res, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "pgdeck_") {
			t.Errorf("GET /metrics on PGDECK_METRICS_ADDR: %d", res.StatusCode)
		}
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err = noFollow.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Error("/metrics is also served on the main address")
		}
	})
}

//go:build odoo

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"

	"pgdeck/internal/testkit"
)

// odooPoolEnv is an environment as the API shows it, with its PgBouncer.
type odooPoolEnv struct {
	odooEnv
	Pooler *struct {
		Status string `json:"status"`
		Port   *int   `json:"port"`
		Reason string `json:"reason"`
	} `json:"pooler"`
}

// enablePgBouncer saves PgBouncer settings (pool mode and size) through the
// API, applies them with a redeploy and waits until the monitor shows the
// pooler running; it returns the environment as the API then shows it.
func (b *odooBox) enablePgBouncer(name, mode string, poolSize int) odooPoolEnv {
	b.t.Helper()
	var saved struct {
		PgBouncer struct {
			Enabled  bool   `json:"enabled"`
			PoolMode string `json:"pool_mode"`
			PoolSize int    `json:"pool_size"`
		} `json:"pgbouncer"`
	}
	body := fmt.Sprintf(`{"pgbouncer": {"enabled": true, "pool_mode": %q, "pool_size": %d}}`, mode, poolSize)
	if code := b.api(http.MethodPut, "/api/v1/environments/"+name+"/database/settings", b.token, body, &saved); code != http.StatusOK {
		b.t.Fatalf("PUT the PgBouncer settings of %s: %d %+v", name, code, saved)
	}
	if p := saved.PgBouncer; !p.Enabled || p.PoolMode != mode || p.PoolSize != poolSize {
		b.t.Fatalf("PUT answered PgBouncer settings %+v, want enabled, %s, pool size %d", p, mode, poolSize)
	}
	b.action(name, "redeploy")
	var e odooPoolEnv
	testkit.Eventually(b.t, name+"'s pooler shows running", 30*time.Second, func() (bool, string) {
		e = odooPoolEnv{}
		if code := b.api(http.MethodGet, "/api/v1/environments/"+name, b.token, "", &e); code != http.StatusOK {
			return false, fmt.Sprintf("GET: %d", code)
		}
		if e.Pooler == nil {
			return false, "no pooler in the answer"
		}
		return e.Pooler.Status == "running" && e.Pooler.Port != nil, fmt.Sprintf("%+v", *e.Pooler)
	})
	return e
}

// moduleState reads a module's state from ir_module_module ("" when the
// module is not listed).
func moduleState(t *testing.T, conn *pgx.Conn, module string) string {
	t.Helper()
	var state string
	err := conn.QueryRow(t.Context(), "SELECT state FROM ir_module_module WHERE name = $1", module).Scan(&state)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("ir_module_module %s: %v", module, err)
	}
	return state
}

// odooWebsocketVersion reads the websocket worker version the Odoo source
// expects (WebsocketConnectionHandler._VERSION): Odoo closes a connection
// that names another one.
func odooWebsocketVersion(t *testing.T, src string) string {
	t.Helper()
	py := readFile(filepath.Join(src, "odoo", "addons", "bus", "websocket.py"))
	m := regexp.MustCompile(`(?m)^\s*_VERSION = "([^"]+)"`).FindStringSubmatch(py)
	if m == nil {
		t.Fatalf("no _VERSION in %s/odoo/addons/bus/websocket.py", src)
	}
	return m[1]
}

// busNotification is one notification Odoo's websocket sends (bus.bus._poll).
type busNotification struct {
	ID      int64 `json:"id"`
	Message struct {
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
	} `json:"message"`
}

// odooWebsocket is a websocket to Odoo's /websocket, its notifications
// read into a channel.
type odooWebsocket struct {
	conn   *websocket.Conn
	notifs chan busNotification
	done   chan error
}

// OpenWebsocket opens /websocket with the client's session cookie, as the
// browser's websocket worker does (Origin, the worker version).
func (c *odooClient) OpenWebsocket(t *testing.T, version string) *odooWebsocket {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	hdr := http.Header{}
	hdr.Set("Origin", c.base)
	// coder/websocket takes its timeouts from the context, not the client.
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.base, "http")+"/websocket?version="+version,
		&websocket.DialOptions{HTTPClient: &http.Client{Jar: c.http.Jar}, HTTPHeader: hdr})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("open Odoo's websocket: %v (HTTP %d)", err, status)
	}
	conn.SetReadLimit(1 << 20)
	ws := &odooWebsocket{conn: conn, notifs: make(chan busNotification, 64), done: make(chan error, 1)}
	go func() {
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				ws.done <- err
				close(ws.notifs)
				return
			}
			var batch []busNotification
			if err := json.Unmarshal(data, &batch); err != nil {
				continue // not a notification list
			}
			for _, n := range batch {
				ws.notifs <- n
			}
		}
	}()
	t.Cleanup(func() { conn.Close(websocket.StatusNormalClosure, "") })
	return ws
}

// Subscribe sends the subscribe event for channels.
func (ws *odooWebsocket) Subscribe(t *testing.T, channels ...string) {
	t.Helper()
	msg, _ := json.Marshal(map[string]any{"event_name": "subscribe", "data": map[string]any{"channels": channels, "last": 0}})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := ws.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatalf("subscribe on Odoo's websocket: %v", err)
	}
}

// Await waits at most timeout for the notification with id; others are
// skipped. It reports whether it came.
func (ws *odooWebsocket) Await(t *testing.T, id int64, timeout time.Duration) (busNotification, bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case n, ok := <-ws.notifs:
			if !ok {
				t.Fatalf("Odoo closed the websocket: %v", <-ws.done)
			}
			if n.ID == id {
				return n, true
			}
		case <-deadline:
			return busNotification{}, false
		}
	}
}

// TestOdooThroughPgBouncer runs a real Odoo 18 on an environment whose
// PgBouncer pools its database in transaction mode: Odoo installs base and
// serves through it, and its bus keeps LISTEN imbus on PgBouncer's
// `postgres` entry (session mode), where a NOTIFY sent through PgBouncer
// reaches a websocket subscribed to Odoo.
func TestOdooThroughPgBouncer(t *testing.T) {
	b := startOdooBox(t)
	created := b.createEnv("pool")
	e := b.enablePgBouncer("pool", "transaction", 10)
	if e.OdooConf == "" || e.Port == nil {
		t.Fatalf("the API names no odoo.conf or primary port: %+v", e.odooEnv)
	}
	conf := odooConfValues(t, e.OdooConf)
	if want := strconv.Itoa(*e.Pooler.Port); conf["db_port"] != want || conf["db_port"] == strconv.Itoa(*e.Port) {
		t.Fatalf("odoo.conf db_port = %s, want the pooler's %s (the primary is on %d)", conf["db_port"], want, *e.Port)
	}
	if created.Port != nil && *e.Port != *created.Port {
		t.Errorf("the primary moved from port %d to %d on the redeploy", *created.Port, *e.Port)
	}
	ini := readFile(filepath.Join(b.data, "envs", "pool", "pooler", "pgbouncer.ini"))
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(e.Database) + ` = .*\bpool_mode=transaction\b`),
		regexp.MustCompile(`(?m)^postgres = .*\bpool_mode=session\b`),
	} {
		if !want.MatchString(ini) {
			t.Errorf("pgbouncer.ini has no line matching %s:\n%s", want, ini)
		}
	}

	// Odoo installs base with every connection through PgBouncer in
	// transaction mode (installBase reads ir_module_module through it too).
	b.installBase(e.odooEnv)
	db := connectWithConf(t, conf, e.Database)
	if st := moduleState(t, db, "bus"); st != "installed" {
		t.Logf("bus is %q after -i base: installing base,bus", st)
		code, log := runOdoo(t, b.src, b.acct, "install-bus", 5*time.Minute,
			"-c", e.OdooConf, "-i", "base,bus", "--without-demo=all", "--stop-after-init")
		if code != 0 {
			t.Fatalf("odoo-bin -i base,bus exited %d:\n%s", code, tail(log, 4000))
		}
		if st := moduleState(t, db, "bus"); st != "installed" {
			t.Fatalf("ir_module_module bus: %q, want installed", st)
		}
	}

	odoo := startOdoo(t, b.src, b.acct, e.OdooConf)
	rpc := odoo.Client()
	if _, err := rpc.Authenticate(e.Database, "admin", "admin"); err != nil {
		t.Fatalf("sign in as admin through PgBouncer: %v", err)
	}
	var partnerID int
	if err := rpc.CallKW("res.partner", "create", []any{map[string]any{"name": "Pooled by PgBouncer"}}, nil, &partnerID); err != nil {
		t.Fatalf("create a res.partner: %v", err)
	}
	var rows []struct {
		Name string `json:"name"`
	}
	if err := rpc.CallKW("res.partner", "read", []any{[]int{partnerID}, []string{"name"}}, nil, &rows); err != nil || len(rows) != 1 || rows[0].Name != "Pooled by PgBouncer" {
		t.Fatalf("read the partner back: %+v, %v", rows, err)
	}

	t.Run("the bus listens and is notified through PgBouncer's postgres entry", func(t *testing.T) {
		// Odoo's bus thread starts when a websocket first subscribes.
		ws := rpc.OpenWebsocket(t, odooWebsocketVersion(t, b.src))
		ws.Subscribe(t, "pgdeck-test")
		testkit.Eventually(t, "Odoo's bus thread starts", 30*time.Second, func() (bool, string) {
			return strings.Contains(odoo.Log(), "Bus.loop listen imbus on db postgres"), "no Bus.loop line in Odoo's log"
		})
		// pg_stat_activity cannot single out the LISTEN session: bus.py
		// commits right after `listen imbus`, so its last query reads
		// COMMIT, like the cron threads' LISTEN cron_trigger sessions. It
		// shows that Odoo's sessions on postgres (all through PgBouncer:
		// odoo.conf names no other address) are there; the NOTIFY below
		// shows that one of them listens.
		pg := connectWithConf(t, conf, "postgres")
		rows, _ := pg.Query(t.Context(), `SELECT pid || ' ' || state || ': ' || query FROM pg_stat_activity
			WHERE datname = 'postgres' AND usename = current_user AND application_name LIKE 'odoo-%' AND pid <> pg_backend_pid()`)
		sessions, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(sessions) == 0 {
			t.Fatalf("Odoo holds no session on postgres through PgBouncer: %q, %v", sessions, err)
		}
		t.Logf("Odoo's sessions on postgres: %q", sessions)

		// A bus.bus row as bus.py's _sendone writes it, committed through
		// PgBouncer's transaction pool, and not announced yet.
		channel, _ := json.Marshal([]string{e.Database, "pgdeck-test"})
		message, _ := json.Marshal(map[string]any{"type": "pgdeck/test", "payload": map[string]any{"via": "pgbouncer"}})
		var id int64
		err = db.QueryRow(t.Context(), `INSERT INTO bus_bus (channel, message, create_date, write_date, create_uid, write_uid)
			VALUES ($1, $2, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC', 1, 1) RETURNING id`,
			string(channel), string(message)).Scan(&id)
		if err != nil {
			t.Fatalf("insert a bus_bus row: %v", err)
		}
		// Odoo reads bus_bus only when notified: without the NOTIFY the
		// row stays unsent, so what follows is the NOTIFY's doing. (The
		// second also covers the moment between the Bus.loop line and its
		// LISTEN.)
		if _, ok := ws.Await(t, id, time.Second); ok {
			t.Fatal("the websocket got the bus_bus row before any NOTIFY: the test cannot tell whether NOTIFY reaches Odoo")
		}
		// As bus.py's notify(): SELECT pg_notify('imbus', json of the channels).
		payload, _ := json.Marshal([]json.RawMessage{channel})
		if _, err := pg.Exec(t.Context(), "SELECT pg_notify('imbus', $1)", string(payload)); err != nil {
			t.Fatalf("NOTIFY imbus through PgBouncer: %v", err)
		}
		n, ok := ws.Await(t, id, 10*time.Second)
		if !ok {
			t.Fatalf("the websocket did not get bus_bus row %d within 10 s of NOTIFY imbus %s through PgBouncer; Odoo's log:\n%s",
				id, payload, tail(odoo.Log(), 3000))
		}
		var got struct {
			Via string `json:"via"`
		}
		if err := json.Unmarshal(n.Message.Payload, &got); err != nil || n.Message.Type != "pgdeck/test" || got.Via != "pgbouncer" {
			t.Errorf("the websocket got type %q payload %s, want pgdeck/test {\"via\": \"pgbouncer\"}", n.Message.Type, n.Message.Payload)
		}
	})

	if errs := odooErrors(odoo.Log()); len(errs) > 0 {
		t.Errorf("Odoo logged errors while serving through PgBouncer:\n%s", strings.Join(errs, "\n"))
	}
	odoo.Stop()
	b.deleteEnv("pool")
	envs := filepath.Join(b.data, "envs")
	if pids := append(testkit.PostgresUnder(envs), testkit.ProcessesUnder(envs, "pgbouncer")...); len(pids) > 0 {
		t.Errorf("the environment's PostgreSQL or PgBouncer processes outlived its delete: %v", pids)
	}
}

package monitor

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// closeTimeout bounds closing a kept connection (a polite Terminate).
const closeTimeout = time.Second

// conns keeps, between rounds, the connections the probes opened to the
// environments' PostgreSQL servers as the monitoring role, so that a check
// costs one query instead of a new server process, a SCRAM exchange and a
// query (a new connection is most of a check's cost: about 25 ms of CPU
// per check on a 2-core machine, against a millisecond or two for the
// query alone). Only logins to the `postgres` database are kept: a session
// held open on an environment's own database would stand in the way of
// whatever needs it alone (CREATE DATABASE … TEMPLATE, Odoo's database
// manager). The monitor's role counts in the connections pgdeck reserves
// (see render.Recommend).
//
// A connection is taken out while a check uses it and put back after a
// check that succeeded on it, so two checks never share one; a second
// check of the same server while one is out opens its own, and of two put
// back the second is closed.
type conns struct {
	mu   sync.Mutex
	idle map[connKey]kept
}

// kept is a connection put back, and when.
type kept struct {
	conn *pgx.Conn
	at   time.Time
}

// connKey names a login to one server: the environment (a new environment
// of the same name is another), the address, the role, its sealed password
// (a changed password is a new login) and the database.
type connKey struct {
	env    int64
	host   string
	port   int
	user   string
	sealed string
	db     string
}

// key is l's login to the server of environment env at host:port.
func (l login) key(env int64, host string, port int) connKey {
	return connKey{env: env, host: host, port: port, user: l.user, sealed: string(l.sealed), db: l.db}
}

// kept reports whether connections of k are kept between checks.
func (k connKey) kept() bool { return k.db == "postgres" }

func newConns() *conns { return &conns{idle: map[connKey]kept{}} }

// use runs fn on a kept connection of key, or on a new one from dial. When
// fn fails on a kept connection (the server restarted, the session was
// ended, the connection broke while idle) and time is left, that
// connection is closed and fn runs once more on a new one: what the check
// reports is what a fresh connection sees. A connection fn succeeded on
// is kept when the key's are (see connKey.kept) and closed otherwise; one
// it failed on is closed.
func (c *conns) use(ctx context.Context, key connKey, dial func(context.Context) (*pgx.Conn, error), fn func(*pgx.Conn) error) error {
	if conn := c.take(key); conn != nil {
		err := fn(conn)
		if err == nil {
			c.put(key, conn)
			return nil
		}
		closeConn(conn)
		if ctx.Err() != nil {
			return err
		}
	}
	conn, err := dial(ctx)
	if err != nil {
		return err
	}
	if err := fn(conn); err != nil {
		closeConn(conn)
		return err
	}
	if key.kept() {
		c.put(key, conn)
	} else {
		closeConn(conn)
	}
	return nil
}

// take removes the kept connection of key and returns it; nil when none is
// kept or it is known to be closed.
func (c *conns) take(key connKey) *pgx.Conn {
	c.mu.Lock()
	k, ok := c.idle[key]
	delete(c.idle, key)
	c.mu.Unlock()
	if !ok || k.conn.IsClosed() {
		return nil
	}
	return k.conn
}

// put keeps conn for key, closing it instead when one is kept already.
func (c *conns) put(key connKey, conn *pgx.Conn) {
	c.mu.Lock()
	_, taken := c.idle[key]
	if !taken {
		c.idle[key] = kept{conn: conn, at: time.Now()}
	}
	c.mu.Unlock()
	if taken {
		closeConn(conn)
	}
}

// retain closes the kept connections of environments keep says no to,
// and those no check has used since before: an instance gone while its
// environment stays (a replica removed, a port changed) leaves one.
func (c *conns) retain(keep func(env int64) bool, before time.Time) {
	var gone []*pgx.Conn
	c.mu.Lock()
	for key, k := range c.idle {
		if !keep(key.env) || k.at.Before(before) {
			gone = append(gone, k.conn)
			delete(c.idle, key)
		}
	}
	c.mu.Unlock()
	// At once: one to a server that no longer answers takes its timeout.
	var wg sync.WaitGroup
	for _, conn := range gone {
		wg.Go(func() { closeConn(conn) })
	}
	wg.Wait()
}

// closeAll closes every kept connection.
func (c *conns) closeAll() { c.retain(func(int64) bool { return false }, time.Time{}) }

// len is how many connections are kept.
func (c *conns) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.idle)
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	conn.Close(ctx)
}

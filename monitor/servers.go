package monitor

import (
	"context"
	"sync"
	"time"

	"pgdeck/store"
)

// serverChecker is implemented by a runtime that spreads environments over
// servers (the fleet): it says whether a server's engine answers.
type serverChecker interface {
	CheckServer(ctx context.Context, server string) error
}

// checkServers checks every server at once, each under the check timeout,
// records Online or Offline with the reason, and returns the reason of
// each server that is offline. Without servers (a plain runtime) nothing
// is offline.
func (m *Monitor) checkServers(ctx context.Context) map[string]string {
	if m.servers == nil {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	svs, err := m.st.ListServers(sctx)
	cancel()
	if err != nil {
		m.log.Warn("listing servers failed", "error", err)
		return nil
	}
	var (
		mu      sync.Mutex
		offline = map[string]string{}
		wg      sync.WaitGroup
	)
	for _, sv := range svs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at := time.Now()
			cctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
			err := m.servers.CheckServer(cctx, sv.Name)
			cancel()
			if ctx.Err() != nil {
				return
			}
			status, reason := store.ServerOnline, ""
			if err != nil {
				status, reason = store.ServerOffline, err.Error()
				mu.Lock()
				offline[sv.Name] = reason
				mu.Unlock()
			}
			if status != sv.Status {
				m.log.Info("server", "server", sv.Name, "from", sv.Status, "status", status, "reason", reason)
			}
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
			defer cancel()
			if err := m.st.SetServerStatus(wctx, sv.Name, status, reason, at); err != nil {
				m.log.Warn("storing a server's status failed", "server", sv.Name, "error", err)
			}
		}()
	}
	wg.Wait()
	return offline
}

// offlineResult is what every component of an environment on an offline
// server shows: Error, with the server's reason.
func offlineResult(server, reason string) Result {
	return Result{Status: store.HealthError, Reason: "server " + server + " is offline: " + reason}
}

package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"pgdeck/store"
	"pgdeck/store/storetest"
)

// TestBackups: a backup is recorded running, then succeeded or failed; a
// running one is not deleted; one whose writer is gone is failed by
// FailInterruptedBackups; the newest good backup per environment; a
// backup outlives its environment.
func TestBackups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	env := mustCreateEnvironment(t, st, "shop")
	id := env.ID
	create := func(file, kind string) store.Backup {
		t.Helper()
		b, err := st.CreateBackup(ctx, store.NewBackup{EnvID: &id, EnvName: "shop", Kind: kind, Format: "zip", File: file})
		if err != nil {
			t.Fatal(err)
		}
		if b.State != store.BackupRunning || b.Kind != kind {
			t.Fatalf("new backup: %+v", b)
		}
		return b
	}
	a := create("shop/a.zip", store.BackupManual)
	if _, err := st.CreateBackup(ctx, store.NewBackup{EnvID: &id, EnvName: "shop", Kind: "manual", Format: "zip", File: "shop/a.zip"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second backup with the same file: %v, want ErrConflict", err)
	}
	if _, err := st.CreateBackup(ctx, store.NewBackup{EnvID: &id, EnvName: "shop", Kind: "weekly", Format: "zip", File: "shop/x.zip"}); err == nil {
		t.Error("a backup of an unknown kind was recorded")
	}
	if err := st.DeleteBackup(ctx, a.ID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("delete of a running backup: %v, want ErrConflict", err)
	}
	if err := st.FinishBackup(ctx, a.ID, 1234, "ab", json.RawMessage(`{"odoo_dump": "1"}`)); err != nil {
		t.Fatal(err)
	}
	b := create("shop/b.zip", store.BackupScheduled)
	if err := st.FailBackup(ctx, b.ID, "disk full"); err != nil {
		t.Fatal(err)
	}
	c := create("shop/c.zip", store.BackupManual) // its writer (no job) is gone
	failed, err := st.FailInterruptedBackups(ctx, "interrupted", 0)
	if err != nil || len(failed) != 1 || failed[0].ID != c.ID {
		t.Fatalf("FailInterruptedBackups = %v, %v; want c only", failed, err)
	}
	list, err := st.ListBackups(ctx, "shop", 0)
	if err != nil || len(list) != 3 {
		t.Fatalf("ListBackups = %v, %v", list, err)
	}
	states := map[string]string{}
	for _, x := range list {
		states[x.File] = x.State + " " + x.Error
	}
	if states["shop/a.zip"] != "succeeded " || states["shop/b.zip"] != "failed disk full" || states["shop/c.zip"] != "failed interrupted" {
		t.Errorf("states: %v", states)
	}
	newest, err := st.NewestGoodBackups(ctx)
	if err != nil || newest["shop"].IsZero() || len(newest) != 1 {
		t.Errorf("NewestGoodBackups = %v, %v", newest, err)
	}
	if at, err := st.NewestGoodBackup(ctx, "shop"); err != nil || at == nil || !at.Equal(newest["shop"]) {
		t.Errorf("NewestGoodBackup = %v, %v; want %v", at, err, newest["shop"])
	}
	if err := st.SetBackupVerified(ctx, a.ID, errors.New("checksum mismatch")); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.BackupByID(ctx, a.ID); got.Good() || got.VerifiedAt == nil {
		t.Errorf("a backup that failed its check: %+v", got)
	}
	if newest, _ := st.NewestGoodBackups(ctx); len(newest) != 0 {
		t.Errorf("a backup that failed its check counts as good: %v", newest)
	}
	if at, err := st.NewestGoodBackup(ctx, "shop"); err != nil || at != nil {
		t.Errorf("NewestGoodBackup after a failed check = %v, %v; want none", at, err)
	}

	if err := st.DeleteEnvironment(ctx, env.ID); err != nil {
		t.Fatal(err)
	}
	left, err := st.BackupByID(ctx, a.ID)
	if err != nil || left.EnvID != nil || left.EnvName != "shop" {
		t.Errorf("a backup of a deleted environment: %+v, %v", left, err)
	}
	if err := st.DeleteBackup(ctx, b.ID); err != nil {
		t.Error(err)
	}
	if _, err := st.BackupByID(ctx, b.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a deleted backup: %v", err)
	}
}

// TestBackupSchedules: the default until saved; due once a day after its
// time (UTC); marking it queued is done once per day.
func TestBackupSchedules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	env := mustCreateEnvironment(t, st, "shop")
	s, err := st.BackupSchedule(ctx, env.ID)
	if err != nil || s.Enabled || s.TimeOfDay != "02:00" || s.KeepDaily != 7 || s.KeepWeekly != 4 || s.KeepMonthly != 12 {
		t.Fatalf("default schedule = %+v, %v", s, err)
	}
	s.Enabled, s.TimeOfDay = true, "22:30"
	if _, err := st.SaveBackupSchedule(ctx, s); err != nil {
		t.Fatal(err)
	}
	bad := s
	bad.TimeOfDay = "24:00"
	if _, err := st.SaveBackupSchedule(ctx, bad); err == nil {
		t.Error("a time of day 24:00 was saved")
	}
	day := time.Date(2030, 5, 1, 0, 0, 0, 0, time.UTC)
	due := func(at time.Time) int {
		t.Helper()
		d, err := st.DueSchedules(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		return len(d)
	}
	if n := due(day.Add(22 * time.Hour)); n != 0 {
		t.Errorf("due at 22:00 for 22:30: %d", n)
	}
	if n := due(day.Add(22*time.Hour + 31*time.Minute)); n != 1 {
		t.Errorf("due at 22:31: %d, want 1", n)
	}
	if ok, err := st.MarkScheduleQueued(ctx, env.ID, day); !ok || err != nil {
		t.Fatalf("first mark: %v, %v", ok, err)
	}
	if ok, _ := st.MarkScheduleQueued(ctx, env.ID, day); ok {
		t.Error("marked twice on one day")
	}
	if n := due(day.Add(23 * time.Hour)); n != 0 {
		t.Errorf("due again on the same day: %d", n)
	}
	if n := due(day.AddDate(0, 0, 1).Add(23 * time.Hour)); n != 1 {
		t.Errorf("due the next day: %d, want 1", n)
	}
}

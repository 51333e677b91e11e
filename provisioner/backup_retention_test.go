package provisioner

import (
	"testing"
	"time"

	"pgdeck/store"
)

// TestRetainedAfterSimulatedDays runs the retention after each of many
// simulated days of scheduled backups and checks that exactly the configured
// number of days, weeks and months keep a backup.
func TestRetainedAfterSimulatedDays(t *testing.T) {
	for _, keep := range []Keep{{7, 4, 12}, {3, 0, 0}, {0, 2, 0}, {1, 1, 1}, {30, 10, 24}} {
		var kept []store.Backup
		start := time.Date(2025, 1, 1, 2, 0, 0, 0, time.UTC)
		var id int64
		for day := range 800 {
			id++
			kept = append(kept, store.Backup{ID: id, Kind: store.BackupScheduled, State: store.BackupSucceeded,
				CreatedAt: start.AddDate(0, 0, day)})
			if day%37 == 5 { // now and then a failed one
				id++
				kept = append(kept, store.Backup{ID: id, State: store.BackupFailed, CreatedAt: start.AddDate(0, 0, day).Add(time.Hour)})
			}
			kept, _ = Retained(kept, keep)
		}
		days, weeks, months := map[string]bool{}, map[string]bool{}, map[string]bool{}
		good := 0
		for _, b := range kept {
			if b.State != store.BackupSucceeded {
				continue
			}
			good++
			t := b.CreatedAt
			days[t.Format(time.DateOnly)] = true
			y, w := t.ISOWeek()
			weeks[time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 7*w).Format("2006-01-02")] = true
			months[t.Format("2006-01")] = true
		}
		end := start.AddDate(0, 0, 799)
		// The newest Daily days each keep exactly their backup.
		for d := range keep.Daily {
			if day := end.AddDate(0, 0, -d).Format(time.DateOnly); !days[day] {
				t.Errorf("keep %+v: the backup of %s (day %d back) is gone", keep, day, d)
			}
		}
		// Every kept backup is the newest of its day, week or month within
		// the configured counts; their union is exactly what the rule gives.
		want := map[time.Time]bool{}
		for d := range keep.Daily {
			want[end.AddDate(0, 0, -d)] = true
		}
		for w := range keep.Weekly { // the newest backup of each of the last weeks: Sundays, this week's is end
			sun := end
			for sun.Weekday() != time.Sunday {
				sun = sun.AddDate(0, 0, 1)
			}
			b := sun.AddDate(0, 0, -7*w)
			if b.After(end) {
				b = end
			}
			want[b] = true
		}
		for m := range keep.Monthly {
			first := time.Date(end.Year(), end.Month(), 1, 2, 0, 0, 0, time.UTC).AddDate(0, -m, 0)
			last := first.AddDate(0, 1, -1)
			if last.After(end) {
				last = end
			}
			want[last] = true
		}
		if good != len(want) {
			t.Errorf("keep %+v: %d backups kept, want %d", keep, good, len(want))
		}
		for _, b := range kept {
			if b.State == store.BackupSucceeded && !want[b.CreatedAt] {
				t.Errorf("keep %+v: kept %s, which no period keeps", keep, b.CreatedAt.Format(time.DateOnly))
			}
		}
		for _, b := range kept {
			if b.State == store.BackupFailed {
				t.Errorf("keep %+v: a failed backup of %s is still kept, older than every good one", keep, b.CreatedAt)
			}
		}
	}
}

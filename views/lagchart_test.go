package views

import (
	"slices"
	"testing"
	"time"
)

func TestBuildLagChart(t *testing.T) {
	to := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	from := to.Add(-time.Hour)
	b := func(n int64) *int64 { return &n }
	s := func(f float64) *float64 { return &f }
	// Plot: x from 56 to 592 (536 wide), y from 8 (top) to 100 (zero).

	// A one-minute window, so that the readings are close enough to join.
	minute := to.Add(-time.Minute)

	t.Run("points scaled, bands under them", func(t *testing.T) {
		c := BuildLagChart([]LagPoint{
			{At: minute.Add(-time.Second), Bytes: b(999), Seconds: s(999)}, // before the window: left out
			{At: minute, Bytes: b(0), Seconds: s(0)},
			{At: minute.Add(30 * time.Second), Bytes: b(50), Seconds: s(15)},
			{At: to, Bytes: b(100), Seconds: s(30)},
		}, minute, to, 50, 100, 15, 30)
		if c.Empty {
			t.Fatal("Empty with readings")
		}
		// The scale tops at 1.25 × critical: 125 bytes, 37.5 s.
		if want := []string{"56,100 324,63.2 592,26.4"}; !slices.Equal(c.Bytes.Lines, want) {
			t.Errorf("bytes lines = %q, want %q", c.Bytes.Lines, want)
		}
		if want := []string{"56,100 324,63.2 592,26.4"}; !slices.Equal(c.Seconds.Lines, want) {
			t.Errorf("seconds lines = %q, want %q", c.Seconds.Lines, want)
		}
		if c.Bytes.Warn != (ChartBand{Y: 26.4, H: 36.8}) || c.Bytes.Crit != (ChartBand{Y: 8, H: 18.4}) {
			t.Errorf("bands: warning %+v, critical %+v", c.Bytes.Warn, c.Bytes.Crit)
		}
		if c.Bytes.WarnY != 63.2 || c.Bytes.CritY != 26.4 {
			t.Errorf("threshold lines at %v and %v", c.Bytes.WarnY, c.Bytes.CritY)
		}
		if c.Bytes.ShowMax {
			t.Error("the top's label is shown over the critical one's")
		}
		if c.Bytes.MaxLabel != "125 B" || c.Seconds.MaxLabel != "38 s" || c.Seconds.WarnLabel != "15 s" {
			t.Errorf("labels: %q, %q, %q", c.Bytes.MaxLabel, c.Seconds.MaxLabel, c.Seconds.WarnLabel)
		}
	})

	t.Run("a reading above the scale raises it", func(t *testing.T) {
		c := BuildLagChart([]LagPoint{{At: minute, Bytes: b(250)}, {At: to, Bytes: b(0)}}, minute, to, 50, 100, 15, 30)
		if want := []string{"56,8 592,100"}; !slices.Equal(c.Bytes.Lines, want) {
			t.Errorf("lines = %q, want %q", c.Bytes.Lines, want)
		}
		// 100 of 250: the critical band starts 40% up.
		if c.Bytes.Crit != (ChartBand{Y: 8, H: 55.2}) || !c.Bytes.ShowMax {
			t.Errorf("critical band %+v", c.Bytes.Crit)
		}
	})

	t.Run("offline readings and gaps break the line", func(t *testing.T) {
		c := BuildLagChart([]LagPoint{
			{At: from, Bytes: b(10)},
			{At: from.Add(5 * time.Second), Bytes: b(10)},
			{At: from.Add(10 * time.Second)}, // offline: nothing measured
			{At: from.Add(15 * time.Second), Bytes: b(10)},
			{At: from.Add(30 * time.Minute), Bytes: b(10)}, // after a gap
			{At: from.Add(30*time.Minute + 5*time.Second), Bytes: b(10)},
		}, from, to, 50, 100, 15, 30)
		if len(c.Bytes.Lines) != 2 || len(c.Bytes.Dots) != 1 {
			t.Fatalf("lines %q, dots %v; want two lines and a lone dot", c.Bytes.Lines, c.Bytes.Dots)
		}
		if len(c.Seconds.Lines) != 0 || len(c.Seconds.Dots) != 0 {
			t.Errorf("seconds never measured, yet drawn: %q %v", c.Seconds.Lines, c.Seconds.Dots)
		}
	})

	t.Run("no history", func(t *testing.T) {
		for _, pts := range [][]LagPoint{nil, {{At: from.Add(time.Minute)}}} {
			c := BuildLagChart(pts, from, to, 50_000_000, 100_000_000, 15, 30)
			if !c.Empty || len(c.Bytes.Lines)+len(c.Bytes.Dots)+len(c.Seconds.Lines)+len(c.Seconds.Dots) != 0 {
				t.Errorf("%d points: %+v", len(pts), c)
			}
			if c.Bytes.Crit.H <= 0 || c.Bytes.Warn.H <= 0 || c.Seconds.Warn.H <= 0 {
				t.Errorf("the bands are not drawn on an empty chart: %+v", c)
			}
			if c.Bytes.CritLabel != "100.0 MB" {
				t.Errorf("critical label %q", c.Bytes.CritLabel)
			}
		}
	})
}

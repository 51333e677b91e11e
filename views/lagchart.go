package views

import (
	"strconv"
	"strings"
	"time"
)

// The replica's lag chart: one panel for bytes, one for seconds, each a
// small inline SVG drawn on the server (no script) with its warning and
// critical thresholds as shaded bands. The geometry is fixed, so a
// refreshed chart takes exactly the place of the one before.

// Chart geometry, in SVG user units.
const (
	chartWidth  = 600
	chartHeight = 120
	chartLeft   = 56 // room for the y labels
	chartRight  = 8
	chartTop    = 8
	chartBottom = 20 // room for the time labels
	// chartGap breaks the line where checks are further apart than this
	// (the monitor or pgdeck was down): no line is drawn across a gap.
	chartGap = time.Minute
)

// LagPoint is one check of the replica's lag; a nil figure was not
// measured (the replica was offline).
type LagPoint struct {
	At      time.Time
	Bytes   *int64
	Seconds *float64
}

// LagChart is the one-hour lag chart: a panel per figure.
type LagChart struct {
	// Empty: no check in the window measured any lag.
	Empty   bool
	Bytes   LagPanel
	Seconds LagPanel
}

// LagPanel is one figure's chart, in SVG coordinates.
type LagPanel struct {
	Title string
	// Lines are polylines' points attributes, one per unbroken run of
	// readings; Dots are readings with no neighbour to join.
	Lines []string
	Dots  []ChartDot
	// Warn is the band from the warning to the critical threshold, Crit
	// the band above the critical one.
	Warn, Crit ChartBand
	// Labels of the y axis: its top, and the two thresholds.
	MaxLabel, WarnLabel, CritLabel string
	WarnY, CritY                   float64
	// ShowMax: the top's label has room above the critical one's.
	ShowMax bool
}

// ChartBand is a shaded rectangle across the plot.
type ChartBand struct{ Y, H float64 }

// ChartDot is a lone reading.
type ChartDot struct{ X, Y float64 }

// ViewBox is the panels' SVG viewBox.
func (LagChart) ViewBox() string {
	return "0 0 " + strconv.Itoa(chartWidth) + " " + strconv.Itoa(chartHeight)
}

// BuildLagChart scales the readings of [from, to] into two panels with
// the thresholds' bands. Each panel's scale reaches at least a quarter
// above its critical threshold, so both bands always show.
func BuildLagChart(points []LagPoint, from, to time.Time, warnBytes, critBytes int64, warnSeconds, critSeconds float64) LagChart {
	c := LagChart{Empty: true}
	var bytesVals, secVals []chartReading
	for _, p := range points {
		if p.At.Before(from) || p.At.After(to) {
			continue
		}
		if p.Bytes != nil {
			bytesVals = append(bytesVals, chartReading{At: p.At, V: float64(*p.Bytes)})
			c.Empty = false
		} else {
			bytesVals = append(bytesVals, chartReading{At: p.At, Missing: true})
		}
		if p.Seconds != nil {
			secVals = append(secVals, chartReading{At: p.At, V: *p.Seconds})
			c.Empty = false
		} else {
			secVals = append(secVals, chartReading{At: p.At, Missing: true})
		}
	}
	c.Bytes = buildPanel("Lag (Bytes)", bytesVals, from, to, float64(warnBytes), float64(critBytes), func(v float64) string { return Bytes(int64(v)) })
	c.Seconds = buildPanel("Lag (Time)", secVals, from, to, warnSeconds, critSeconds, func(v float64) string { return seconds(v) + " s" })
	return c
}

type chartReading struct {
	At      time.Time
	V       float64
	Missing bool
}

func buildPanel(title string, rs []chartReading, from, to time.Time, warn, crit float64, label func(float64) string) LagPanel {
	top := crit * 1.25
	for _, r := range rs {
		if !r.Missing && r.V > top {
			top = r.V
		}
	}
	if top <= 0 {
		top = 1
	}
	plotH := float64(chartHeight - chartTop - chartBottom)
	plotW := float64(chartWidth - chartLeft - chartRight)
	span := to.Sub(from).Seconds()
	y := func(v float64) float64 { return round1(chartTop + plotH - max(v, 0)/top*plotH) }
	x := func(t time.Time) float64 {
		if span <= 0 {
			return chartLeft
		}
		return round1(chartLeft + t.Sub(from).Seconds()/span*plotW)
	}
	p := LagPanel{Title: title, MaxLabel: label(top), WarnLabel: label(warn), CritLabel: label(crit), WarnY: y(warn), CritY: y(crit)}
	p.ShowMax = p.CritY-chartTop >= 20
	p.Warn = ChartBand{Y: y(crit), H: round1(y(warn) - y(crit))}
	p.Crit = ChartBand{Y: chartTop, H: round1(y(crit) - chartTop)}

	var run []ChartDot
	var last time.Time
	flush := func() {
		switch len(run) {
		case 0:
		case 1:
			p.Dots = append(p.Dots, run[0])
		default:
			parts := make([]string, len(run))
			for i, d := range run {
				parts[i] = num(d.X) + "," + num(d.Y)
			}
			p.Lines = append(p.Lines, strings.Join(parts, " "))
		}
		run = nil
	}
	for _, r := range rs {
		if r.Missing {
			flush()
			continue
		}
		if len(run) > 0 && r.At.Sub(last) > chartGap {
			flush()
		}
		run = append(run, ChartDot{X: x(r.At), Y: y(r.V)})
		last = r.At
	}
	flush()
	return p
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// num prints an SVG coordinate.
func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// The plot's edges, for the template.
func chartPlotLeft() string  { return strconv.Itoa(chartLeft) }
func chartPlotRight() string { return strconv.Itoa(chartWidth - chartRight) }
func chartPlotWidth() string { return strconv.Itoa(chartWidth - chartLeft - chartRight) }
func chartAxisY() string     { return strconv.Itoa(chartHeight - chartBottom) }
func chartTimeY() string     { return strconv.Itoa(chartHeight - 6) }

package main

import (
	"fmt"
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/agentbox/agentbox/test/bench/samples"
)

// writePlot draws the latency distribution of every one-shot series and of the daemon's
// submit→guest start and submit→verdict: for each, the share of samples at or below each
// latency (an empirical CDF), on a log scale of milliseconds.
func writePlot(path string, d data) error {
	p := plot.New()
	p.Title.Text = "agentbox and its baselines: latency distribution (one run, interleaved)"
	p.X.Label.Text = "latency, ms (log scale)"
	p.Y.Label.Text = "share of runs done"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(6), vg.Points(-6)
	p.Add(plotter.NewGrid())
	var recs []samples.Record
	recs = append(recs, d.series(benchSpawn)...)
	for _, key := range []string{"daemon-guest-start", "daemon-verdict"} {
		if r, ok := d.record(benchDaemon, key); ok {
			recs = append(recs, r)
		}
	}
	i, lowest := 0, 0.0
	for _, r := range recs {
		if r.Unavailable != "" || len(r.WallMS) == 0 {
			continue
		}
		line, err := plotter.NewLine(ecdf(r.WallMS))
		if err != nil {
			return err
		}
		line.StepStyle = plotter.PostStep
		line.Color = palette[i%len(palette)]
		line.Width = vg.Points(1.5)
		if r.Key == "run" {
			line.Width = vg.Points(3)
		}
		if r.Bench == benchDaemon {
			line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		}
		p.Add(line)
		p.Legend.Add(r.Series, line)
		if m := slices.Min(r.WallMS); lowest == 0 || m < lowest {
			lowest = m
		}
		i++
	}
	if i == 0 {
		return fmt.Errorf("no latency samples of %s or %s to plot", benchSpawn, benchDaemon)
	}
	// A decade below the fastest sample, empty: room for the legend.
	p.X.Min = max(lowest, 1e-3) / 10
	return p.Save(10*vg.Inch, 6*vg.Inch, path)
}

// ecdf is the empirical distribution of v: the i-th smallest sample at (i+1)/n.
func ecdf(v []float64) plotter.XYs {
	s := slices.Clone(v)
	slices.Sort(s)
	xys := make(plotter.XYs, len(s))
	for i, x := range s {
		xys[i] = plotter.XY{X: max(x, 1e-3), Y: float64(i+1) / float64(len(s))}
	}
	return xys
}

// palette tells eight series apart (Okabe and Ito's colours, with black for the first).
var palette = []color.Color{
	color.RGBA{0, 0, 0, 255}, color.RGBA{230, 159, 0, 255}, color.RGBA{86, 180, 233, 255}, color.RGBA{0, 158, 115, 255},
	color.RGBA{213, 94, 0, 255}, color.RGBA{0, 114, 178, 255}, color.RGBA{204, 121, 167, 255}, color.RGBA{120, 120, 120, 255},
}

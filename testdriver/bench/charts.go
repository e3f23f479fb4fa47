package bench

import (
	"fmt"
	"image/color"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

func msValues(ds []time.Duration) plotter.Values {
	v := make(plotter.Values, len(ds))
	for i, d := range ds {
		v[i] = float64(d) / float64(time.Millisecond)
	}
	return v
}

// ElectionBoxChart draws the distribution of (c), the first acknowledged
// write, per setting as box plots on a logarithmic axis, and saves it as
// a PNG.
func ElectionBoxChart(sets []SettingStats, file string) error {
	p := plot.New()
	p.Title.Text = "Failover seen by a client: first write acknowledged by the new leader"
	p.Y.Label.Text = "ms after the signal (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var names []string
	i := 0
	for _, s := range sets {
		if len(s.RawWrite) == 0 {
			continue
		}
		vals := msValues(s.RawWrite)
		for j := range vals {
			vals[j] = max(vals[j], 0.01)
		}
		box, err := plotter.NewBoxPlot(vg.Points(14), float64(i), vals)
		if err != nil {
			return fmt.Errorf("box plot: %w", err)
		}
		box.FillColor = stopColor(s.Stop)
		p.Add(box)
		names = append(names, fmt.Sprintf("%s\n%s %s\nfast %s", s.ZK, s.Stop, s.SessionTimeout, s.Fast))
		i++
	}
	if i == 0 {
		return nil
	}
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 0
	width := vg.Length(max(i, 4)) * 0.9 * vg.Inch
	return p.Save(width, 5*vg.Inch, file)
}

func stopColor(stop string) color.Color {
	switch stop {
	case StopTerm:
		return color.RGBA{R: 0x8d, G: 0xc6, B: 0xe8, A: 0xff}
	case StopKill:
		return color.RGBA{R: 0xf4, G: 0xa2, B: 0x6b, A: 0xff}
	}
	return color.RGBA{R: 0xb8, G: 0xe0, B: 0x8a, A: 0xff}
}

// ElectionTimeoutChart plots (a) and (c) of every SIGKILL run against the
// session timeout, with the lines y = timeout and y = timeout + tick. It
// draws nothing (and returns false) with fewer than two timeouts.
func ElectionTimeoutChart(sets []SettingStats, file string) (bool, error) {
	var kill []SettingStats
	timeouts := map[time.Duration]bool{}
	for _, s := range sets {
		if s.Stop == StopKill && len(s.RawWrite) > 0 {
			kill = append(kill, s)
			timeouts[s.SessionTimeout] = true
		}
	}
	if len(timeouts) < 2 {
		return false, nil
	}
	p := plot.New()
	p.Title.Text = "SIGKILL failover vs session timeout"
	p.X.Label.Text = "session timeout (s)"
	p.Y.Label.Text = "failover (s)"
	p.Legend.Top = true
	p.Legend.Left = true
	var ts []float64
	for t := range timeouts {
		ts = append(ts, t.Seconds())
	}
	slices.Sort(ts)
	var tick time.Duration
	for _, s := range kill {
		tick = max(tick, s.TickTime)
	}
	ideal := make(plotter.XYs, len(ts))
	upper := make(plotter.XYs, len(ts))
	for i, t := range ts {
		ideal[i] = plotter.XY{X: t, Y: t}
		upper[i] = plotter.XY{X: t, Y: t + tick.Seconds()}
	}
	l1, err := plotter.NewLine(ideal)
	if err != nil {
		return false, err
	}
	l1.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	l2, err := plotter.NewLine(upper)
	if err != nil {
		return false, err
	}
	l2.Dashes = []vg.Length{vg.Points(1), vg.Points(3)}
	p.Add(l1, l2)
	p.Legend.Add("y = session timeout", l1)
	p.Legend.Add(fmt.Sprintf("y = timeout + tick (%v)", tick), l2)
	byZK := map[string][]SettingStats{}
	var zks []string
	for _, s := range kill {
		key := s.ZK + ", fast failover " + s.Fast
		if _, ok := byZK[key]; !ok {
			zks = append(zks, key)
		}
		byZK[key] = append(byZK[key], s)
	}
	for zi, zkm := range zks {
		var pts, med plotter.XYs
		for _, s := range byZK[zkm] {
			for _, d := range s.RawWrite {
				// A little horizontal spread per deployment keeps the dots apart.
				pts = append(pts, plotter.XY{X: s.SessionTimeout.Seconds() + 0.04*float64(zi-1), Y: d.Seconds()})
			}
			med = append(med, plotter.XY{X: s.SessionTimeout.Seconds(), Y: s.FirstWrite.P50.Seconds()})
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return false, err
		}
		sc.Color = plotutil.Color(zi)
		sc.Radius = vg.Points(1.5)
		slices.SortFunc(med, func(a, b plotter.XY) int { return cmpFloat(a.X, b.X) })
		ml, err := plotter.NewLine(med)
		if err != nil {
			return false, err
		}
		ml.Color = plotutil.Color(zi)
		p.Add(sc, ml)
		p.Legend.Add(zkm+": (c) per run, line = p50", sc)
	}
	return true, p.Save(6*vg.Inch, 4.5*vg.Inch, file)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// KVClientsChart draws the throughput of every operation against the
// number of clients, one line per operation, and saves it as a PNG. It
// draws nothing (and returns false) with fewer than two concurrencies.
func KVClientsChart(rs []KVResult, file string) (bool, error) {
	ix := IndexKV(rs)
	clients := slices.Clone(concurrencies(rs))
	if len(clients) < 2 {
		return false, nil
	}
	slices.Sort(clients)
	p := plot.New()
	p.Title.Text = "Throughput against clients"
	p.X.Label.Text = "clients (log scale)"
	p.Y.Label.Text = "ops/s, all clients"
	p.Y.Min = 0
	p.X.Scale = plot.LogScale{}
	ticks := make([]plot.Tick, len(clients))
	for i, c := range clients {
		ticks[i] = plot.Tick{Value: float64(c), Label: fmt.Sprint(c)}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	// Room right of the last concurrency for the legend.
	p.X.Min, p.X.Max = float64(clients[0])/1.5, float64(clients[len(clients)-1])*16
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	n := 0
	for _, op := range KVOps {
		var pts plotter.XYs
		for _, c := range clients {
			if r, ok := ix.Get(op, c); ok {
				pts = append(pts, plotter.XY{X: float64(c), Y: r.Throughput})
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return false, fmt.Errorf("throughput chart: %w", err)
		}
		line.Color = plotutil.Color(n)
		line.Dashes = plotutil.Dashes(n / len(plotutil.DefaultColors))
		points.Color = plotutil.Color(n)
		points.Shape = plotutil.Shape(n)
		p.Add(line, points)
		p.Legend.Add(op, line, points)
		n++
	}
	return true, p.Save(9*vg.Inch, 7*vg.Inch, file)
}

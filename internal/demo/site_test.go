package demo

import (
	"testing"
	"time"
)

func TestActionsLeadToPagesThatExist(t *testing.T) {
	s := newSite("demo.localhost")
	r := newRand(1)
	for _, p := range s.pages {
		for _, a := range p.actions {
			if a.then == nil {
				continue
			}
			for _, plan := range []string{"", "free", "pro", "team"} {
				v := visitState{plan: plan}
				if a.values != nil {
					a.values(r, &v)
				}
				if to := a.then(r, &v); s.index[to] == 0 && to != "/" {
					t.Errorf("%s on %s leads to %q, which is not a page", a.name, p.path, to)
				}
			}
		}
	}
}

func TestRhythmFollowsTheDayTheWeekAndHasSpikes(t *testing.T) {
	g := newGenerator("demo.localhost", 5, 10_000, false)
	wed := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC) // a Wednesday
	rate := func(t time.Time) float64 { r, _, _ := g.rhythm.rate(t); return r }
	// Most visitors are in the Americas and Europe: 15:00 UTC is their day, 04:00 UTC their night.
	if day, night := rate(wed.Add(15*time.Hour)), rate(wed.Add(4*time.Hour)); day < 2*night {
		t.Errorf("%.3f visits/s at 15:00 UTC, %.3f at 04:00: want a daily rhythm", day, night)
	}
	if weekday, sunday := rate(wed.Add(15*time.Hour)), rate(wed.Add(4*24*time.Hour+15*time.Hour)); sunday > 0.8*weekday {
		t.Errorf("%.3f visits/s on a Wednesday afternoon, %.3f on a Sunday: want quieter weekends", weekday, sunday)
	}
	var total float64
	spikes := 0
	for d := range 365 {
		if _, _, ok := g.rhythm.spike(day(wed) + int64(d)); ok {
			spikes++
		}
		for h := range 24 {
			total += rate(wed.Add(time.Duration(d*24+h)*time.Hour+30*time.Minute)) * 3600
		}
	}
	if spikes < 8 || spikes > 40 {
		t.Errorf("%d spike days in a year, want about 20", spikes)
	}
	if perDay := total / 365; perDay < 9_000 || perDay > 13_000 {
		t.Errorf("%.0f visits a day on average, want about 10,000 and a bit for the spikes", perDay)
	}
}

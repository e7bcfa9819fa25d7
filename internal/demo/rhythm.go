package demo

import (
	"math"
	"math/rand/v2"
	"time"
)

// rhythm says how many visits start per second at a moment and where they
// come from. Each place follows its own local day (quiet at night, busiest
// late morning and early afternoon) and week (quieter weekends); the site as a
// whole drifts slowly, each UTC day is a little busier or quieter than the
// last, and on about one day in eighteen a post takes off on a social site or
// the newsletter goes out: a spike of extra visits from that one source that
// fades over a few hours. The rhythm is a function of the seed and the time
// only, so the live generator and any back-fill agree on every moment.
type rhythm struct {
	site *site
	seed uint64
	// perSecond is the mean visits per second of an average day.
	perSecond float64
	placeSum  float64
	// hourly and weekly are the activity profiles, each with mean 1.
	hourly [24]float64
	weekly [7]float64
	// byMinute is the places' weighted mean activity at each minute of the
	// week (index: minutes since the epoch modulo a week).
	byMinute []float64

	// The place weights of one UTC hour, recomputed when the hour changes.
	hour      int64
	placePick weighted
}

// The daily and weekly profiles of one place's activity, in local time.
var (
	// hourlyActivity is the activity at each local hour (0 = midnight to 1 am).
	hourlyActivity = [24]float64{0.25, 0.15, 0.1, 0.08, 0.08, 0.12, 0.3, 0.6, 1.0, 1.35, 1.5, 1.5,
		1.35, 1.45, 1.5, 1.45, 1.35, 1.15, 0.95, 0.9, 0.9, 0.8, 0.6, 0.4}
	// weeklyActivity is the activity on each local weekday, Sunday first.
	weeklyActivity = [7]float64{0.62, 1.05, 1.1, 1.1, 1.08, 0.98, 0.58}
)

// normalized scales v, in place, to a mean of 1.
func normalized(v []float64) {
	var sum float64
	for _, x := range v {
		sum += x
	}
	for i := range v {
		v[i] *= float64(len(v)) / sum
	}
}

const minutesPerWeek = 7 * 24 * 60

// Spikes.
const (
	// spikeOdds is the chance that a UTC day has a spike.
	spikeOdds = 1.0 / 18
	// spikePeak is the spike's rate at its start, in multiples of the mean rate.
	spikePeak = 2.5
	// spikeFade is the time the spike's extra rate takes to fall by e.
	spikeFade = 5 * time.Hour
	// spikeSpan is how long after its start a spike counts at all.
	spikeSpan = 36 * time.Hour
)

func newRhythm(s *site, seed uint64, visitsPerDay float64) *rhythm {
	rh := &rhythm{site: s, seed: seed, perSecond: visitsPerDay / 86400, hour: math.MinInt64,
		hourly: hourlyActivity, weekly: weeklyActivity}
	normalized(rh.hourly[:])
	normalized(rh.weekly[:])
	for _, p := range s.places {
		rh.placeSum += p.weight
	}
	rh.byMinute = make([]float64, minutesPerWeek)
	for m := range rh.byMinute {
		var sum float64
		for i := range s.places {
			sum += s.places[i].weight * rh.activity(&s.places[i], int64(m))
		}
		rh.byMinute[m] = sum / rh.placeSum
	}
	return rh
}

// activity is how busy a place is at minute m since the Unix epoch,
// relative to its average.
func (rh *rhythm) activity(p *place, m int64) float64 {
	local := m + int64(p.offset)
	h := float64(floorMod(local, 1440)) / 60
	i := int(h)
	// Interpolate between the middles of the hours, so the rate has no steps.
	f := h - float64(i) - 0.5
	j := i + 1
	if f < 0 {
		j, f = i-1, -f
		if j < 0 {
			j = 23
		}
	} else if j > 23 {
		j = 0
	}
	weekday := floorMod(floorDiv(local, 1440)+4, 7) // 1 January 1970 was a Thursday
	return (rh.hourly[i]*(1-f) + rh.hourly[j]*f) * rh.weekly[weekday]
}

// day returns the UTC day number of t.
func day(t time.Time) int64 { return floorDiv(t.Unix(), 86400) }

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// dayFactor is how busy UTC day d is overall: a slow drift and some noise.
func (rh *rhythm) dayFactor(d int64) float64 {
	drift := 1 + 0.08*math.Sin(2*math.Pi*float64(d)/61)
	noise := 0.88 + 0.24*unit(mix(rh.seed, uint64(d), 1))
	return drift * noise
}

// spike returns the spike that starts on UTC day d, if any: its start and source.
func (rh *rhythm) spike(d int64) (start time.Time, source int, ok bool) {
	if unit(mix(rh.seed, uint64(d), 2)) >= spikeOdds || len(rh.site.spikeSources) == 0 {
		return time.Time{}, 0, false
	}
	h := mix(rh.seed, uint64(d), 3)
	at := time.Duration(12*3600+int64(h%(8*3600))) * time.Second // between 12:00 and 20:00 UTC
	source = rh.site.spikeSources[(h>>32)%uint64(len(rh.site.spikeSources))]
	return time.Unix(d*86400, 0).UTC().Add(at), source, true
}

// rate returns the visits per second starting at t, and the part of them
// that a spike brings from its source.
func (rh *rhythm) rate(t time.Time) (total, spike float64, spikeSource int) {
	base := rh.perSecond * rh.dayFactor(day(t)) * rh.byMinute[floorMod(floorDiv(t.Unix(), 60), minutesPerWeek)]
	for d := day(t); d >= day(t.Add(-spikeSpan)); d-- {
		start, src, ok := rh.spike(d)
		if !ok || t.Before(start) || t.Sub(start) >= spikeSpan {
			continue
		}
		spike += rh.perSecond * spikePeak * math.Exp(-float64(t.Sub(start))/float64(spikeFade))
		spikeSource = src
	}
	return base + spike, spike, spikeSource
}

// pickPlace picks where a visit starting at t comes from: places where it is
// day are likelier than places where it is night.
func (rh *rhythm) pickPlace(r *rand.Rand, t time.Time) int {
	if h := floorDiv(t.Unix(), 3600); h != rh.hour {
		mid := h*60 + 30
		w := make([]float64, len(rh.site.places))
		for i := range rh.site.places {
			p := &rh.site.places[i]
			w[i] = p.weight * rh.activity(p, mid)
		}
		rh.hour, rh.placePick = h, newWeighted(w)
	}
	return rh.placePick.pick(r)
}

// mix hashes a seed and two words into 64 well-mixed bits (SplitMix64's finalizer).
func mix(seed, a, b uint64) uint64 {
	z := seed ^ a*0x9e3779b97f4a7c15 ^ b*0xbf58476d1ce4e5b9
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// unit maps 64 random bits to [0, 1).
func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }

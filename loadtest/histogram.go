package loadtest

import (
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: latencies are recorded in microseconds from 1 µs to
// an hour with 3 significant digits, so every percentile is within 0.1%
// of the true value whatever the number of samples, in a fixed ~200 KiB.
const (
	histMin     = 1
	histMax     = int64(time.Hour / time.Microsecond)
	histSigFigs = 3
)

// Latency summarizes a set of durations, from an HDR histogram.
type Latency struct {
	// N is the number of samples.
	N int `json:"n"`
	// The percentiles and the largest sample; zero when N is 0.
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p99_9_ns"`
	Max  time.Duration `json:"max_ns"`
	Mean time.Duration `json:"mean_ns"`
}

// latency returns the percentiles of d.
func latency(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	h := hdrhistogram.New(histMin, histMax, histSigFigs)
	for _, v := range d {
		us := min(max(int64(v/time.Microsecond), histMin), histMax)
		_ = h.RecordValue(us) // in range by construction
	}
	at := func(p float64) time.Duration {
		return time.Duration(h.ValueAtPercentile(p)) * time.Microsecond
	}
	return Latency{
		N: len(d), P50: at(50), P90: at(90), P99: at(99), P999: at(99.9),
		Max: time.Duration(h.Max()) * time.Microsecond, Mean: time.Duration(h.Mean() * float64(time.Microsecond)),
	}
}

func (l Latency) String() string {
	if l.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %v  p90 %v  p99 %v  p99.9 %v  max %v  (n=%d)",
		round(l.P50), round(l.P90), round(l.P99), round(l.P999), round(l.Max), l.N)
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

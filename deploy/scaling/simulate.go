package scaling

import "math"

// Step is the state at the end of one simulated second.
type Step struct {
	T int
	// Arrivals is the traffic this second, mails/s.
	Arrivals float64
	// Replicas is the Deployment's pods (the scale's status replicas,
	// starting ones included); Ready, those consuming.
	Replicas, Ready int
	// Effective is the workers' worth the fleet can work at:
	// min(Ready, MaxAckPending / in-flight).
	Effective float64
	// Processed is the mail acked this second.
	Processed float64
	// Backlog is the mail accepted and waiting for a worker slot, whether
	// still in the stream or prefetched by a worker.
	Backlog float64
	// NumPending and NumAckPending are the consumer's counters; Lag, their
	// sum, KEDA's metric.
	NumPending, NumAckPending, Lag float64
}

// Result is a simulation's outcome.
type Result struct {
	// Params are the parameters simulated, defaults filled in.
	Params Params
	Steps  []Step
	// PeakReplicas is the most pods at once, first reached at PeakReplicasAt.
	PeakReplicas, PeakReplicasAt int
	// PeakEffective is the most workers' worth that worked at once.
	PeakEffective float64
	// PeakBacklog is the largest backlog, mails, at PeakBacklogAt.
	PeakBacklog   float64
	PeakBacklogAt int
	// UsefulWorkers is Params.UsefulWorkers: the fleet's useful size.
	UsefulWorkers int
	// BurstEnd is the first second after the burst.
	BurstEnd int
	// DrainSeconds is how long after BurstEnd the backlog first reached
	// zero (0 if it never built up); -1 if it did not within Duration.
	DrainSeconds int
	// RecoverySeconds is how long after the burst's start the backlog
	// was back to zero after its peak (0 if it never built up); -1 if it
	// was not within Duration.
	RecoverySeconds int
	// PeakWait is the longest a mail waited from arrival to ack, seconds,
	// first in first out, to the nearest second (mail processed in the
	// second it arrives waits 0). If some mail was still waiting at the
	// end, it is counted to the end.
	PeakWait int
	// PodSeconds is the pods summed over every second: the fleet's cost.
	PodSeconds int
	// FinalReplicas is the pod count at the end.
	FinalReplicas int
}

// drained is the backlog below which the queue counts as empty: less than
// one mail.
const drained = 1.0

// Simulate runs the model of p (package doc) for p.Duration seconds.
func Simulate(p Params) Result {
	p = p.WithDefaults()
	inFlight := float64(p.InFlight())
	fleetCap := float64(p.MaxAckPending) / inFlight // workers' worth MaxAckPending allows

	var readyAt []int // per pod, the second it starts consuming, oldest first
	for range p.InitialReplicas {
		readyAt = append(readyAt, 0)
	}
	scale := func(t, n int) {
		for len(readyAt) < n {
			readyAt = append(readyAt, t+p.StartupDelay)
		}
		if len(readyAt) > n {
			// The newest pods go first: not-ready ones before ready ones
			// (the ReplicaSet controller's deletion order).
			readyAt = readyAt[:n]
		}
	}

	h := &hpa{p: p}
	var (
		backlog, lag float64
		cachedLag    float64
		lastActive   = 0
		res          = Result{Params: p, UsefulWorkers: p.UsefulWorkers(), BurstEnd: p.Traffic.End(), DrainSeconds: -1}
		wasBacklog   bool
	)
	for t := range p.Duration {
		// Control loops act on what they observe: the lag at the end of
		// the previous second.
		observed := int64(math.Floor(lag))
		if t%p.PollingInterval == 0 {
			cachedLag = lag
			active := !p.ScaleToZero || observed > int64(p.ActivationLagThreshold)
			if active {
				lastActive = t
			}
			if p.ScaleToZero {
				switch {
				case active && len(readyAt) == 0:
					scale(t, 1)
				case !active && len(readyAt) > 0 && t-lastActive >= p.CooldownPeriod:
					scale(t, 0)
				}
			}
		}
		if t%p.SyncPeriod == 0 && len(readyAt) > 0 {
			metric := observed
			if p.UseCachedMetrics {
				metric = int64(math.Floor(cachedLag))
			}
			scale(t, h.sync(t, len(readyAt), metric))
		}

		ready := 0
		for _, at := range readyAt {
			if at <= t {
				ready++
			}
		}
		effective := math.Min(float64(ready), fleetCap)
		capacity := effective * p.Rate
		if p.StreamRate > 0 {
			capacity = math.Min(capacity, p.StreamRate)
		}
		arrivals := p.Traffic.Rate(t)
		avail := backlog + arrivals
		processed := math.Min(capacity, avail)
		backlog = avail - processed
		// By Little's law a worker at its full rate has Concurrency mails
		// in process; mail beyond that is backlog, some of it in the
		// workers' prefetch buffers.
		inProcess := 0.0
		if p.Rate > 0 {
			inProcess = processed / p.Rate * float64(p.Concurrency)
		}
		lag = inProcess + backlog
		ackPending := math.Min(lag, math.Min(float64(p.MaxAckPending), float64(ready)*inFlight))

		res.Steps = append(res.Steps, Step{
			T: t, Arrivals: arrivals, Replicas: len(readyAt), Ready: ready,
			Effective: effective, Processed: processed, Backlog: backlog,
			NumPending: lag - ackPending, NumAckPending: ackPending, Lag: lag,
		})
		if len(readyAt) > res.PeakReplicas {
			res.PeakReplicas, res.PeakReplicasAt = len(readyAt), t
		}
		if ready > 0 {
			// Workers' worth actually used, not merely allowed.
			res.PeakEffective = math.Max(res.PeakEffective, math.Min(effective, processed/p.Rate))
		}
		res.PodSeconds += len(readyAt)
		if backlog > res.PeakBacklog {
			res.PeakBacklog, res.PeakBacklogAt = backlog, t
		}
		if backlog >= drained {
			wasBacklog = true
		}
		if t >= res.BurstEnd && res.DrainSeconds < 0 && backlog < drained {
			if wasBacklog {
				res.DrainSeconds = t - res.BurstEnd
			} else {
				res.DrainSeconds = 0
			}
		}
	}
	res.FinalReplicas = len(readyAt)
	res.PeakWait = peakWait(res.Steps)
	res.RecoverySeconds = -1
	if !wasBacklog {
		res.RecoverySeconds = 0
	} else {
		for _, s := range res.Steps[res.PeakBacklogAt:] {
			if s.Backlog < drained {
				res.RecoverySeconds = max(0, s.T-p.Traffic.Start)
				break
			}
		}
	}
	return res
}

// peakWait is the longest time, FIFO, from a second's arrivals to the
// second their last mail was acked.
func peakWait(steps []Step) int {
	in := make([]float64, len(steps))
	out := make([]float64, len(steps))
	var a, d float64
	for i, s := range steps {
		a += s.Arrivals
		d += s.Processed
		in[i], out[i] = a, d
	}
	longest, s := 0, 0
	for t := range steps {
		for s < len(steps) && out[s] < in[t]-drained {
			s++
		}
		if s < t {
			s = t
		}
		longest = max(longest, s-t)
	}
	return longest
}

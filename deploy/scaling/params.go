package scaling

import (
	"math"
	"time"
)

// Measured figures, docs/performance.md ("A last run of the final tree",
// closed loop, 128 connections, one 2-core machine).
const (
	// MeasuredCPUPerMail is the worker's CPU per mail at saturation.
	MeasuredCPUPerMail = 341 * time.Microsecond
	// MeasuredOpenLoopCPUPerMail is the worker's CPU per mail in the open
	// loop at half the maximum: fewer mails share each batch and wake-up.
	MeasuredOpenLoopCPUPerMail = 546 * time.Microsecond
	// MeasuredRate is what one worker process (concurrency 64, prefetch 64)
	// reached end to end, mails/s, while sharing the two cores with
	// nats-server, the producer and the load test. It used 1,372 × 341 µs
	// = 0.47 cores for it: the limit was its neighbours, not the worker.
	MeasuredRate = 1372.0
	// MeasuredConsumeAckRate is the JetStream consume + ack ceiling of the
	// same run on that machine's disk (fsync always), msgs/s: a fleet-wide
	// bound, not a per-worker one (3,454–4,149/s in the other runs).
	MeasuredConsumeAckRate = 3722.0
)

// CPUBoundRate is the rate a worker cannot exceed with cores of CPU at
// cpuPerMail: cores / cpuPerMail. 1 core at 341 µs is 2,933 mails/s; at
// the open loop's 546 µs, 1,832 mails/s. It is an upper bound: it assumes
// the worker is never waiting on DNS, NATS or its outcome batch.
func CPUBoundRate(cores float64, cpuPerMail time.Duration) float64 {
	return cores / cpuPerMail.Seconds()
}

// DrainTarget is the default drain of RecommendedLagThreshold: the HPA's
// sync period. New workers arrive a sync period plus a start-up after the
// lag rises, so a fleet sized to clear its lag faster than that is sized for
// a backlog that is gone by the time it is ready: it overshoots (a 1 s
// target took the default burst to 50 pods, 15 s to 24, with the same
// longest wait; docs/scaling.md).
const DrainTarget = 15 * time.Second

// RecommendedLagThreshold is a lagThreshold for workers of rate mails/s
// holding inFlight mails each: the lag one worker clears in drain
// (rate × drain), and never less than 2 × inFlight. The HPA keeps about
// lagThreshold mails of lag per replica, so drain is the wait it lets a
// replica's queue build before it adds workers; and a saturated worker with
// no backlog already shows inFlight mails of lag (its num_ack_pending), so a
// threshold at or under inFlight scales the fleet up on in-flight mail alone.
func RecommendedLagThreshold(rate float64, inFlight int, drain time.Duration) int {
	t := int(math.Ceil(rate * drain.Seconds()))
	return max(t, 2*inFlight)
}

// SizedMaxAckPending is the consumer MaxAckPending that lets every one of
// maxReplicas workers hold its full in-flight: maxReplicas × (concurrency
// + prefetch).
func SizedMaxAckPending(maxReplicas, concurrency, prefetch int) int {
	return maxReplicas * (concurrency + prefetch)
}

// Burst is a traffic curve: Base mails/s, Peak mails/s for Length seconds
// from Start, Base again after.
type Burst struct {
	Base, Peak    float64
	Start, Length int
}

// Rate is the arrival rate at second t, mails/s.
func (b Burst) Rate(t int) float64 {
	if t >= b.Start && t < b.Start+b.Length {
		return b.Peak
	}
	return b.Base
}

// End is the first second after the burst.
func (b Burst) End() int { return b.Start + b.Length }

// DefaultBurst is the default scenario's traffic: 1,000 mails/s (a fleet
// of two workers at 36% of their rate) with a burst of 15,000 mails/s for
// five minutes from t = 120 s (11 workers at MeasuredRate).
var DefaultBurst = Burst{Base: 1000, Peak: 15000, Start: 120, Length: 300}

// PolicyType is an HPA scaling policy's type.
type PolicyType int

const (
	// Pods changes the replicas by Value pods per period.
	Pods PolicyType = iota
	// Percent changes the replicas by Value percent per period.
	Percent
)

// Policy is an HPA scaling policy (autoscaling/v2 HPAScalingPolicy).
type Policy struct {
	Type          PolicyType
	Value         int
	PeriodSeconds int
}

// SelectPolicy chooses among policies (autoscaling/v2 selectPolicy).
type SelectPolicy int

const (
	// MaxChange takes the policy allowing the largest change (the default).
	MaxChange SelectPolicy = iota
	// MinChange takes the policy allowing the smallest change.
	MinChange
	// Disabled allows no change in this direction.
	Disabled
)

// Rules are the HPA's scaling rules for one direction (autoscaling/v2
// HPAScalingRules). Rules with no Policies are replaced as a whole by the
// default of their direction, window included.
type Rules struct {
	StabilizationWindowSeconds int
	Policies                   []Policy
	Select                     SelectPolicy
}

// DefaultScaleUp is the HPA's default scale-up behavior: the larger of +4
// pods or +100% per 15 s, no stabilization (kubernetes
// pkg/apis/autoscaling/v2/defaults.go; "Default Behavior" in
// https://kubernetes.io/docs/concepts/workloads/autoscaling/horizontal-pod-autoscale/).
func DefaultScaleUp() Rules {
	return Rules{Policies: []Policy{{Pods, 4, 15}, {Percent, 100, 15}}}
}

// DefaultScaleDown is the HPA's default scale-down behavior: down to
// minReplicas (100% per 15 s) after a 300 s stabilization window
// (--horizontal-pod-autoscaler-downscale-stabilization).
func DefaultScaleDown() Rules {
	return Rules{StabilizationWindowSeconds: 300, Policies: []Policy{{Percent, 100, 15}}}
}

// Params configure a simulation. Every field has a usable default, taken
// where its zero value would mean nothing; all durations are in seconds.
type Params struct {
	// Traffic is the arrival curve. Nil means DefaultBurst; &Burst{}
	// means no mail at all.
	Traffic *Burst
	// Duration is how many seconds are simulated. Default 1,200.
	Duration int

	// Rate is what one ready worker processes, mails/s, given its full
	// in-flight. Default MeasuredRate (1,372): the measured end-to-end
	// figure of one worker with concurrency 64 and prefetch 64, a floor for
	// a pod with a 1-core CPU limit (it needed 0.47 cores for it), whose
	// CPU-bound ceiling is CPUBoundRate(1, MeasuredCPUPerMail) = 2,933.
	Rate float64
	// Concurrency and Prefetch are the worker's flags; their sum is its
	// in-flight, counted in num_ack_pending. Default 64 each: the worker's
	// defaults (32 × GOMAXPROCS, prefetch = concurrency) at GOMAXPROCS 2,
	// which Go gives a pod with a CPU limit of up to 2 cores (the limit is
	// rounded up, to at least 2: runtime/cgroup_linux.go).
	Concurrency, Prefetch int
	// MaxAckPending is the consumer's cap on mails in flight across all
	// workers. Default 1,000 (provision.Config, mailscope provision
	// --max-ack-pending).
	MaxAckPending int
	// StreamRate caps the fleet's mails/s (the stream's consume + ack
	// ceiling, e.g. MeasuredConsumeAckRate). Default 0: no cap.
	StreamRate float64

	// LagThreshold is the trigger's lagThreshold, the HPA's AverageValue
	// target. Default RecommendedLagThreshold(Rate, in-flight,
	// DrainTarget): 20,580 at the defaults.
	LagThreshold int
	// ActivationLagThreshold is the trigger's activationLagThreshold: KEDA
	// scales 0 -> 1 only while lag exceeds it. Default 0 (KEDA's).
	ActivationLagThreshold int
	// MinReplicas is minReplicaCount, unless ScaleToZero. Default 2
	// (deploy/k8s/base/worker-scaledobject.yaml).
	MinReplicas int
	// ScaleToZero models minReplicaCount: 0 (KEDA's default): KEDA
	// scales 0 <-> 1 on activation, the HPA 1 <-> N. MinReplicas is
	// then ignored.
	ScaleToZero bool
	// MaxReplicas is maxReplicaCount. Default 50
	// (deploy/k8s/base/worker-scaledobject.yaml; KEDA's default is 100).
	MaxReplicas int
	// InitialReplicas are ready at t = 0. Default the minimum (0 with
	// ScaleToZero).
	InitialReplicas int
	// PollingInterval is KEDA's pollingInterval. Default 30.
	PollingInterval int
	// CooldownPeriod is KEDA's cooldownPeriod (N -> 0). Default 300.
	CooldownPeriod int
	// UseCachedMetrics is the trigger's useCachedMetrics: the HPA then
	// sees the lag of KEDA's last poll, not of its own sync. Default false.
	UseCachedMetrics bool

	// SyncPeriod is the HPA's sync period. Default 15.
	SyncPeriod int
	// Tolerance is the HPA's tolerance. Default 0.1.
	Tolerance float64
	// ScaleUp and ScaleDown are the HPA's behavior. Default
	// DefaultScaleUp and DefaultScaleDown.
	ScaleUp, ScaleDown Rules

	// StartupDelay is how long a new pod takes to consume (schedule,
	// start, load the flag rules, /readyz). Default 20.
	StartupDelay int
}

// InFlight is one worker's mails in flight: Concurrency + Prefetch.
func (p Params) InFlight() int { return p.Concurrency + p.Prefetch }

// UsefulWorkers is how many workers MaxAckPending lets hold their full
// in-flight: MaxAckPending / InFlight, capped at MaxReplicas.
func (p Params) UsefulWorkers() int {
	return min(p.MaxAckPending/p.InFlight(), p.MaxReplicas)
}

// minReplicas is the replica count the HPA keeps (at least 1: KEDA sets
// the HPA's minReplicas so, and scales to 0 itself).
func (p Params) minReplicas() int {
	if p.ScaleToZero {
		return 1
	}
	return max(p.MinReplicas, 1)
}

// WithDefaults returns p with its zero fields set to their defaults.
func (p Params) WithDefaults() Params {
	if p.Traffic == nil {
		b := DefaultBurst
		p.Traffic = &b
	}
	if p.Duration <= 0 {
		p.Duration = 1200
	}
	if p.Rate <= 0 {
		p.Rate = MeasuredRate
	}
	if p.Concurrency <= 0 {
		p.Concurrency = 64
	}
	if p.Prefetch <= 0 {
		p.Prefetch = p.Concurrency
	}
	if p.MaxAckPending <= 0 {
		p.MaxAckPending = 1000
	}
	if p.LagThreshold <= 0 {
		p.LagThreshold = RecommendedLagThreshold(p.Rate, p.InFlight(), DrainTarget)
	}
	if p.MinReplicas <= 0 {
		p.MinReplicas = 2
	}
	if p.MaxReplicas <= 0 {
		p.MaxReplicas = 50
	}
	if p.MaxReplicas < p.minReplicas() {
		p.MaxReplicas = p.minReplicas()
	}
	if p.InitialReplicas <= 0 && !p.ScaleToZero {
		p.InitialReplicas = p.MinReplicas
	}
	p.InitialReplicas = min(p.InitialReplicas, p.MaxReplicas)
	if p.PollingInterval <= 0 {
		p.PollingInterval = 30
	}
	if p.CooldownPeriod <= 0 {
		p.CooldownPeriod = 300
	}
	if p.SyncPeriod <= 0 {
		p.SyncPeriod = 15
	}
	if p.Tolerance <= 0 {
		p.Tolerance = 0.1
	}
	if len(p.ScaleUp.Policies) == 0 {
		p.ScaleUp = DefaultScaleUp()
	}
	if len(p.ScaleDown.Policies) == 0 {
		p.ScaleDown = DefaultScaleDown()
	}
	if p.StartupDelay <= 0 {
		p.StartupDelay = 20
	}
	return p
}

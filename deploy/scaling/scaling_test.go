package scaling

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sized is the default scenario with MaxAckPending sized for the fleet.
func sized() Params {
	return Params{MaxAckPending: SizedMaxAckPending(50, 64, 64)}
}

// checkInvariants fails t for any step outside the model's bounds.
func checkInvariants(t *testing.T, r Result) {
	t.Helper()
	p := r.Params
	lo := p.MinReplicas
	if p.ScaleToZero {
		lo = 0
	}
	var in, out float64
	for _, s := range r.Steps {
		if s.Replicas < lo || s.Replicas > p.MaxReplicas {
			t.Fatalf("t=%d: %d replicas, outside [%d, %d]", s.T, s.Replicas, lo, p.MaxReplicas)
		}
		if s.Ready > s.Replicas {
			t.Fatalf("t=%d: %d ready of %d replicas", s.T, s.Ready, s.Replicas)
		}
		if s.Backlog < 0 || s.NumPending < 0 || s.NumAckPending < 0 {
			t.Fatalf("t=%d: negative queue: %+v", s.T, s)
		}
		if s.NumAckPending > float64(p.MaxAckPending)+1e-9 {
			t.Fatalf("t=%d: %.0f ack pending over MaxAckPending %d", s.T, s.NumAckPending, p.MaxAckPending)
		}
		if max := s.Effective * p.Rate; s.Processed > max+1e-6 {
			t.Fatalf("t=%d: processed %.0f/s over the fleet's %.0f/s", s.T, s.Processed, max)
		}
		in += s.Arrivals
		out += s.Processed
	}
	last := r.Steps[len(r.Steps)-1]
	if math.Abs(in-out-last.Backlog) > 1e-6*in+1e-6 {
		t.Fatalf("mail not conserved: %.0f in, %.0f out, %.0f left", in, out, last.Backlog)
	}
}

// TestScalingModel prints the default scenario, with MaxAckPending at the
// provisioner's 1,000 and sized for 50 workers (go test -v -run
// TestScalingModel ./deploy/scaling), and checks both.
func TestScalingModel(t *testing.T) {
	current := Simulate(Params{})
	big := Simulate(sized())
	t.Logf("default scenario, MaxAckPending %d:\n%s", current.Params.MaxAckPending, current.Table(30))
	t.Logf("default scenario, MaxAckPending %d:\n%s", big.Params.MaxAckPending, big.Table(30))
	t.Logf("side by side:\n%s", SideBySide(30, 900, current, big))
	checkInvariants(t, current)
	checkInvariants(t, big)

	for _, r := range []Result{current, big} {
		if r.DrainSeconds < 0 || r.Steps[len(r.Steps)-1].Backlog != 0 {
			t.Errorf("MaxAckPending %d: backlog not drained: %s", r.Params.MaxAckPending, r.Summary())
		}
		if r.FinalReplicas != r.Params.MinReplicas {
			t.Errorf("MaxAckPending %d: %d replicas at the end, want the minimum %d", r.Params.MaxAckPending, r.FinalReplicas, r.Params.MinReplicas)
		}
	}
	if current.RecoverySeconds <= big.RecoverySeconds || current.DrainSeconds <= big.DrainSeconds {
		t.Errorf("MaxAckPending 1000 recovered in %d s (drain %d s), sized in %d s (drain %d s): want the capped fleet slower",
			current.RecoverySeconds, current.DrainSeconds, big.RecoverySeconds, big.DrainSeconds)
	}
}

// TestMaxAckPendingCapsFleet: with MaxAckPending 1,000 and 128 in flight
// per worker, 7 workers hold their full in-flight and the fleet never works
// at more than 7.8 workers' worth, however many pods the lag brings.
func TestMaxAckPendingCapsFleet(t *testing.T) {
	r := Simulate(Params{MaxAckPending: 1000, Concurrency: 64, Prefetch: 64})
	if r.UsefulWorkers != 7 {
		t.Errorf("useful workers %d, want 7", r.UsefulWorkers)
	}
	if got := int(r.PeakEffective); got != 7 {
		t.Errorf("peak working %.2f workers' worth, want 7.x (1000/128 = 7.8)", r.PeakEffective)
	}
	if r.PeakReplicas <= 7 {
		t.Errorf("peak %d pods: the lag should have scaled past the useful 7", r.PeakReplicas)
	}
	for _, s := range r.Steps {
		if s.Processed > 1000.0/128*r.Params.Rate+1e-6 {
			t.Fatalf("t=%d: %.0f mails/s, over MaxAckPending's %.0f", s.T, s.Processed, 1000.0/128*r.Params.Rate)
		}
	}
	b := Simulate(sized())
	if b.UsefulWorkers != 50 || b.PeakEffective <= 7.9 {
		t.Errorf("sized MaxAckPending: useful %d, peak working %.1f", b.UsefulWorkers, b.PeakEffective)
	}
}

// TestDrainsWhenCapacityAllows: a burst within the fleet's capacity leaves
// no backlog for long, at any lagThreshold.
func TestDrainsWhenCapacityAllows(t *testing.T) {
	for _, threshold := range []int{256, 1372, 20580, 82320} {
		r := Simulate(Params{LagThreshold: threshold, MaxAckPending: 6400, Traffic: &Burst{Base: 500, Peak: 8000, Start: 60, Length: 600}})
		checkInvariants(t, r)
		if r.DrainSeconds < 0 || r.RecoverySeconds < 0 {
			t.Errorf("lagThreshold %d: not drained: %s", threshold, r.Summary())
		}
	}
	// More than 50 workers can do: the backlog grows for the whole burst,
	// then drains.
	r := Simulate(Params{MaxAckPending: 6400, Traffic: &Burst{Base: 1000, Peak: 80000, Start: 60, Length: 120}})
	checkInvariants(t, r)
	if r.PeakReplicas != 50 || r.DrainSeconds <= 0 {
		t.Errorf("overload: %s", r.Summary())
	}
}

// TestActivation: with minReplicaCount 0 no lag keeps no worker; lag over
// activationLagThreshold wakes one at KEDA's next poll; lag at or under it
// never does, so that mail waits for more mail.
func TestActivation(t *testing.T) {
	r := Simulate(Params{ScaleToZero: true, Traffic: &Burst{}, Duration: 900})
	checkInvariants(t, r)
	if r.PeakReplicas != 0 {
		t.Errorf("no mail: peak %d replicas, want 0", r.PeakReplicas)
	}

	five := &Burst{Peak: 5, Start: 10, Length: 1} // 5 mails at t = 10
	r = Simulate(Params{ScaleToZero: true, Traffic: five, Duration: 900})
	checkInvariants(t, r)
	if got := r.Steps[30].Replicas; got != 1 {
		t.Errorf("activation 0: %d replicas at the poll of t = 30, want 1", got)
	}
	if r.Steps[49].Processed != 0 || r.Steps[50].Processed != 5 {
		t.Errorf("activation 0: the pod should consume at t = 30 + 20 s start-up")
	}
	if r.FinalReplicas != 0 {
		t.Errorf("activation 0: %d replicas after the cooldown, want 0", r.FinalReplicas)
	}

	r = Simulate(Params{ScaleToZero: true, ActivationLagThreshold: 5, Traffic: five, Duration: 900})
	checkInvariants(t, r)
	if r.PeakReplicas != 0 || r.Steps[len(r.Steps)-1].Backlog != 5 {
		t.Errorf("activation 5, lag 5: %d replicas, backlog %.0f: want 0 and 5 stranded", r.PeakReplicas, r.Steps[len(r.Steps)-1].Backlog)
	}

	// With minReplicaCount >= 1 the scaler is always active: the
	// threshold changes nothing.
	a := Simulate(Params{ActivationLagThreshold: 1 << 30})
	b := Simulate(Params{})
	if !reflect.DeepEqual(a.Steps, b.Steps) {
		t.Errorf("activationLagThreshold changed a fleet with minReplicaCount 2")
	}
}

// TestLagThresholdOverInFlight: a saturated fleet with full prefetch
// buffers shows N × in-flight of lag; a threshold at or under the
// in-flight asks for more workers on that alone.
func TestLagThresholdOverInFlight(t *testing.T) {
	const inFlight = 128
	for _, n := range []int{2, 7, 20, 50} {
		lag := int64(n * inFlight)
		if got := metricReplicas(lag, 100, n, 0.1); got <= n {
			t.Errorf("lagThreshold 100 (what deploy/k8s had before), %d workers' in-flight: %d replicas, want more than %d", n, got, n)
		}
		threshold := RecommendedLagThreshold(MeasuredRate, inFlight, DrainTarget)
		if got := metricReplicas(lag, threshold, n, 0.1); got >= n {
			t.Errorf("lagThreshold %d, %d workers' in-flight: %d replicas, want fewer than %d", threshold, n, got, n)
		}
	}
	if got := RecommendedLagThreshold(MeasuredRate, inFlight, DrainTarget); got != 20580 {
		t.Errorf("RecommendedLagThreshold = %d, want 1,372 × 15 = 20,580", got)
	}
	if got := RecommendedLagThreshold(MeasuredRate, inFlight, 10*time.Millisecond); got != 2*inFlight {
		t.Errorf("a tiny drain target gave %d, want the floor 2 × in-flight = %d", got, 2*inFlight)
	}
}

// TestHPAAlgorithm pins the pieces of the HPA the model copies.
func TestHPAAlgorithm(t *testing.T) {
	// Tolerance: within 10% of the target per pod, no change.
	if got := metricReplicas(10500, 1000, 10, 0.1); got != 10 {
		t.Errorf("ratio 1.05: %d, want 10 (within tolerance)", got)
	}
	if got := metricReplicas(11500, 1000, 10, 0.1); got != 12 {
		t.Errorf("ratio 1.15: %d, want ceil(11.5) = 12", got)
	}
	if got := metricReplicas(0, 1000, 10, 0.1); got != 0 {
		t.Errorf("no lag: %d, want 0", got)
	}

	// Default scale-up from 2 under a huge lag: +4, then doubling, per
	// 15 s sync, up to max.
	h := &hpa{p: Params{MinReplicas: 2}.WithDefaults()}
	want := []int{6, 12, 24, 48, 50, 50}
	cur := 2
	for i, w := range want {
		cur = h.sync(i*15, cur, 1e9)
		if cur != w {
			t.Fatalf("sync %d: %d replicas, want %d", i, cur, w)
		}
	}
	// Scale-down waits until the last high recommendation (t = 75) is
	// 300 s old, then goes to the minimum at once (100% per 15 s).
	last := (len(want) - 1) * 15
	for s := last + 15; s < last+300; s += 15 {
		if cur = h.sync(s, cur, 0); cur != 50 {
			t.Fatalf("t=%d: %d replicas inside the stabilization window, want 50", s, cur)
		}
	}
	if cur = h.sync(last+300, cur, 0); cur != 2 {
		t.Errorf("t=%d, after the window: %d replicas, want 2", last+300, cur)
	}
}

// TestStreamRateCaps: the stream's consume + ack ceiling bounds the fleet
// whatever its size.
func TestStreamRateCaps(t *testing.T) {
	r := Simulate(Params{MaxAckPending: 6400, StreamRate: MeasuredConsumeAckRate})
	checkInvariants(t, r)
	for _, s := range r.Steps {
		if s.Processed > MeasuredConsumeAckRate+1e-6 {
			t.Fatalf("t=%d: %.0f/s over the stream's %.0f/s", s.T, s.Processed, MeasuredConsumeAckRate)
		}
	}
}

// TestCachedMetricsNoFaster: the HPA reading KEDA's cached lag never
// scales up sooner than reading it fresh.
func TestCachedMetricsNoFaster(t *testing.T) {
	first := func(r Result) int {
		for _, s := range r.Steps {
			if s.Replicas > r.Params.MinReplicas {
				return s.T
			}
		}
		return -1
	}
	fresh, cached := Simulate(Params{}), Simulate(Params{UseCachedMetrics: true})
	if first(cached) < first(fresh) {
		t.Errorf("cached metrics scaled up at %d s, fresh at %d s", first(cached), first(fresh))
	}
}

func TestDeterministic(t *testing.T) {
	if a, b := Simulate(Params{}), Simulate(Params{}); !reflect.DeepEqual(a, b) {
		t.Error("two runs of the same parameters differ")
	}
}

func TestCPUBoundRate(t *testing.T) {
	if got := CPUBoundRate(1, MeasuredCPUPerMail); math.Abs(got-2932.55) > 0.1 {
		t.Errorf("1 core at 341 µs: %.2f mails/s, want 2,932.55", got)
	}
	if got := SizedMaxAckPending(50, 64, 64); got != 6400 {
		t.Errorf("SizedMaxAckPending(50, 64, 64) = %d, want 6,400", got)
	}
}

// TestLagThresholdSweep prints, for bursts of several heights, what the
// lagThreshold's drain target buys (docs/scaling.md), and checks that a
// longer target never needs more pods.
func TestLagThresholdSweep(t *testing.T) {
	var b strings.Builder
	b.WriteString("| burst mail/s | drain target | lagThreshold | peak pods | longest wait | backlog gone after start | pod-seconds |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, peak := range []float64{3000, 5000, 15000, 40000} {
		prev := math.MaxInt
		for _, d := range []time.Duration{time.Second, 5 * time.Second, DrainTarget, 30 * time.Second, 60 * time.Second} {
			threshold := RecommendedLagThreshold(MeasuredRate, 128, d)
			r := Simulate(Params{LagThreshold: threshold, MaxAckPending: 6400, Traffic: &Burst{Base: 1000, Peak: peak, Start: 120, Length: 300}})
			checkInvariants(t, r)
			fmt.Fprintf(&b, "| %.0f | %.0f s | %d | %d | %d s | %d s | %d |\n",
				peak, d.Seconds(), threshold, r.PeakReplicas, r.PeakWait, r.RecoverySeconds, r.PodSeconds)
			if r.PeakReplicas > prev {
				t.Errorf("burst %.0f: drain target %v needed %d pods, more than the shorter target's %d", peak, d, r.PeakReplicas, prev)
			}
			prev = r.PeakReplicas
		}
	}
	t.Logf("MaxAckPending 6400, default burst shape (1,000/s, the peak for 300 s from t = 120 s):\n%s", b.String())
}

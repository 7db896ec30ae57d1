package scaling

import "math"

// hpa is the state the HPA controller keeps between syncs for one HPA:
// its past recommendations and scale events, as in
// kubernetes/pkg/controller/podautoscaler/horizontal.go.
type hpa struct {
	p               Params
	recommendations []event // t, unstabilized recommendation
	ups, downs      []event // t, replicas added or removed
}

type event struct{ t, n int }

// metricReplicas is GetExternalPerPodMetricReplicas: the replica count an
// AverageValue target asks for, given the metric (the lag, an integer as
// KEDA reports it) and the scale's status replicas.
func metricReplicas(lag int64, target int, replicas int, tolerance float64) int {
	ratio := float64(lag) / (float64(target) * float64(replicas))
	if math.Abs(1-ratio) <= tolerance {
		return replicas
	}
	return int((lag + int64(target) - 1) / int64(target))
}

// sync is one reconcile of the HPA at second t with current replicas and
// the metric lag; it returns the replicas to set.
func (h *hpa) sync(t, current int, lag int64) int {
	minR, maxR := h.p.minReplicas(), h.p.MaxReplicas
	var desired int
	switch {
	case current > maxR:
		desired = maxR
	case current < minR:
		desired = minR
	default:
		rec := metricReplicas(lag, h.p.LagThreshold, current, h.p.Tolerance)
		desired = h.normalize(t, current, rec, minR, maxR)
	}
	if desired > current {
		h.ups = append(h.ups, event{t, desired - current})
	} else if desired < current {
		h.downs = append(h.downs, event{t, current - desired})
	}
	return desired
}

// normalize is normalizeDesiredReplicasWithBehaviors: stabilize, then
// limit the rate of change.
func (h *hpa) normalize(t, current, rec, minR, maxR int) int {
	// stabilizeRecommendationWithBehaviors: the lowest recommendation of
	// the scale-up window and the highest of the scale-down window bound
	// the new one; the unstabilized recommendation is recorded.
	up, down := rec, rec
	upCut := t - h.p.ScaleUp.StabilizationWindowSeconds
	downCut := t - h.p.ScaleDown.StabilizationWindowSeconds
	kept := h.recommendations[:0]
	for _, r := range h.recommendations {
		if r.t > upCut {
			up = min(up, r.n)
		}
		if r.t > downCut {
			down = max(down, r.n)
		}
		if r.t > upCut || r.t > downCut {
			kept = append(kept, r)
		}
	}
	h.recommendations = append(kept, event{t, rec})
	stabilized := current
	if stabilized < up {
		stabilized = up
	}
	if stabilized > down {
		stabilized = down
	}

	// convertDesiredReplicasWithBehaviorRate.
	switch {
	case stabilized > current:
		limit := max(h.scaleUpLimit(t, current), current)
		allowed := min(maxR, limit)
		return min(stabilized, allowed)
	case stabilized < current:
		limit := min(h.scaleDownLimit(t, current), current)
		allowed := max(minR, limit)
		return max(stabilized, allowed)
	}
	return stabilized
}

// changed sums the events of the last period seconds before t
// (getReplicasChangePerPeriod: timestamps after t - period).
func changed(events []event, t, period int) int {
	n := 0
	for _, e := range events {
		if e.t > t-period {
			n += e.n
		}
	}
	return n
}

// scaleUpLimit is calculateScaleUpLimitWithScalingRules.
func (h *hpa) scaleUpLimit(t, current int) int {
	r := h.p.ScaleUp
	if r.Select == Disabled {
		return current
	}
	result := math.MinInt
	if r.Select == MinChange {
		result = math.MaxInt
	}
	for _, pol := range r.Policies {
		start := current - changed(h.ups, t, pol.PeriodSeconds) + changed(h.downs, t, pol.PeriodSeconds)
		var proposed int
		if pol.Type == Pods {
			proposed = start + pol.Value
		} else {
			proposed = int(math.Ceil(float64(start) * (1 + float64(pol.Value)/100)))
		}
		if r.Select == MinChange {
			result = min(result, proposed)
		} else {
			result = max(result, proposed)
		}
	}
	return result
}

// scaleDownLimit is calculateScaleDownLimitWithBehaviors.
func (h *hpa) scaleDownLimit(t, current int) int {
	r := h.p.ScaleDown
	if r.Select == Disabled {
		return current
	}
	result := math.MaxInt
	if r.Select == MinChange {
		result = math.MinInt
	}
	for _, pol := range r.Policies {
		start := current - changed(h.ups, t, pol.PeriodSeconds) + changed(h.downs, t, pol.PeriodSeconds)
		var proposed int
		if pol.Type == Pods {
			proposed = start - pol.Value
		} else {
			proposed = int(float64(start) * (1 - float64(pol.Value)/100))
		}
		if r.Select == MinChange {
			result = max(result, proposed)
		} else {
			result = min(result, proposed)
		}
	}
	return result
}

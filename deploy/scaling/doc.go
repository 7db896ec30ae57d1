// Package scaling is a model of how KEDA and the Kubernetes Horizontal Pod
// Autoscaler scale mailscope workers on the lag of the `workers` consumer
// of stream MAIL, simulated in steps of one second against a traffic curve
// with a burst. It answers how many workers a burst brings, how long the
// backlog takes to drain, and what the consumer's MaxAckPending does to both.
//
// The model, step by step (Simulate):
//
//   - Mail arrives at Burst.Rate(t) mails/s. A ready worker processes up to
//     Params.Rate mails/s and holds up to Concurrency + Prefetch mails
//     delivered and not yet acked (num_ack_pending). The consumer's
//     MaxAckPending caps the fleet's mails in flight, so the fleet works at
//     most MaxAckPending / (Concurrency + Prefetch) workers' worth
//     (Little's law: a worker needs its full in-flight for its full rate).
//   - KEDA's nats-jetstream scaler reports lag = num_pending +
//     num_ack_pending (kedacore/keda pkg/scalers/nats_jetstream_scaler.go,
//     getMaxMsgLag) and is active while lag > activationLagThreshold
//     (https://keda.sh/docs/2.19/scalers/nats-jetstream/; "Activating and
//     Scaling thresholds" in https://keda.sh/docs/latest/concepts/scaling-deployments/).
//     Every pollingInterval (default 30 s) KEDA checks activation and
//     scales 0 -> minReplicaCount (at least 1), and N -> 0 once inactive for
//     cooldownPeriod (default 300 s); with minReplicaCount >= 1 the scaler
//     is always active and the activation threshold is ignored
//     (https://keda.sh/docs/latest/reference/scaledobject-spec/).
//   - 1 <-> N belongs to the HPA KEDA creates, with an External metric of
//     target type AverageValue = lagThreshold. Every sync period (15 s,
//     kube-controller-manager --horizontal-pod-autoscaler-sync-period) it
//     asks KEDA's metrics server, which by default queries the scaler afresh
//     (useCachedMetrics: false; "Caching Metrics" in the KEDA docs), and
//     computes desired = ceil(lag / lagThreshold) unless lag /
//     (lagThreshold × replicas) is within the 10% tolerance of 1
//     (ReplicaCalculator.GetExternalPerPodMetricReplicas in
//     kubernetes/pkg/controller/podautoscaler/replica_calculator.go;
//     https://kubernetes.io/docs/concepts/workloads/autoscaling/horizontal-pod-autoscale/,
//     "Algorithm details"). replicas there is the scale's status replicas:
//     pods still starting count.
//   - The HPA's default behavior (kubernetes pkg/apis/autoscaling/v2/defaults.go):
//     scale up by the larger of +4 pods or +100% per 15 s with no
//     stabilization; scale down by up to 100% per 15 s after a 300 s
//     stabilization window, which takes the highest recommendation of the
//     window (normalizeDesiredReplicasWithBehaviors,
//     stabilizeRecommendationWithBehaviors and
//     calculateScaleUpLimitWithScalingRules in
//     kubernetes/pkg/controller/podautoscaler/horizontal.go).
//   - A new pod consumes after Params.StartupDelay; a removed pod hands its
//     prefetched mail back at once (workers: release on shutdown), so it
//     returns to the backlog.
//
// Not modelled: KEDA's fallback (replicas when the scaler fails
// failureThreshold times: it needs the NATS monitoring endpoint to fail,
// which this model never does); the nats-server side, unless
// Params.StreamRate sets the stream's consume + ack ceiling; cluster
// autoscaling (a pod is assumed to find a node within StartupDelay);
// redeliveries. Everything is deterministic: no clock, no randomness.
package scaling

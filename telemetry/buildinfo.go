package telemetry

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailscope/mailscope/version"
)

// buildInfo is the gauge mailscope_build_info, always 1, whose labels say
// what runs: version ([version.Version]), revision (the VCS revision the
// Go toolchain stamped, with "-dirty" for a modified tree; "unknown" when
// the build has none, as with -buildvcs=false) and go_version.
func buildInfo() prometheus.Collector {
	revision, goVersion := "unknown", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			revision = rev
			if modified == "true" {
				revision += "-dirty"
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mailscope_build_info",
		Help: "1, labelled with the version, VCS revision and Go version of the running build",
		ConstLabels: prometheus.Labels{
			"version": version.Version, "revision": revision, "go_version": goVersion,
		},
	})
	g.Set(1)
	return g
}

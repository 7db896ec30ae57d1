// Package version holds the release of this build, so that every package
// (the workers' outcomes and release: scopes, the telemetry's
// service.version and build info, the version command) reports the same
// one without depending on each other.
package version

// Version is the release of this build, reported in outcomes, matched by
// release: scopes and exported as service.version and in
// mailscope_build_info. Default "dev"; set at build time with
// -ldflags "-X github.com/mailscope/mailscope/version.Version=v1.2.3".
var Version = "dev"

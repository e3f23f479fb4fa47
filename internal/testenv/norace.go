//go:build !race

package testenv

// raceEnabled reports whether the test binary is built with -race; the zkv
// binaries are then built with -race too.
const raceEnabled = false

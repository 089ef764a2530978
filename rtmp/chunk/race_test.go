//go:build race

package chunk

// raceEnabled: under the race detector sync.Pool drops some of what it is
// given, so pooled buffers allocate now and then.
const raceEnabled = true

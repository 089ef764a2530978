package main

import (
	"encoding/binary"
	"slices"
	"time"
)

// Latency stamps. With latency probes on (-latency-probes, on by default
// with -server cluster), the publisher writes the wall-clock time at which
// it hands each video frame to the kernel into the frame's coded data, just
// after the NAL unit header:
//
//	offset 10: "RBTS" (4 bytes), then the Unix time in nanoseconds (8 bytes,
//	big-endian)
//
// A probe player parses every message and, for each stamped video frame,
// takes receive time − stamp: publisher write → player read, on the one
// clock of the machine, so valid over loopback. Servers relay the coded
// data untouched.
const (
	stampOffset = videoHeaderLen + naluPrefixLen + 1
	stampMagic  = "RBTS"
	stampLen    = len(stampMagic) + 8
)

// stampFrame returns a copy of the video payload p with t stamped into it;
// p itself (shared by every frame of its kind) is not modified. A payload
// too short for a stamp is returned as is.
func stampFrame(p []byte, t time.Time) []byte {
	if len(p) < stampOffset+stampLen {
		return p
	}
	b := slices.Clone(p)
	copy(b[stampOffset:], stampMagic)
	binary.BigEndian.PutUint64(b[stampOffset+len(stampMagic):], uint64(t.UnixNano()))
	return b
}

// readStamp returns the time stamped into a video payload by stampFrame,
// and false when it carries none.
func readStamp(p []byte) (time.Time, bool) {
	if len(p) < stampOffset+stampLen || string(p[stampOffset:stampOffset+len(stampMagic)]) != stampMagic {
		return time.Time{}, false
	}
	ns := binary.BigEndian.Uint64(p[stampOffset+len(stampMagic):])
	if ns == 0 || ns > 1<<62 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(ns)), true
}

// lagSample is one stamped frame a probe received.
type lagSample struct {
	at  time.Time     // when the probe read it
	lag time.Duration // at − the publisher's stamp
}

// lagStats summarises publisher → player latencies in milliseconds.
type lagStats struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// summarizeLag returns nearest-rank percentiles of the samples read within
// [from, to].
func summarizeLag(samples []lagSample, from, to time.Time) lagStats {
	var ds []time.Duration
	for _, s := range samples {
		if !s.at.Before(from) && !s.at.After(to) {
			ds = append(ds, s.lag)
		}
	}
	if len(ds) == 0 {
		return lagStats{}
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return lagStats{
		N:   len(ds),
		P50: ms(ds[rank(len(ds), 50)]),
		P95: ms(ds[rank(len(ds), 95)]),
		P99: ms(ds[rank(len(ds), 99)]),
		Max: ms(ds[len(ds)-1]),
	}
}

// probeIndexes picks k of n players, spread evenly over the connect order
// (the first player among them), to be latency probes.
func probeIndexes(n, k int) map[int]bool {
	k = min(k, n)
	out := make(map[int]bool, max(k, 0))
	for i := range max(k, 0) {
		out[i*n/k] = true
	}
	return out
}

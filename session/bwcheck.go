package session

import (
	"math"
	"sync/atomic"
	"time"
)

// Native bandwidth detection, as FMS's: a client calling checkBandwidth
// gets onBWCheck calls carrying growing payloads, answers each with
// _result, and finally gets onBWDone(kbitDown, deltaDown, deltaTime,
// latency):
//
//	latency    round trip of an empty onBWCheck, milliseconds
//	deltaDown  kilobits the server wrote during the payload bursts
//	deltaTime  seconds the bursts took, less one latency per burst
//	kbitDown   deltaDown / deltaTime, rounded
const (
	bwMaxWait     = 2 * time.Second // stop sending bursts after this
	bwEnoughTime  = 500 * time.Millisecond
	bwMaxBursts   = 6
	bwFirstBurstN = 1200 // numbers in the first payload, as FMS's sample
)

// bwPayload returns an array of n numbers.
func bwPayload(n int) []any {
	p := make([]any, n)
	for i := range p {
		p[i] = float64(i)*1.1 + 0.5
	}
	return p
}

// bwCheck is one running bandwidth check.
type bwCheck struct {
	c        *Client
	started  time.Time // of the empty probe
	latency  time.Duration
	burstAt  time.Time // first burst sent
	bytesAt  uint64
	bursts   int
	n        int // numbers in the next payload
	finished atomic.Bool
}

// checkBandwidth starts the native check unless one is running.
func (c *Client) checkBandwidth() {
	if !c.bwRunning.CompareAndSwap(false, true) {
		return
	}
	b := &bwCheck{c: c, started: time.Now(), n: bwFirstBurstN}
	c.Call("onBWCheck", []any{""}, b.probed)
}

func (b *bwCheck) fail(err error) {
	b.c.bwRunning.Store(false)
	b.c.log.Debug("bandwidth check failed", "err", err.Error())
}

func (b *bwCheck) probed(_ any, err error) {
	if err != nil {
		b.fail(err)
		return
	}
	b.latency = time.Since(b.started)
	b.burstAt = time.Now()
	b.bytesAt = b.c.t.BytesWritten()
	b.burst()
}

func (b *bwCheck) burst() {
	b.bursts++
	p := bwPayload(b.n)
	b.n *= 2
	b.c.Call("onBWCheck", []any{p}, b.answered)
}

func (b *bwCheck) answered(_ any, err error) {
	if err != nil {
		b.fail(err)
		return
	}
	took := time.Since(b.burstAt)
	if took < bwEnoughTime && b.bursts < bwMaxBursts && time.Since(b.started) < bwMaxWait {
		b.burst()
		return
	}
	b.done(took)
}

func (b *bwCheck) done(took time.Duration) {
	if !b.finished.CompareAndSwap(false, true) {
		return
	}
	c := b.c
	kbit := float64(c.t.BytesWritten()-b.bytesAt) * 8 / 1000
	latencyMS := float64(b.latency.Milliseconds())
	secs := (took - time.Duration(b.bursts)*b.latency).Seconds()
	if secs <= 0.001 {
		secs = 0.001
	}
	kbitDown := math.Round(kbit / secs)
	c.Call("onBWDone", []any{kbitDown, math.Round(kbit*10) / 10, math.Round(secs*1000) / 1000, latencyMS}, nil)
	c.bwRunning.Store(false)
	c.log.Debug("bandwidth check done", "kbit_down", kbitDown, "latency_ms", latencyMS, "bursts", b.bursts)
}

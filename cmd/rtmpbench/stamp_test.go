package main

import (
	"bytes"
	"testing"
	"time"
)

func TestStampRoundTrip(t *testing.T) {
	plan, err := planStream(232000, 64000, 25, time.Second, 5)
	if err != nil {
		t.Fatal(err)
	}
	pl := buildPayloads(plan)
	orig := bytes.Clone(pl.inter)
	now := time.Unix(1765152000, 123456789)
	b := stampFrame(pl.inter, now)
	if !bytes.Equal(pl.inter, orig) {
		t.Fatal("stampFrame modified the shared payload")
	}
	if len(b) != len(orig) || !bytes.Equal(b[:stampOffset], orig[:stampOffset]) || !bytes.Equal(b[stampOffset+stampLen:], orig[stampOffset+stampLen:]) {
		t.Fatal("stampFrame changed more than the stamp")
	}
	if isKeyframe(b) {
		t.Fatal("an inter frame became a keyframe")
	}
	got, ok := readStamp(b)
	if !ok || !got.Equal(now) {
		t.Fatalf("readStamp = %v, %v; want %v", got, ok, now)
	}
	k := stampFrame(pl.key, now)
	if !isKeyframe(k) {
		t.Fatal("a stamped keyframe is no longer a keyframe")
	}
	if got, ok := readStamp(k); !ok || !got.Equal(now) {
		t.Fatalf("keyframe readStamp = %v, %v", got, ok)
	}
}

func TestReadStampRejects(t *testing.T) {
	plan, _ := planStream(232000, 64000, 25, time.Second, 5)
	pl := buildPayloads(plan)
	if _, ok := readStamp(pl.inter); ok {
		t.Error("an unstamped frame has a stamp")
	}
	if _, ok := readStamp(pl.avcHeader[:5]); ok {
		t.Error("a short payload has a stamp")
	}
	short := make([]byte, stampOffset+stampLen-1)
	if b := stampFrame(short, time.Now()); &b[0] != &short[0] {
		t.Error("a payload too short for a stamp was copied")
	}
	zero := make([]byte, 40)
	copy(zero[stampOffset:], stampMagic)
	if _, ok := readStamp(zero); ok {
		t.Error("a zero time counts as a stamp")
	}
}

func TestSummarizeLag(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var s []lagSample
	for i := 1; i <= 100; i++ {
		s = append(s, lagSample{at: t0.Add(time.Duration(i) * time.Second), lag: time.Duration(i) * time.Millisecond})
	}
	// Outside the window: ignored.
	s = append(s, lagSample{at: t0, lag: time.Hour}, lagSample{at: t0.Add(200 * time.Second), lag: time.Hour})
	got := summarizeLag(s, t0.Add(time.Second), t0.Add(100*time.Second))
	want := lagStats{N: 100, P50: 50, P95: 95, P99: 99, Max: 100}
	if got != want {
		t.Fatalf("summarizeLag = %+v, want %+v", got, want)
	}
	if got := summarizeLag(nil, t0, t0); got != (lagStats{}) {
		t.Fatalf("no samples: %+v", got)
	}
}

func TestProbeIndexes(t *testing.T) {
	got := probeIndexes(100, 10)
	if len(got) != 10 || !got[0] || !got[90] || got[95] {
		t.Fatalf("probeIndexes(100, 10) = %v", got)
	}
	if got := probeIndexes(3, 10); len(got) != 3 {
		t.Fatalf("probeIndexes(3, 10) = %v", got)
	}
	if got := probeIndexes(100, 0); len(got) != 0 {
		t.Fatalf("probeIndexes(100, 0) = %v", got)
	}
}

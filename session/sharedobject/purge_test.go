package sharedobject_test

import (
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/session/sharedobject"
)

// testConfig is the core's default configuration (session.Config) with
// maxProps slots at most.
func testConfig(t *testing.T, maxProps int) sharedobject.Config {
	return sharedobject.Config{
		DataDir:       t.TempDir(),
		SyncInterval:  20 * time.Millisecond,
		SaveInterval:  time.Second,
		MaxObjects:    1000,
		MaxSize:       1 << 20,
		MaxProperties: maxProps,
	}
}

// Deleted slots are recorded with the version of their deletion, bounded
// by MaxProperties; Purge drops those older than its version.
func TestSharedObjectDeletedRecord(t *testing.T) {
	r := sharedobject.NewRegistry(testConfig(t, 4), "app", "inst", slog.New(slog.NewTextHandler(io.Discard, nil)))
	so, err := r.Acquire("x", false)
	if err != nil {
		t.Fatal(err)
	}
	defer so.Release()
	step := func(k string, del bool) {
		t.Helper()
		if del {
			err = so.Delete(k)
		} else {
			err = so.Set(k, 1.0)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := so.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		step(k, false) // versions 1..4
	}
	step("nosuch", true) // not a slot: no record (version 5)
	for _, k := range []string{"a", "b", "c"} {
		step(k, true) // a at 6, b at 7, c at 8
	}
	if d := so.DeletedNames(); !slices.Equal(d, []string{"a", "b", "c"}) {
		t.Fatalf("deleted %v", d)
	}
	if v, ok := so.DeletedVersion("c"); !ok || v != 8 {
		t.Errorf("c deleted at %d %v, want 8", v, ok)
	}
	if n, err := so.Purge(7); err != nil || n != 1 {
		t.Errorf("Purge(7) = %d %v, want 1 (a)", n, err)
	}
	// Bound: 4 slots. d deleted makes 3 records; set e..g and delete them.
	step("d", true)
	for _, k := range []string{"e", "f"} {
		step(k, false)
		step(k, true)
	}
	if d := so.DeletedNames(); len(d) > 4 || !slices.Contains(d, "f") {
		t.Errorf("records past the bound, or the newest dropped: %v", d)
	}
	if err := so.Clear(); err != nil {
		t.Fatal(err)
	}
	if d := so.DeletedNames(); len(d) != 0 {
		t.Errorf("after Clear: %v", d)
	}
}

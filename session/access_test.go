package session

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func TestAccessList(t *testing.T) {
	for _, tc := range []struct {
		acl, norm string
		allow     []string
		deny      []string
	}{
		{"/", "/", []string{"a", "a/b", "x"}, nil},
		{"", "", nil, []string{"a", "x/y"}},
		{" ; ;", "", nil, []string{"a"}},
		{"myMedia", "myMedia", []string{"myMedia", "myMedia/mp3s", "myMedia/mp3s/x"}, []string{"myMediaX", "my", "other/myMedia"}},
		{" appStreams ;/appSO/ ", "appStreams;/appSO/", []string{"appStreams/x", "appSO/room"}, []string{"appS", "x"}},
		{"/myMedia/myStreams;myData/notes", "/myMedia/myStreams;myData/notes", []string{"myMedia/myStreams/a", "myData/notes"}, []string{"myMedia", "myMedia/other", "myData"}},
		{"a//b/", "a//b/", []string{"a/b/c"}, []string{"a"}},
		{"x;/", "x;/", []string{"anything"}, nil},
	} {
		a, err := parseAccess(tc.acl)
		if err != nil {
			t.Errorf("%q: %v", tc.acl, err)
			continue
		}
		if a.String() != tc.norm {
			t.Errorf("%q normalized to %q, want %q", tc.acl, a.String(), tc.norm)
		}
		for _, n := range tc.allow {
			if !a.allows(n) {
				t.Errorf("%q does not allow %q", tc.acl, n)
			}
		}
		for _, n := range tc.deny {
			if a.allows(n) {
				t.Errorf("%q allows %q", tc.acl, n)
			}
		}
	}
	for _, bad := range []string{"a/../b", "./a", "x;..", strings.Repeat("x", maxAccessLen+1), "a\x00b"} {
		if _, err := parseAccess(bad); !errors.Is(err, ErrBadAccess) {
			t.Errorf("%.20q: %v, want ErrBadAccess", bad, err)
		}
	}
	for in, want := range map[string]string{
		"cam": "cam", "mp4:dir/clip.mp4": "dir/clip.mp4", "FLV:a": "a", "a/../b": "b",
		"../../etc": "etc", "/x//y/": "x/y", "mp4:": "mp4:",
	} {
		if got := streamPath(in); got != want {
			t.Errorf("streamPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// Deleted slots are recorded with the version of their deletion, bounded
// by MaxSOProperties; Purge drops those older than its version.
func TestSharedObjectDeletedRecord(t *testing.T) {
	s := NewServer(Config{DataDir: t.TempDir(), MaxSOProperties: 4}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	in := s.instance("app", "inst")
	so, err := in.SharedObject("x", false)
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

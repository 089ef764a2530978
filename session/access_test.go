package session

import (
	"errors"
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

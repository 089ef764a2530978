package sockio

import "testing"

func TestAppendUnwritten(t *testing.T) {
	bufs := [][]byte{[]byte("abc"), nil, []byte("de"), []byte("fgh")}
	for n, want := range []string{"abcdefgh", "bcdefgh", "cdefgh", "defgh", "efgh", "fgh", "gh", "h", ""} {
		if got := string(AppendUnwritten([]byte("x"), bufs, n)); got != "x"+want {
			t.Errorf("n=%d: %q, want %q", n, got, "x"+want)
		}
	}
}

package tunnel

import (
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func FuzzClientIP(f *testing.F) {
	f.Add("203.0.113.1, 10.0.0.2", `for="[2001:db8::1]:80";proto=http, for=198.51.100.3`)
	f.Add("", "for=_hidden")
	f.Add("not an ip", `for="unterminated`)
	trusted, _ := ParsePrefixes("10.0.0.0/8, 127.0.0.1")
	peer := netip.MustParseAddr("127.0.0.1")
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		var fwds []string
		if fwd != "" {
			fwds = []string{fwd}
		}
		ip, fromHeader := clientIP(peer, trusted, fwds, []string{xff})
		if !ip.IsValid() {
			t.Fatalf("invalid address from %q / %q", xff, fwd)
		}
		if fromHeader && !strings.Contains(xff+fwd, strings.Trim(ip.String(), "[]")) && !ip.Is4() {
			// An IPv6 address may be written differently in the header;
			// an IPv4 one must appear as is — checked below.
			return
		}
		if fromHeader && ip.Is4() && !strings.Contains(xff+fwd, ip.String()) {
			t.Fatalf("client %v is in neither header %q / %q", ip, xff, fwd)
		}
	})
}

// FuzzSessionRequests plays random sequences of /idle and /send requests
// (any order, repeats, gaps) against a session: it must never panic or
// hang, and the core must read every body whole, at most once per
// sequence number, in sequence order.
func FuzzSessionRequests(f *testing.F) {
	f.Add([]byte{1, 0, 5, 1, 1, 3, 0, 2, 0, 1, 1, 4})
	f.Add([]byte{1, 3, 2, 1, 0, 2, 1, 3, 2, 0, 1, 0})
	f.Add([]byte{0, 40, 0, 1, 2, 9, 1, 1, 9})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 300 {
			ops = ops[:300]
		}
		synctest.Test(t, func(t *testing.T) {
			_, ss := testSession(t, Config{HoldTime: 20 * time.Millisecond, SendLinger: -1, MaxPending: 1 << 20})
			type sent struct {
				seq uint64
				id  byte
			}
			var bodies []sent
			id := byte(0)
			for i := 0; i+2 < len(ops); i += 3 {
				cmd := cmdIdle
				if ops[i]&1 == 1 {
					cmd = cmdSend
				}
				seq := uint64(ops[i+1] % 48)
				n := int(ops[i+2]%16) + 1
				id++
				body := []byte{0}
				if cmd == cmdSend {
					body = append([]byte{id}, make([]byte, n)...)
					for j := range body {
						body[j] = id
					}
					bodies = append(bodies, sent{seq, id})
				}
				if ops[i]&2 == 2 {
					ss.Write([]byte("out")) // the core answers something
				}
				ss.exchange(nil, nil, nil, cmd, seq, body)
			}
			ss.end(errClientClosed)
			var got []byte
			buf := make([]byte, 256)
			for {
				n, err := ss.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			// Runs of one id: each must be a whole body, each id once, and
			// at most one body per sequence number.
			seqOf := map[byte]uint64{}
			for _, b := range bodies {
				seqOf[b.id] = b.seq
			}
			seenID := map[byte]bool{}
			seenSeq := map[uint64]bool{}
			prev := -1
			for i := 0; i < len(got); {
				j := i
				for j < len(got) && got[j] == got[i] {
					j++
				}
				bid := got[i]
				if seenID[bid] {
					t.Fatalf("body %d read twice: %v", bid, got)
				}
				seenID[bid] = true
				if seenSeq[seqOf[bid]] {
					t.Fatalf("two bodies for seq %d: %v", seqOf[bid], got)
				}
				seenSeq[seqOf[bid]] = true
				if int(seqOf[bid]) <= prev {
					t.Fatalf("body of seq %d read after seq %d: %v", seqOf[bid], prev, got)
				}
				prev = int(seqOf[bid])
				i = j
			}
		})
	})
}

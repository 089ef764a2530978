package session_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// A publisher that writes frame type 0 in every E-RTMP video header, as
// gortmplib up to v1.0.1 and OBS before its fix do: its HEVC keyframes
// are found from the NAL units, so a player joining after it starts from
// the GOP cache (or, without a cache, at the next keyframe) and gets
// frames, not only the sequence start. The log says so once.
func TestFrameTypeZeroHEVC(t *testing.T) {
	hevc := func(ts uint32, nal string) []byte {
		// ExHeader | frame type 0 | CodedFrames, "hvc1", composition
		// time, one NAL unit with a 4-byte size.
		p := []byte{0x81, 'h', 'v', 'c', '1', 0, 0, byte(ts % 3 * 40)}
		b, _ := hex.DecodeString("00000010" + nal + strings.Repeat("ab", 14))
		return append(p, b...)
	}
	seqStart := append([]byte{0x80, 'h', 'v', 'c', '1'}, 1, 2, 3, 4) // frame type 0 too
	key := func(ts uint32) []byte { return hevc(ts, "2601") }        // IDR_W_RADL
	inter := func(ts uint32) []byte { return hevc(ts, "0201") }      // TRAIL_R
	opus := append([]byte{0x91, 'O', 'p', 'u', 's'}, 9, 9, 9)

	for _, noCache := range []bool{false, true} {
		name := "GOP cache"
		if noCache {
			name = "no GOP cache"
		}
		t.Run(name, func(t *testing.T) {
			base, _, logs := startServer(t, session.Config{DisableGOPCache: noCache})
			c := sessiontest.Dial(t, base+"/live", client.Options{Extra: amf.Object{{Key: "fourCcList", Value: []any{"hvc1"}}}})
			ctx := sessiontest.Ctx(t, 5*time.Second)
			id, _ := c.CreateStream(ctx)
			if err := c.Publish(ctx, id, "hevc0", "live"); err != nil {
				t.Fatal(err)
			}
			pub := &sessiontest.Publisher{C: c, MsID: id}
			pub.Send(t, message.TypeVideo, 0, seqStart)
			pub.Send(t, message.TypeVideo, 0, key(0))
			pub.Send(t, message.TypeAudio, 10, opus)
			pub.Send(t, message.TypeVideo, 40, inter(40))
			pub.Sync(t) // the server has the frames before the player comes

			p, pid := sessiontest.Play(t, base+"/live", "hevc0")
			want := [][]byte{seqStart, key(0), opus, inter(40)}
			if noCache {
				// The player waits for the next keyframe.
				pub.Send(t, message.TypeVideo, 80, key(80))
				pub.Send(t, message.TypeAudio, 90, opus)
				pub.Send(t, message.TypeVideo, 120, inter(120))
				want = [][]byte{seqStart, key(80), opus, inter(120)}
			}
			var got [][]byte
			for len(got) < len(want) {
				m := sessiontest.NextMedia(t, p, pid)
				if m.Type == message.TypeVideo || m.Type == message.TypeAudio {
					got = append(got, m.Payload)
				}
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("message %d: % x, want % x", i, got[i], want[i])
				}
			}
			const warning = "publisher sends E-RTMP video with frame type 0: keyframes detected from the bitstream"
			if n := strings.Count(logs.String(), warning); n != 1 {
				t.Errorf("%d warnings %q in the log, want 1", n, warning)
			}
		})
	}
}

package pull

import (
	"testing"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

func data(t *testing.T, amf3 bool, vals ...any) *message.Message {
	t.Helper()
	typ, p, err := message.EncodeData(amf3, vals...)
	if err != nil {
		t.Fatal(err)
	}
	return &message.Message{Type: typ, StreamID: 1, Timestamp: 7, Payload: p}
}

// What the origin sends its player becomes what a publisher would have
// sent: metadata to keep, data to relay; the origin's words to its own
// player are dropped.
func TestMetadata(t *testing.T) {
	meta := amf.ECMAArray{{Key: "width", Value: 320.0}}
	for _, tc := range []struct {
		name string
		in   *message.Message
		want string // the data name of the result; "" dropped
		set  bool   // the result is "@setDataFrame" + the original body
	}{
		{"onMetaData", data(t, false, "onMetaData", meta), "@setDataFrame", true},
		{"onMetaData in AMF3", data(t, true, "onMetaData", meta), "@setDataFrame", true},
		{"a cue point", data(t, false, "onCuePoint", amf.Object{{Key: "name", Value: "x"}}), "onCuePoint", false},
		{"sample access", data(t, false, "|RtmpSampleAccess", true, true), "", false},
		{"data start", data(t, false, "onStatus", amf.Object{{Key: "code", Value: "NetStream.Data.Start"}}), "", false},
		{"not AMF0", &message.Message{Type: message.TypeDataAMF0, Payload: []byte{5}}, "", false},
	} {
		got := metadata(tc.in)
		if tc.want == "" {
			if got != nil {
				t.Errorf("%s: kept", tc.name)
			}
			continue
		}
		if got == nil {
			t.Errorf("%s: dropped", tc.name)
			continue
		}
		name, next, ok := message.DataName(got.Payload)
		if !ok || name != tc.want || got.Type != message.TypeDataAMF0 || got.Timestamp != 7 {
			t.Errorf("%s: %q %v type %v ts %d", tc.name, name, ok, got.Type, got.Timestamp)
		}
		if tc.set {
			if n, _, _ := message.DataName(got.Payload[next:]); n != "onMetaData" {
				t.Errorf("%s: then %q", tc.name, n)
			}
		}
	}
}

func TestUnpublished(t *testing.T) {
	status := func(code string, args ...any) *message.Message {
		args = append(args, amf.Object{{Key: "level", Value: "status"}, {Key: "code", Value: code}})
		typ, p, err := message.EncodeCommand(&message.Command{Name: "onStatus", Args: args}, false)
		if err != nil {
			t.Fatal(err)
		}
		return &message.Message{Type: typ, StreamID: 1, Payload: p}
	}
	if !unpublished(status("NetStream.Play.UnpublishNotify")) || !unpublished(status("NetStream.Play.UnpublishNotify", nil)) {
		t.Error("UnpublishNotify not seen")
	}
	if unpublished(status("NetStream.Play.PublishNotify")) {
		t.Error("PublishNotify taken for UnpublishNotify")
	}
}

package main

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// What gohlslib's low-latency muxer serves (v2.2.0, muxer_test.go) for a
// stream with video and audio: index.m3u8 with the audio as a rendition
// of its own, ...
const gohlslibMultivariant = "#EXTM3U\n" +
	"#EXT-X-VERSION:9\n" +
	"#EXT-X-INDEPENDENT-SEGMENTS\n" +
	"\n" +
	"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\"," +
	"NAME=\"audio2\",AUTOSELECT=YES,DEFAULT=YES,URI=\"audio2_stream.m3u8?key=value\"\n" +
	"\n" +
	"#EXT-X-STREAM-INF:BANDWIDTH=872,AVERAGE-BANDWIDTH=584,CODECS=\"avc1.42c028,mp4a.40.2\"," +
	"RESOLUTION=1920x1080,FRAME-RATE=30.000,AUDIO=\"audio\"\n" +
	"video1_stream.m3u8?key=value\n"

// ... and a media playlist: seven gaps before the first segment, parts of
// the last two segments, the preload hint of the next part.
const gohlslibMedia = "#EXTM3U\n" +
	"#EXT-X-VERSION:10\n" +
	"#EXT-X-TARGETDURATION:4\n" +
	"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=5.00000,CAN-SKIP-UNTIL=24.00000\n" +
	"#EXT-X-PART-INF:PART-TARGET=2.00000\n" +
	"#EXT-X-MEDIA-SEQUENCE:2\n" +
	"#EXT-X-MAP:URI=\"abc_video1_init.mp4?key=value\"\n" +
	"#EXT-X-GAP\n#EXTINF:4.00000,\ngap.mp4\n" +
	"#EXT-X-GAP\n#EXTINF:4.00000,\ngap.mp4\n" +
	"#EXT-X-GAP\n#EXTINF:4.00000,\ngap.mp4\n" +
	"#EXT-X-GAP\n#EXTINF:4.00000,\ngap.mp4\n" +
	"#EXT-X-GAP\n#EXTINF:4.00000,\ngap.mp4\n" +
	"#EXT-X-PROGRAM-DATE-TIME:2010-01-01T01:01:02Z\n" +
	"#EXT-X-PART:DURATION=2.00000,URI=\"abc_video1_part0.mp4?key=value\",INDEPENDENT=YES\n" +
	"#EXT-X-PART:DURATION=2.00000,URI=\"abc_video1_part1.mp4?key=value\"\n" +
	"#EXTINF:4.00000,\n" +
	"abc_video1_seg7.mp4?key=value\n" +
	"#EXT-X-PROGRAM-DATE-TIME:2010-01-01T01:01:06Z\n" +
	"#EXT-X-PART:DURATION=1.00000,URI=\"abc_video1_part2.mp4?key=value\",INDEPENDENT=YES\n" +
	"#EXTINF:1.00000,\n" +
	"abc_video1_seg8.mp4?key=value\n" +
	"#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"abc_video1_part3.mp4?key=value\"\n"

func TestParseMultivariant(t *testing.T) {
	if !isMultivariant(gohlslibMultivariant) || isMultivariant(gohlslibMedia) {
		t.Fatal("isMultivariant")
	}
	mv, err := parseMultivariant(gohlslibMultivariant)
	if err != nil {
		t.Fatal(err)
	}
	want := &hlsMultivariant{
		variants:   []hlsVariant{{uri: "video1_stream.m3u8?key=value", audio: "audio"}},
		renditions: []hlsRendition{{typ: "AUDIO", group: "audio", uri: "audio2_stream.m3u8?key=value", isDefault: true}},
	}
	if !reflect.DeepEqual(mv, want) {
		t.Errorf("got %+v, want %+v", mv, want)
	}
	if got := mv.mediaURIs(); !reflect.DeepEqual(got, []string{"video1_stream.m3u8?key=value", "audio2_stream.m3u8?key=value"}) {
		t.Errorf("mediaURIs %q", got)
	}

	// Video only; and an audio group whose default rendition is in the
	// variant's own playlist (no URI), after one that is not default.
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"#EXTM3U\n#EXT-X-VERSION:9\n\n#EXT-X-STREAM-INF:BANDWIDTH=872,CODECS=\"avc1.42c028\"\nvideo1_stream.m3u8\n",
			[]string{"video1_stream.m3u8"}},
		{"#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"de\",URI=\"de.m3u8\"\n" +
			"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"main\",DEFAULT=YES\n" +
			"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"b\",NAME=\"other\",DEFAULT=YES,URI=\"b.m3u8\"\n" +
			"#EXT-X-STREAM-INF:BANDWIDTH=5568,CODECS=\"mp4a.40.2\",AUDIO=\"a\"\naudio1_stream.m3u8\n" +
			"#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"b\"\nsecond.m3u8\n",
			[]string{"audio1_stream.m3u8"}},
	} {
		mv, err := parseMultivariant(tc.text)
		if err != nil {
			t.Fatal(err)
		}
		if got := mv.mediaURIs(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("mediaURIs %q, want %q", got, tc.want)
		}
	}
}

func TestParseMedia(t *testing.T) {
	m, err := parseMedia(gohlslibMedia)
	if err != nil {
		t.Fatal(err)
	}
	want := &hlsMedia{
		target: 4 * time.Second, partTarget: 2 * time.Second, canBlockReload: true,
		mapURI: "abc_video1_init.mp4?key=value",
		parts: []hlsPart{
			{pos: hlsPos{7, 0}, uri: "abc_video1_part0.mp4?key=value", independent: true},
			{pos: hlsPos{7, 1}, uri: "abc_video1_part1.mp4?key=value"},
			{pos: hlsPos{8, 0}, uri: "abc_video1_part2.mp4?key=value", independent: true},
		},
		next: hlsPos{9, 0}, // seg8 is complete: the next part starts seg9
		hint: "abc_video1_part3.mp4?key=value",
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got\n%+v, want\n%+v", m, want)
	}

	// Parts of the segment in progress come after the last EXTINF: the
	// next part is one more in that segment.
	m, err = parseMedia(strings.Replace(gohlslibMedia, "#EXT-X-PRELOAD-HINT",
		"#EXT-X-PART:DURATION=0.50000,URI=\"p3.mp4\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.50000,URI=\"p4.mp4\"\n#EXT-X-PRELOAD-HINT", 1))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.parts[len(m.parts)-1]; got.pos != (hlsPos{9, 1}) || got.uri != "p4.mp4" || got.independent {
		t.Errorf("last part %+v", got)
	}
	if m.next != (hlsPos{9, 2}) {
		t.Errorf("next %+v, want {9 2}", m.next)
	}
}

// Playlists made with gohlslib's own playlist package parse to the same
// parts, also with what gohlslib emits that the muxer does not (byte
// ranges, GAP parts, a delta update's EXT-X-SKIP, ENDLIST).
func TestParseMediaGohlslib(t *testing.T) {
	hold, skipUntil := 1500*time.Millisecond, 24*time.Second
	seg := func(uri string, parts ...*playlist.MediaPart) *playlist.MediaSegment {
		return &playlist.MediaSegment{Duration: time.Second, URI: uri, Parts: parts}
	}
	part := func(uri string, independent bool) *playlist.MediaPart {
		return &playlist.MediaPart{Duration: 500 * time.Millisecond, URI: uri, Independent: independent}
	}
	gap := part("gap.mp4", false)
	gap.Gap = true
	pl := playlist.Media{
		Version: 10, TargetDuration: 1, MediaSequence: 100,
		ServerControl: &playlist.MediaServerControl{CanBlockReload: true, PartHoldBack: &hold, CanSkipUntil: &skipUntil},
		PartInf:       &playlist.MediaPartInf{PartTarget: 500 * time.Millisecond},
		Map:           &playlist.MediaMap{URI: "init.mp4"},
		Skip:          &playlist.MediaSkip{SkippedSegments: 3},
		Segments: []*playlist.MediaSegment{
			seg("s103.mp4", part("p0.mp4", true), part("p1.mp4", false)),
			seg("s104.mp4", part("p2.mp4", true), gap),
		},
		Parts:       []*playlist.MediaPart{part("p4.mp4", true)},
		PreloadHint: &playlist.MediaPreloadHint{URI: "p5.mp4"},
		Endlist:     true,
	}
	b, err := pl.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseMedia(string(b))
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	var got []string
	for _, p := range m.parts {
		got = append(got, p.uri+"@"+posString(p.pos))
	}
	want := []string{"p0.mp4@103.0", "p1.mp4@103.1", "p2.mp4@104.0", "gap.mp4@104.1", "p4.mp4@105.0"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parts %q, want %q\n%s", got, want, b)
	}
	if !m.parts[3].gap || m.parts[2].gap || !m.parts[4].independent || m.parts[1].independent {
		t.Errorf("flags %+v", m.parts)
	}
	if m.next != (hlsPos{105, 1}) || m.hint != "p5.mp4" || !m.endList || !m.canBlockReload ||
		m.partTarget != 500*time.Millisecond || m.mapURI != "init.mp4" || m.target != time.Second {
		t.Errorf("got %+v\n%s", m, b)
	}

	// Without server control a player polls.
	pl.ServerControl = nil
	b, _ = pl.Marshal()
	if m, err := parseMedia(string(b)); err != nil || m.canBlockReload {
		t.Errorf("no EXT-X-SERVER-CONTROL: %+v, %v", m, err)
	}
}

func posString(p hlsPos) string { return fmt.Sprintf("%d.%d", p.msn, p.part) }

func TestParsePlaylistErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"", "no #EXTM3U"},
		{"<html>", "no #EXTM3U"},
		{"#EXTM3U\n#EXT-X-PART:DURATION=1.0\n", "no URI"},
		{"#EXTM3U\n#EXT-X-PART:DURATION=1.0,URI=\"p.mp4\n", "unterminated"},
		{"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:x\n", "EXT-X-MEDIA-SEQUENCE"},
		{"#EXTM3U\n#EXT-X-PART-INF:PART-TARGET=abc\n", "bad duration"},
		{"#EXTM3U\n#EXT-X-MAP:URI=\"a\"x\n", "junk after"},
	} {
		if _, err := parseMedia(tc.text); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseMedia(%q): %v, want %q", tc.text, err, tc.want)
		}
	}
	for _, tc := range []struct{ text, want string }{
		{"#EXTM3U\n#EXT-X-VERSION:9\n", "no EXT-X-STREAM-INF"},
		{"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n", "without a URI"},
		{"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-STREAM-INF:BANDWIDTH=2\nb.m3u8\n", "without a URI"},
	} {
		if _, err := parseMultivariant(tc.text); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseMultivariant(%q): %v, want %q", tc.text, err, tc.want)
		}
	}
}

func TestParseAttrs(t *testing.T) {
	got, err := parseAttrs(`BANDWIDTH=872,CODECS="avc1.42c028,mp4a.40.2",RESOLUTION=1920x1080,AUDIO="audio",EMPTY=""`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"BANDWIDTH": "872", "CODECS": "avc1.42c028,mp4a.40.2", "RESOLUTION": "1920x1080", "AUDIO": "audio", "EMPTY": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q", got)
	}
	for _, bad := range []string{"X", "=1", `A="1`, `A="1"B=2`} {
		if _, err := parseAttrs(bad); err == nil {
			t.Errorf("parseAttrs(%q) passed", bad)
		}
	}
}

// Package hls serves live streams as HLS, Low-Latency HLS by default,
// muxed by github.com/bluenviron/gohlslib/v2.
//
// A Manager answers requests (Serve): the first request for a stream
// attaches a muxer to it as a live.Reader, and later ones reuse it until
// no request came for Config.Idle or the stream is unpublished. The
// reader's methods only queue packets (bounded; a full queue refuses
// media and the stream skips the muxer to the next keyframe); the
// muxer's goroutine turns FLV payloads (H.264 and HEVC, legacy FLV,
// codec id 12 and Enhanced RTMP; AAC) into access units for gohlslib.
// Other codecs (MP3, Opus, AV1...) are left out, said once in the log.
//
// Requests never wait inside gohlslib without a bound: the first
// playlist waits for the first segment, and LL-HLS blocking reloads and
// preload hints for their part, up to 10 s or the request's context.
// LL-HLS media playlists are not asked of gohlslib per request: the
// muxer's goroutine notes each new part (state.go), which wakes every
// request waiting for it at once, and each playlist of a part is made
// once and copied to all who ask for it.
// Plain HLS players (ffmpeg, older Safari) read the LL-HLS playlists and
// ignore the parts; the first seven entries of a young stream are
// EXT-X-GAP, whose gap.mp4 is 404.
//
// Changes of the stream: a new H.264/HEVC sequence header of the same
// codec is carried in band (gohlslib starts a segment with a new init
// file; players keep their playlist). Any other change (a new AAC
// configuration, another video codec, a track appearing) restarts the
// muxer's gohlslib muxer: new segment names, media sequence numbers
// starting over, old segments 404; players must load the playlists
// again. An unpublished stream closes its muxer and detaches its reader
// (after the stream's grace period; a takeover within it changes
// nothing); requests then get 404, or a new muxer once the stream is
// published again.
//
// Routing, CORS and authorization are the caller's. The caller's Attach
// adds the reader to the live stream the request names, as in
//
//	attach := func(r live.Reader) (func(), error) {
//		st := lookUp(key) // with the lock that guards the streams held
//		if st == nil || !st.Live() {
//			return nil, errNotFound
//		}
//		sub := st.AddReader(r, live.ReaderOptions{Log: log})
//		return sub.Close, nil
//	}
//	m.Serve(w, r, key, path.Base(r.URL.Path), attach)
package hls

// Package hls serves live streams as HLS, Low-Latency HLS by default,
// muxed by github.com/bluenviron/gohlslib/v2.
//
// A Manager answers requests (Serve): the first request for a stream
// attaches a muxer to it as a live.Reader, and later ones reuse it until
// no request came for Config.Idle or the stream is unpublished. The
// reader's methods only queue packets (bounded; a full queue refuses
// media and the stream skips the muxer to the next keyframe); the
// muxer's goroutine turns FLV payloads (AVC, HEVC, AAC, legacy and
// Enhanced RTMP) into access units for gohlslib. Requests never wait
// inside gohlslib without a bound: the first playlist waits for the first
// segment, and LL-HLS blocking reloads and preload hints for their part,
// up to 10 s or the request's context.
//
// Routing, CORS and authorization are the caller's.
package hls

// Package vod holds the recorded streams on disk: FLV and MP4 stream
// files in the FMS layout, <DataDir>/<app>/streams/<instance>/<name>.flv,
// read as FLV tags for players, and the registry of the files being
// recorded.
//
// The data path of a play, one step per exported name:
//
//	name ─FileName─► file, Kind ─StreamRel─► rel ─Store.Locate─► real path
//	     ─Store.Open─► Source: Info (index, onMetaData, sequence headers),
//	                           SeekKeyframe, Next tag … io.EOF
//
// The Info of a file (an FLV file's keyframe index, an MP4 file's sample
// table flattened once from its moov box) is built on the first open of
// each file version (size and modification time) and kept in the Store for
// later players, within a bound in files and bytes. An MP4 Source reads
// each sample from the file and hands it on in its FLV form (AVC and AAC
// as legacy FLV tags, HEVC as Enhanced RTMP).
//
// A recording takes its path from Store.PrepareRecording, holds the file
// with Store.Register while it writes through OpenWriter, and players of a
// file that Store.IsRecording follow its end. Every path the Store hands
// out stays in the data dir, symbolic links resolved.
//
// The package knows files, not clients: pacing, statuses and what is
// recorded are the session core's. It never starts goroutines; its only
// log line is a debug line per file indexed.
package vod

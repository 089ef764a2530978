// Package vod holds the recorded streams on disk: FLV and MP4 stream
// files in the FMS layout, <DataDir>/<app>/streams/<instance>/<name>.flv,
// read as FLV tags for players, and the registry of the files being
// recorded.
//
// The data path of a play: file → index → source → tags.
//
//	play name ─Store.Find─► File ─Store.Open─► Source ─Next─► FLV tags … io.EOF
//	                                  │
//	                  Info, built once per file version and kept in the
//	                  Store: the keyframe index (FLV) or the sample table
//	                  (MP4), onMetaData, the sequence headers;
//	                  Source.SeekKeyframe starts from it
//
// FileName maps a play name to a file name and Kind: "name" and
// "flv:name" are name.flv, "mp4:name.ext" an MP4 file. The Info of a file
// is rebuilt when its size or modification time changes, and the Store
// keeps it for later players within a bound in files and bytes; players
// of one cold file wait for the one build. The players of an FLV file
// read it through blocks of 16 KiB shared by all of them (blocks.go): a
// block is read once per file version and kept a few seconds within a
// bound in bytes, and a tag is handed on as a slice of it, so a player
// holds no read buffer and copies nothing. An MP4
// file's moov box is flattened once into one list of samples; its Source
// reads each sample from the file and hands it on in its FLV form (AVC
// and AAC as legacy FLV tags, HEVC as Enhanced RTMP).
//
// A recording takes its path from Store.PrepareRecording, holds the file
// with Store.Register while it writes through OpenWriter, and players of a
// file that Store.IsRecording follow its end. Every path the Store hands
// out stays in the data dir, symbolic links resolved.
//
// A Player (Store.Play) plays a playlist of files on a client's stream: a
// goroutine per stream sends the tags ahead of real time by the client's
// buffer length, then at real time, waits for room in the client's queue
// rather than drop anything, and answers seek, pause and
// receiveAudio/Video with the statuses FMS sends (NetStream.Play.Start,
// Switch, Stop, Seek.Notify, onPlayStatus Play.Complete...).
//
//	Store.Play ─► Player ─(its goroutine)─► Source.Next ─► paced ─► Output
//	Add, SeekTo, Pause, SetReceive, Close ──┘ (commands)
//
// The package knows files and streams, not clients: a Player writes to an
// Output (in the session core, a client's stream and its outbound queue),
// and what is recorded is the core's. A Player's goroutine is the only one
// the package starts; it logs the player's lines on the logger it is
// given, and the Store a debug line per file indexed.
package vod

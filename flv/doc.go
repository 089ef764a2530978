// Package flv reads and writes FLV files (Adobe Flash Video File Format
// Specification 10.1, annex E) for video on demand and recording: tags,
// onMetaData, and keyframe indexes for seeking. It never logs and starts no
// goroutines; everything it cannot do is an error for its caller.
//
// # Layout
//
// A file is a 9-byte header ("FLV", version, audio and video flags,
// DataOffset), PreviousTagSize0, then tags, each followed by its
// PreviousTagSize (11 + DataSize). A tag is an 11-byte header (type, 24-bit
// DataSize, 24-bit timestamp plus an extended high byte, 24-bit stream id)
// and the payload of the RTMP message of the same type: audio (8), video
// (9) or AMF0 script data (18). Enhanced RTMP payloads (ExHeader video and
// audio: HEVC, AV1, VP9, Opus, multitrack...) are tag data like any other
// and pass through untouched.
//
// # Reading
//
// Reader reads tags in order from an io.ReadSeeker and checks every
// PreviousTagSize. A mismatch, a malformed tag header or an encrypted tag
// is an error wrapping ErrCorrupt that names the tag's offset; io.EOF ends
// a clean file, and io.ErrUnexpectedEOF one that ends inside a tag, such as
// a recording that was killed: a player stops cleanly after the last
// complete tag. After an error the Reader stays at the failing tag, so a
// player can follow a file that is still being recorded by retrying. The
// 24-bit DataSize is checked against Reader.MaxTagSize and against the
// bytes left in the file before anything is allocated. SeekTag moves to a
// tag position from an index.
//
// ReadMetadata parses the first onMetaData script tag (ParseMetadata does
// so for tag data): duration, size, frame rate, codecs, the raw properties
// and the keyframes index {times, filepositions} that yamdi, flvtool2,
// ffmpeg (-flvflags add_keyframe_index) and this package's Writer write.
//
// BuildIndex returns an Index of keyframe times and tag positions, taken
// from onMetaData when it checks out against the file and otherwise found
// by scanning the file once, reading tag headers and the first bytes of
// video payloads (classified by message.ParseVideo, so HEVC and AV1
// keyframes count) and seeking over the rest. Files without video keyframes
// get an entry every AudioIndexInterval of audio instead. Index.Lookup
// finds the keyframe at or before a time; an Index can be kept in memory or
// saved next to the file with MarshalBinary, and Index.Size tells when it
// no longer matches the file.
//
// # Writing
//
// Create starts a recording and Append continues one; Writer.WriteTag
// appends a tag and its PreviousTagSize with a single write at the end of
// the last complete tag, so that a process killed at any moment leaves a
// file whose complete tags all play (and whose incomplete last tag Append
// cuts off). Durability against power loss comes from Close and Sync.
//
// So that no data ever has to move, Create writes an onMetaData tag of
// fixed size first: the caller's properties and padding that reserves room
// for the Writer's (duration, filesize, lasttimestamp,
// lastkeyframetimestamp, lastkeyframelocation) and a keyframes index of
// DefaultIndexCapacity entries. Until Close the metadata has no duration,
// so that players find it from the file itself, after a kill too. The
// padding is a property named "rtmphubpadding" holding a
// strict array of nulls, which ffmpeg skips and ParseMetadata drops (use
// Metadata.Encode for the onMetaData a player should get). Close rewrites
// that tag in place with the final values and the keyframes index; a
// recording with more keyframes than fit keeps the first, the last and
// evenly spaced ones between, so seeks through that index land up to a
// few keyframes early (BuildIndex uses it as long as it is sane).
//
// Append scans the file, cuts off an incomplete last tag, resets the
// onMetaData tag to the placeholder state at once (so that a killed Append
// does not leave a stale duration or index), and offsets the timestamps it
// is given by Base, the end of the file's media, so that they continue
// the file's: decode times after the last, and with B-frames (composition
// times), presentation times after the last presented frame too.
//
// Timestamps are 32-bit milliseconds; a recording longer than 49.7 days
// wraps them, which this package does not handle.
package flv

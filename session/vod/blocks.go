package vod

import (
	"container/list"
	"errors"
	"io"
	"sync"
	"time"
)

// The players of an FLV file read it through blocks shared by every
// player of the same file version: a block of the file is read once into
// memory and the tags in it are handed out as slices of it, queued on
// the clients as they are. A player of its own used to cost a 64 KiB
// read buffer and a copy of every tag, which the collector then had to
// find again: 182 KiB of RSS per player at 200 players of one 232 kbps
// file, against 18 KiB for a live player (bench/vod-200.txt). Players a
// moment apart (a ramp, a shared link) read the same blocks; a player far
// from the others holds its current block, blockSize bytes, where it used
// to hold a buffer of 64 KiB. A tag that spans blocks (the larger frames
// of a stream of a few Mbit/s) is read and kept the same way, as a range
// of its own: players of the file share it too.
//
// A file version is a size and a modification time (an Info): the bytes
// before that size are taken not to change in that version. Past it (a
// recording that grows) a player reads the file directly, uncached.

const (
	// blockSize is the unit read and shared: at 232 kbps 0.5 s of a
	// stream, at 4 Mbps 30 ms, so a player reads a block a few times a
	// second at most, where the 64 KiB buffer was refilled about as often
	// at the higher rate.
	blockSize = 16 << 10
	// maxBlockBytes bounds the blocks kept for later players (those in
	// use by a player or a client's queue stay alive until they are
	// done, but are no longer found).
	maxBlockBytes = 8 << 20
	// blockIdle is how long a block no player asked for is kept: the
	// players of a file that share its blocks are those that started
	// within it of one another. The cache is live heap, which the
	// collector lets grow to twice its size: at 5 Mbit/s 10 s of blocks
	// (6 MB) cost 30 KiB of RSS per player at 200 players; 3 s a third.
	blockIdle = 3 * time.Second
)

// blockKey names a range of a file version: a block (off a multiple of
// blockSize, n blockSize or up to the version's end), or a tag that spans
// blocks.
type blockKey struct {
	ver *Info
	off int64
	n   int64
}

// block is a block of a file version, being read (ready open) or read.
type block struct {
	key   blockKey
	ready chan struct{} // closed when data or err is set
	data  []byte        // the block's bytes: blockSize, or fewer at the version's end
	err   error
	used  time.Time     // guarded by blockCache.mu
	elem  *list.Element // in blockCache.lru once read; guarded by blockCache.mu
}

// blockCache holds recently read blocks, bounded in bytes and in idle
// time, least recently used first out. Readers of a block that is being
// read wait for it: N players of a cold block read it once.
type blockCache struct {
	mu     sync.Mutex
	m      map[blockKey]*block
	lru    list.List // of *block, most recently used at the front; ready blocks only
	bytes  int64     // of the blocks in lru
	max    int64
	idle   time.Duration
	reads  int64 // blocks read from files, for tests
	shared int64 // blocks found read or being read, for tests
}

func newBlockCache(max int64, idle time.Duration) *blockCache {
	return &blockCache{m: make(map[blockKey]*block), max: max, idle: idle}
}

// get returns block n of version ver of the file r (a file of that
// version: any player's handle will do), reading it when no one has.
func (c *blockCache) get(ver *Info, r io.ReaderAt, n int64) ([]byte, error) {
	off := n * blockSize
	return c.getRange(ver, r, off, min(blockSize, ver.size-off))
}

// getRange returns the n bytes at off of version ver of the file r,
// reading them when no one has. They must end at or before the version's
// size.
func (c *blockCache) getRange(ver *Info, r io.ReaderAt, off, n int64) ([]byte, error) {
	key := blockKey{ver: ver, off: off, n: n}
	now := time.Now()
	c.mu.Lock()
	if b := c.m[key]; b != nil {
		c.shared++
		b.used = now
		if b.elem != nil {
			c.lru.MoveToFront(b.elem)
		}
		c.mu.Unlock()
		<-b.ready
		return b.data, b.err
	}
	b := &block{key: key, ready: make(chan struct{}), used: now}
	c.m[key] = b
	c.reads++
	c.mu.Unlock()

	data := make([]byte, n)
	if _, err := r.ReadAt(data, off); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the version said the bytes were there
		}
		b.err = err
	} else {
		b.data = data
	}

	c.mu.Lock()
	if b.err != nil {
		delete(c.m, key) // not kept: the next reader tries again
	} else {
		b.elem = c.lru.PushFront(b)
		c.bytes += int64(len(b.data))
	}
	c.trimLocked(now)
	c.mu.Unlock()
	close(b.ready)
	return b.data, b.err
}

// trimLocked drops the least recently used blocks beyond the bound in
// bytes and those idle for longer than c.idle.
func (c *blockCache) trimLocked(now time.Time) {
	for e := c.lru.Back(); e != nil; e = c.lru.Back() {
		b := e.Value.(*block)
		if c.bytes <= c.max && now.Sub(b.used) <= c.idle {
			return
		}
		c.lru.Remove(e)
		b.elem = nil
		c.bytes -= int64(len(b.data))
		delete(c.m, b.key)
	}
}

// stats returns the blocks read and the reads saved, for tests.
func (c *blockCache) stats() (reads, shared int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads, c.shared
}

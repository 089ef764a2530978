package rtmpquic

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// lossyRelay is a UDP relay between one client and a server, for tests:
// every packet is forwarded after a fixed delay (each way), and once a
// loss rate is set, that fraction of the packets is dropped, at random
// from a fixed seed. This is what netem would do, in user space.
type lossyRelay struct {
	client *net.UDPConn // where the client sends
	server *net.UDPConn // connected to the server
	delay  time.Duration
	loss   atomic.Uint64 // math.Float64bits of the drop probability
	peer   atomic.Pointer[net.UDPAddr]

	forwarded, dropped atomic.Uint64
	wg                 sync.WaitGroup
}

type relayed struct {
	b   []byte
	due time.Time
}

func startLossyRelay(t *testing.T, server net.Addr, delay time.Duration) *lossyRelay {
	t.Helper()
	cl, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	sv, err := net.DialUDP("udp", nil, server.(*net.UDPAddr))
	if err != nil {
		cl.Close()
		t.Fatal(err)
	}
	r := &lossyRelay{client: cl, server: sv, delay: delay}
	up, down := make(chan relayed, 8192), make(chan relayed, 8192)
	r.wg.Add(4)
	go r.read(up, 1, func(b []byte) (int, error) {
		n, addr, err := cl.ReadFromUDP(b)
		if err == nil {
			r.peer.Store(addr)
		}
		return n, err
	})
	go r.read(down, 2, sv.Read)
	go r.write(up, func(b []byte) { sv.Write(b) })
	go r.write(down, func(b []byte) {
		if a := r.peer.Load(); a != nil {
			cl.WriteToUDP(b, a)
		}
	})
	t.Cleanup(func() {
		cl.Close()
		sv.Close()
		r.wg.Wait()
	})
	return r
}

// setLoss sets the fraction of packets dropped from now on.
func (r *lossyRelay) setLoss(p float64) { r.loss.Store(math.Float64bits(p)) }

func (r *lossyRelay) addr() string { return r.client.LocalAddr().String() }

func (r *lossyRelay) read(out chan<- relayed, seed uint64, read func([]byte) (int, error)) {
	defer r.wg.Done()
	defer close(out)
	rng := rand.New(rand.NewPCG(seed, 7))
	for {
		b := make([]byte, 2048)
		n, err := read(b)
		if err != nil {
			return
		}
		if rng.Float64() < math.Float64frombits(r.loss.Load()) {
			r.dropped.Add(1)
			continue
		}
		select {
		case out <- relayed{b[:n], time.Now().Add(r.delay)}:
		default:
			r.dropped.Add(1) // the relay's own queue is full
		}
	}
}

func (r *lossyRelay) write(in <-chan relayed, send func([]byte)) {
	defer r.wg.Done()
	for p := range in {
		if d := time.Until(p.due); d > 0 {
			time.Sleep(d)
		}
		send(p.b)
		r.forwarded.Add(1)
	}
}

// lossyResult is what a player saw of a live stream.
type lossyResult struct {
	sent, delivered, keyframes, keysDelivered int
	stalls                                    int           // gaps between delivered frames over stallGap
	maxGap                                    time.Duration // longest of those gaps
	p50, p95, max                             time.Duration // one-way delay (same clock)
	backwards                                 int
	dgSent                                    uint64
}

const stallGap = 150 * time.Millisecond // ~4.5 frame intervals at 30 fps

// runLossyPlayback: the server sends 30 fps of video (a 6 KB keyframe
// every second, on the stream; 800-byte inter frames, in datagrams when
// on) through a relay with 50 ms of delay each way and, once the player
// is connected, 2% loss each way; the player notes what it gets.
func runLossyPlayback(t *testing.T, datagrams bool, seconds int) lossyResult {
	ln, pin, conns := roqrServer(t, datagrams)
	relay := startLossyRelay(t, ln.Addr(), 50*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pl, err := DialRoQR(ctx, "roqr://"+relay.addr(), DialOptions{PinSHA256: pin,
		Config: Config{RoQRDatagrams: datagrams, IdleTimeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	if err := pl.WriteMessages([]message.Message{command("play")}); err != nil {
		t.Fatal(err)
	}
	srv := acceptRoQR(t, conns)
	readRoQRMessage(t, srv)
	relay.setLoss(0.02)

	const fps = 30
	frames := seconds * fps
	type arrival struct {
		seq  int
		at   time.Time
		sent time.Time
		ts   uint32
		key  bool
	}
	got := make(chan arrival, frames+16)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			pl.SetReadDeadline(time.Now().Add(3 * time.Second))
			m, err := pl.ReadMessage()
			if err != nil {
				return
			}
			if m.Type != message.TypeVideo || len(m.Payload) < 25 || m.Payload[1] != 1 {
				continue
			}
			seq := int(binary.BigEndian.Uint64(m.Payload[9:]))
			got <- arrival{seq, time.Now(), time.Unix(0, int64(binary.BigEndian.Uint64(m.Payload[17:]))), m.Timestamp, m.Payload[0] == 0x17}
			if seq == frames-1 {
				return
			}
		}
	}()

	srv.SetWriteTimeout(5 * time.Second)
	if err := srv.WriteMessages([]message.Message{vid(0, avcSeq)}); err != nil {
		t.Fatal(err)
	}
	res := lossyResult{sent: frames}
	start := time.Now()
	for i := range frames {
		size, b0 := 800, byte(0x27)
		if i%fps == 0 {
			size, b0 = 6000, 0x17
			res.keyframes++
		}
		p := make([]byte, size)
		p[0], p[1] = b0, 1
		binary.BigEndian.PutUint64(p[9:], uint64(i))
		binary.BigEndian.PutUint64(p[17:], uint64(time.Now().UnixNano()))
		if err := srv.WriteMessages([]message.Message{vid(uint32(i*1000/fps), p)}); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * time.Second / fps)))
	}
	select {
	case <-readerDone:
	case <-time.After(2 * time.Second): // the last frames were lost
	}
	pl.Close()
	<-readerDone
	close(got)
	// The player's close crosses the relay: give it a moment, not the
	// listener's whole shutdown wait.
	sctx, scancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	ln.Shutdown(sctx)
	scancel()
	var lats []time.Duration
	var last arrival
	for a := range got {
		res.delivered++
		if a.key {
			res.keysDelivered++
		}
		lats = append(lats, a.at.Sub(a.sent))
		if res.delivered > 1 {
			if gap := a.at.Sub(last.at); gap > stallGap {
				res.stalls++
				res.maxGap = max(res.maxGap, gap)
			}
			if int32(a.ts-last.ts) < 0 {
				res.backwards++
			}
		}
		last = a
	}
	slices.Sort(lats)
	if n := len(lats); n > 0 {
		res.p50, res.p95, res.max = lats[n/2], lats[n*95/100], lats[n-1]
	}
	s, _ := srv.DatagramStats()
	res.dgSent = s.Sent
	ps, _ := pl.DatagramStats()
	t.Logf("datagrams %-5v: delivered %d/%d frames (keyframes %d/%d), stalls >%v: %d (longest %v), delay p50 %v p95 %v max %v, "+
		"backwards %d; relay forwarded %d, dropped %d; server datagram stats %+v; player %+v",
		datagrams, res.delivered, res.sent, res.keysDelivered, res.keyframes, stallGap, res.stalls, res.maxGap.Round(time.Millisecond),
		res.p50.Round(time.Millisecond), res.p95.Round(time.Millisecond), res.max.Round(time.Millisecond),
		res.backwards, relay.forwarded.Load(), relay.dropped.Load(), s, ps)
	return res
}

// TestRoQRDatagramsUnderLoss compares a player under 2% loss and 50 ms of
// delay each way, with media in datagrams and on the stream. It checks
// only what does not depend on the machine's speed: the player gets
// frames to the end in both modes, every keyframe (they are on the
// stream), and datagrams were used; the numbers are logged
// (RTMPHUB_LOSSY_SECONDS=30 for a longer run).
func TestRoQRDatagramsUnderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	seconds := 4
	if v, err := strconv.Atoi(os.Getenv("RTMPHUB_LOSSY_SECONDS")); err == nil && v > 0 {
		seconds = v // longer runs for steadier numbers
	}
	for _, dg := range []bool{true, false} {
		name := "stream"
		if dg {
			name = "datagrams"
		}
		t.Run(name, func(t *testing.T) {
			r := runLossyPlayback(t, dg, seconds)
			if r.delivered < r.sent/2 {
				t.Errorf("only %d of %d frames delivered", r.delivered, r.sent)
			}
			if r.keysDelivered != r.keyframes {
				t.Errorf("%d of %d keyframes delivered", r.keysDelivered, r.keyframes)
			}
			if dg && r.dgSent == 0 {
				t.Error("no datagram sent")
			}
			if !dg && r.delivered != r.sent {
				t.Errorf("stream only: %d of %d frames delivered", r.delivered, r.sent)
			}
		})
	}
}

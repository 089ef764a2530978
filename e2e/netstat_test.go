package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Socket inspection through /proc: lets a test see that the server closed a
// connection whose client is not reading (and so cannot see the FIN).

const tcpEstablished = 1

type tcpEntry struct {
	LocalPort, RemotePort int
	State                 int
	Inode                 uint64
}

// tcpTable parses /proc/net/tcp (IPv4; the tests bind 127.0.0.1 only).
func tcpTable() ([]tcpEntry, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []tcpEntry
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 10 {
			continue
		}
		lp, err1 := hexPort(fl[1])
		rp, err2 := hexPort(fl[2])
		st, err3 := strconv.ParseInt(fl[3], 16, 32)
		ino, err4 := strconv.ParseUint(fl[9], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			continue
		}
		out = append(out, tcpEntry{LocalPort: lp, RemotePort: rp, State: int(st), Inode: ino})
	}
	return out, sc.Err()
}

func hexPort(addr string) (int, error) {
	_, p, ok := strings.Cut(addr, ":")
	if !ok {
		return 0, fmt.Errorf("bad address %q", addr)
	}
	n, err := strconv.ParseInt(p, 16, 32)
	return int(n), err
}

// clientPortsOf returns the local ports of pid's TCP connections to
// serverPort.
func clientPortsOf(pid, serverPort int) []int {
	inodes := map[uint64]bool{}
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	for _, fd := range fds {
		l, err := os.Readlink(fd)
		if err != nil {
			continue
		}
		if s, ok := strings.CutPrefix(l, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				inodes[ino] = true
			}
		}
	}
	tab, _ := tcpTable()
	var ports []int
	for _, e := range tab {
		if inodes[e.Inode] && e.RemotePort == serverPort {
			ports = append(ports, e.LocalPort)
		}
	}
	return ports
}

// serverSideOpen reports whether the server still has an established
// connection to clientPort.
func serverSideOpen(serverPort, clientPort int) bool {
	tab, err := tcpTable()
	if err != nil {
		return true
	}
	for _, e := range tab {
		if e.LocalPort == serverPort && e.RemotePort == clientPort {
			return e.State == tcpEstablished
		}
	}
	return false
}

func localPort(c net.Conn) int {
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// closeWatch records when the server closes each watched connection.
type closeWatch struct {
	srv    *server
	mu     sync.Mutex
	ports  map[string]int
	closed map[string]time.Time
	stop   chan struct{}
	done   chan struct{}
}

func watchServerClose(t testing.TB, srv *server) *closeWatch {
	w := &closeWatch{srv: srv, ports: map[string]int{}, closed: map[string]time.Time{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			w.mu.Lock()
			for name, port := range w.ports {
				if _, seen := w.closed[name]; !seen && !serverSideOpen(srv.Port, port) {
					w.closed[name] = time.Now()
				}
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		close(w.stop)
		<-w.done
	})
	return w
}

func (w *closeWatch) add(name string, clientPort int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ports[name] = clientPort
}

// closedAt returns when the server closed the connection, if it did.
func (w *closeWatch) closedAt(name string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.closed[name]
	return at, ok
}

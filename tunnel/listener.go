package tunnel

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Handler serves one accepted connection; it owns nc and closes it.
type Handler func(ctx context.Context, nc net.Conn, protocol string)

// Serve accepts connections on ln and runs h for each in its own
// goroutine, until ctx ends (which closes ln) or ln fails for good.
// Temporary accept errors (such as running out of file descriptors) back
// off instead of spinning. Serve waits for the handlers it started.
func Serve(ctx context.Context, ln net.Listener, protocol string, log *slog.Logger, h Handler) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay *= 2; delay > time.Second {
					delay = time.Second
				}
				log.Warn("accept failed, retrying", "err", err, "delay", delay.String())
				select {
				case <-time.After(delay):
				case <-ctx.Done():
					return nil
				}
				continue
			}
			return err
		}
		delay = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			h(ctx, nc, protocol)
		}()
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

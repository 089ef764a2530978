package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// benchLock serialises rtmpbench runs on one host: two runs at once would
// compete for the CPUs and spoil each other's numbers. The lock is an
// flock on a file in the temporary directory, released when the process
// ends, however it ends.
func benchLock(ctx context.Context) (release func(), err error) {
	path := filepath.Join(os.TempDir(), "rtmpbench.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !logged {
			holder, _ := os.ReadFile(path)
			log.Printf("waiting for another rtmpbench run to finish (%s holds %s)", strings.TrimSpace(string(holder)), path)
			logged = true
		}
		if !sleepCtx(ctx, time.Second) {
			f.Close()
			return nil, ctx.Err()
		}
	}
	f.Truncate(0)
	fmt.Fprintf(f, "pid %d\n", os.Getpid())
	return func() { f.Close() }, nil
}

package script

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dop251/goja"
)

// errBusy is returned when an instance's event queue is full.
var errBusy = errors.New("script: application busy (event queue full)")

// errStopped is returned once the instance's loop has ended.
var errStopped = errors.New("script: application stopped")

// loop owns one goja runtime: every task runs on its goroutine, in the
// order posted. Tasks come from a bounded queue; timers are kept by the
// loop itself, so a timer never needs room in the queue.
type loop struct {
	vm      *goja.Runtime
	tasks   chan func()
	quit    chan struct{}
	done    chan struct{}
	maxRun  time.Duration
	onPanic func(any)
	onError func(error) // a task's script error, logged by the owner

	// watchdog: interrupts a task that runs longer than maxRun.
	wdMu  sync.Mutex
	wdGen uint64

	// timers, touched on the loop goroutine only, except fired.
	timers  map[int64]*jsTimer
	nextID  int64
	fireMu  sync.Mutex
	fired   []int64
	wake    chan struct{}
	closing sync.Once
}

type jsTimer struct {
	id       int64
	fn       goja.Callable
	args     []goja.Value
	every    time.Duration // 0: once
	t        *time.Timer
	canceled bool
}

const maxTimers = 10000

func newLoop(vm *goja.Runtime, queue int, maxRun time.Duration) *loop {
	return &loop{
		vm:     vm,
		tasks:  make(chan func(), queue),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		maxRun: maxRun,
		timers: make(map[int64]*jsTimer),
		wake:   make(chan struct{}, 1),
	}
}

// post queues fn without waiting; it fails when the queue is full or the
// loop has stopped.
func (l *loop) post(fn func()) error {
	select {
	case <-l.quit:
		return errStopped
	default:
	}
	select {
	case l.tasks <- fn:
		return nil
	default:
		return errBusy
	}
}

// postWait queues fn, waiting at most d for room: used for events that
// should not be lost (answers to the script's own calls, shared object
// changes) and may hold up their sender a little.
func (l *loop) postWait(fn func(), d time.Duration) error {
	if err := l.post(fn); !errors.Is(err, errBusy) {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case l.tasks <- fn:
		return nil
	case <-l.quit:
		return errStopped
	case <-t.C:
		return errBusy
	}
}

// stop ends the loop once the tasks already queued and then final have
// run. It does not wait.
func (l *loop) stop(final func()) {
	l.closing.Do(func() {
		go func() {
			err := l.postWait(func() {
				final()
				close(l.quit)
			}, 5*time.Second)
			if err != nil {
				close(l.quit) // not queued: nothing else closes it
			}
		}()
	})
}

// run is the loop goroutine.
func (l *loop) run() {
	defer close(l.done)
	defer func() {
		for _, t := range l.timers {
			t.t.Stop()
		}
	}()
	for {
		select {
		case fn := <-l.tasks:
			l.exec(fn)
			select {
			case <-l.quit:
				return
			default:
			}
		case <-l.wake:
			l.runTimers()
		case <-l.quit:
			return
		}
	}
}

// exec runs one task under the watchdog. A Go panic escaping goja (a bug
// in a host function) is contained here, at the script boundary, so that
// it ends the task and never the server; script errors are returned by
// goja as values and handled by the tasks themselves.
func (l *loop) exec(fn func()) {
	l.wdMu.Lock()
	l.wdGen++
	gen := l.wdGen
	l.wdMu.Unlock()
	wd := time.AfterFunc(l.maxRun, func() {
		l.wdMu.Lock()
		defer l.wdMu.Unlock()
		if l.wdGen == gen {
			l.vm.Interrupt(fmt.Sprintf("script ran longer than %v", l.maxRun))
		}
	})
	defer func() {
		wd.Stop()
		l.wdMu.Lock()
		l.wdGen++
		l.wdMu.Unlock()
		l.vm.ClearInterrupt()
		if r := recover(); r != nil && l.onPanic != nil {
			l.onPanic(r)
		}
	}()
	fn()
}

// --- timers (loop goroutine) ---

func (l *loop) addTimer(fn goja.Callable, d time.Duration, every bool, args []goja.Value) (int64, error) {
	if len(l.timers) >= maxTimers {
		return 0, fmt.Errorf("too many timers (%d)", maxTimers)
	}
	if d < time.Millisecond {
		d = time.Millisecond
	}
	l.nextID++
	t := &jsTimer{id: l.nextID, fn: fn, args: args}
	if every {
		t.every = d
	}
	l.timers[t.id] = t
	id := t.id
	t.t = time.AfterFunc(d, func() { l.fire(id) })
	return id, nil
}

func (l *loop) fire(id int64) {
	l.fireMu.Lock()
	l.fired = append(l.fired, id)
	l.fireMu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *loop) clearTimer(id int64) {
	if t := l.timers[id]; t != nil {
		t.canceled = true
		t.t.Stop()
		delete(l.timers, id)
	}
}

func (l *loop) runTimers() {
	l.fireMu.Lock()
	ids := l.fired
	l.fired = nil
	l.fireMu.Unlock()
	for _, id := range ids {
		t := l.timers[id]
		if t == nil || t.canceled {
			continue
		}
		if t.every == 0 {
			delete(l.timers, id)
		}
		l.exec(func() {
			if _, err := t.fn(goja.Undefined(), t.args...); err != nil && l.onError != nil {
				l.onError(err)
			}
		})
		if t.every > 0 && !t.canceled {
			t.t.Reset(t.every)
		}
	}
}

package session_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// testApp is a small application: echo, fail, thrown, panics, and ask
// (which calls the client back and returns its answer).
func testApp(seen chan<- *session.Client) func(app, inst string) session.Application {
	return func(app, inst string) session.Application {
		if app != "rpc" {
			return nil
		}
		return session.Handlers{
			"echo": func(c *session.Client, args []any) (any, error) {
				if seen != nil {
					seen <- c
				}
				return args, nil
			},
			"fail": func(*session.Client, []any) (any, error) {
				return nil, &session.CallError{Code: "App.Refused", Description: "no", Application: amf.Object{{Key: "why", Value: "test"}}}
			},
			"plain": func(*session.Client, []any) (any, error) { return nil, errors.New("plain error") },
			"panics": func(*session.Client, []any) (any, error) {
				panic("boom")
			},
			"ask": func(c *session.Client, args []any) (any, error) {
				return session.Async(func(reply func(any, error)) {
					c.Call("question", args, func(r any, err error) {
						if err != nil {
							reply(nil, err)
							return
						}
						reply(amf.Object{{Key: "answer", Value: r}}, nil)
					})
				}), nil
			},
		}
	}
}

func TestRPCClientToServer(t *testing.T) {
	base, _, _ := startServer(t, session.Config{Application: testApp(nil)})
	for _, enc := range []float64{0, 3} {
		c := sessiontest.Dial(t, base+"/rpc", client.Options{ObjectEncoding: enc})
		ctx := sessiontest.Ctx(t, 5*time.Second)
		vec := amf.VectorInt{Items: []int32{1, 2, 3}}
		args := []any{"x", 2.5, amf.Object{{Key: "k", Value: true}}}
		if enc == 3 {
			args = append(args, vec)
		}
		r, err := c.Call(ctx, "echo", args...)
		if err != nil {
			t.Fatalf("enc %v: echo: %v", enc, err)
		}
		got, _ := r.Arg(0).([]any)
		if len(got) != len(args) || got[0] != "x" || got[1] != 2.5 {
			t.Fatalf("enc %v: echo returned %#v", enc, r.Args)
		}
		if enc == 3 {
			if v, ok := got[3].(amf.VectorInt); !ok || len(v.Items) != 3 {
				t.Errorf("AMF3 vector came back as %#v", got[3])
			}
		}
		_, err = c.Call(ctx, "fail")
		var se *client.StatusError
		if !errors.As(err, &se) || se.Code != "App.Refused" || se.Description != "no" {
			t.Errorf("enc %v: fail: %v", enc, err)
		}
		_, err = c.Call(ctx, "plain")
		if !errors.As(err, &se) || se.Code != "NetConnection.Call.Failed" || se.Description != "plain error" {
			t.Errorf("enc %v: plain: %v", enc, err)
		}
		_, err = c.Call(ctx, "panics")
		if !errors.As(err, &se) || se.Code != "NetConnection.Call.Failed" {
			t.Errorf("enc %v: panics: %v", enc, err)
		}
		_, err = c.Call(ctx, "nope")
		if !errors.As(err, &se) || se.Code != "NetConnection.Call.Failed" || se.Description != "Method not found (nope)." {
			t.Errorf("enc %v: nope: %v", enc, err)
		}
	}
}

func TestRPCServerToClientWithResponder(t *testing.T) {
	seen := make(chan *session.Client, 1)
	base, _, _ := startServer(t, session.Config{Application: testApp(seen), CallTimeout: 300 * time.Millisecond})
	c := sessiontest.Dial(t, base+"/rpc", client.Options{})
	ctx := sessiontest.Ctx(t, 5*time.Second)

	// ask → the server calls question on us; we answer; ask returns it.
	if err := c.WriteCommand(0, &message.Command{Name: "ask", TransactionID: 50, Args: []any{"q?"}}); err != nil {
		t.Fatal(err)
	}
	q, err := c.ReadCall(ctx, "question")
	if err != nil {
		t.Fatal(err)
	}
	if q.TransactionID == 0 || q.TransactionID == 1 || q.Arg(0) != "q?" {
		t.Fatalf("question call %+v", q)
	}
	if err := c.Reply(q.TransactionID, 42.0); err != nil {
		t.Fatal(err)
	}
	res, err := c.ReadCall(ctx, "_result")
	if err != nil {
		t.Fatal(err)
	}
	o, _ := res.Arg(0).(amf.Object)
	if v, _ := o.Get("answer"); res.TransactionID != 50 || v != 42.0 {
		t.Fatalf("ask result %+v", res)
	}

	// Server-side calls from Go: a responder sees _error, a timeout, and
	// the disconnect.
	if _, err := c.Call(ctx, "echo"); err != nil {
		t.Fatal(err)
	}
	sc := <-seen
	type answer struct {
		v   any
		err error
	}
	got := make(chan answer, 3)
	resp := func(v any, err error) { got <- answer{v, err} }
	sc.Call("willFail", nil, resp)
	call, err := c.ReadCall(ctx, "willFail")
	if err != nil {
		t.Fatal(err)
	}
	c.ReplyError(call.TransactionID, amf.Object{{Key: "code", Value: "X.Y"}})
	if a := <-got; !errors.As(a.err, new(*session.RemoteError)) {
		t.Errorf("willFail: %+v", a)
	}
	sc.Call("ignored", nil, resp)
	if a := <-got; !errors.Is(a.err, session.ErrCallTimeout) {
		t.Errorf("ignored: %+v", a)
	}
	sc.Call("pending", nil, resp)
	if _, err := c.ReadCall(ctx, "pending"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case a := <-got:
		if !errors.Is(a.err, session.ErrClientClosed) && !errors.Is(a.err, session.ErrCallTimeout) {
			t.Errorf("pending after close: %+v", a)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("responder never called after disconnect")
	}
}

func TestRPCBroadcast(t *testing.T) {
	seen := make(chan *session.Client, 4)
	base, _, _ := startServer(t, session.Config{Application: testApp(seen)})
	var cs []*client.Conn
	for _, enc := range []float64{0, 3, 0} {
		cs = append(cs, sessiontest.Dial(t, base+"/rpc/room1", client.Options{ObjectEncoding: enc}))
	}
	other := sessiontest.Dial(t, base+"/rpc/room2", client.Options{})
	ctx := sessiontest.Ctx(t, 5*time.Second)
	if _, err := cs[0].Call(ctx, "echo"); err != nil {
		t.Fatal(err)
	}
	sc := <-seen
	if err := sc.Instance().Broadcast("hello", "all", 3.0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := c.ReadCall(ctx, "hello")
			if err != nil || m.Arg(0) != "all" || m.Arg(1) != 3.0 || m.TransactionID != 0 {
				t.Errorf("client %d: %+v %v", i, m, err)
			}
		}()
	}
	wg.Wait()
	short := sessiontest.Ctx(t, 300*time.Millisecond)
	if m, err := other.ReadCall(short, "hello"); err == nil {
		t.Errorf("other instance got %+v", m)
	}
}

func TestBandwidthCheck(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	for _, enc := range []float64{0, 3} {
		c := sessiontest.Dial(t, base+"/live", client.Options{ObjectEncoding: enc})
		ctx := sessiontest.Ctx(t, 10*time.Second)
		if _, err := c.Call(ctx, "checkBandwidth"); err != nil {
			t.Fatal(err)
		}
		checks := 0
		for {
			m, err := c.ReadCall(ctx, "")
			if err != nil {
				t.Fatalf("enc %v after %d onBWCheck: %v", enc, checks, err)
			}
			if m.Name == "onBWCheck" {
				checks++
				c.Reply(m.TransactionID, float64(checks))
				continue
			}
			if m.Name == "onBWDone" && len(m.Args) == 4 {
				kbit, _ := m.Arg(0).(float64)
				deltaDown, _ := m.Arg(1).(float64)
				deltaTime, _ := m.Arg(2).(float64)
				if checks < 2 || kbit <= 0 || deltaDown <= 0 || deltaTime <= 0 {
					t.Errorf("enc %v: onBWDone %v after %d checks", enc, m.Args, checks)
				}
				t.Logf("enc %v: %d onBWCheck, onBWDone%v", enc, checks, m.Args)
				break
			}
		}
	}
}

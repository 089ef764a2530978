package main

import (
	"errors"
	"fmt"

	"github.com/rtmphub/rtmphub/session"
)

// testApplication returns the factory giving application name (and only
// it) the built-in test methods, used by client tests
// (RTMPHUB_RPC_TEST_APP / --rpc-test-app); nil when name is empty.
//
//	echo(args...)          returns its first argument
//	add(a, b)              returns a + b
//	fail(description)      fails with NetConnection.Call.Failed and the description
//	callBack(method, arg)  calls method(arg) on the caller and returns its answer
//	broadcast(method, arg) calls method(arg) on every client of the instance
func testApplication(name string) func(app, instance string) session.Application {
	if name == "" {
		return nil
	}
	h := session.Handlers{
		"echo": func(_ *session.Client, args []any) (any, error) {
			if len(args) == 0 {
				return nil, nil
			}
			return args[0], nil
		},
		"add": func(_ *session.Client, args []any) (any, error) {
			if len(args) < 2 {
				return nil, errors.New("add needs two numbers")
			}
			a, ok1 := args[0].(float64)
			b, ok2 := args[1].(float64)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("add needs two numbers, not %T and %T", args[0], args[1])
			}
			return a + b, nil
		},
		"fail": func(_ *session.Client, args []any) (any, error) {
			desc, _ := firstArg(args).(string)
			return nil, &session.CallError{Description: desc}
		},
		"callBack": func(c *session.Client, args []any) (any, error) {
			method, _ := firstArg(args).(string)
			if method == "" {
				return nil, errors.New("callBack needs a method name")
			}
			var arg any
			if len(args) > 1 {
				arg = args[1]
			}
			return session.Async(func(reply func(any, error)) {
				c.Call(method, []any{arg}, reply)
			}), nil
		},
		"broadcast": func(c *session.Client, args []any) (any, error) {
			method, _ := firstArg(args).(string)
			if method == "" {
				return nil, errors.New("broadcast needs a method name")
			}
			var arg any
			if len(args) > 1 {
				arg = args[1]
			}
			return nil, c.Instance().Broadcast(method, arg)
		},
	}
	return func(app, _ string) session.Application {
		if app != name {
			return nil
		}
		return h
	}
}

func firstArg(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/rtmphub/rtmphub/session"
)

// HookOptions configure the HTTP authorization callback.
type HookOptions struct {
	URL string
	// FailOpen allows requests when the callback cannot answer (an error,
	// a timeout, a 5xx). A definite refusal (any other non-2xx) always
	// denies.
	FailOpen bool
	Client   *http.Client // default: a client without redirects
	Log      *slog.Logger
}

// maxDescription bounds the refusal text taken from a callback's body.
const maxDescription = 256

// HTTPAuthorizer returns an authorizer that POSTs each request as JSON
// (session.AuthRequest) to opt.URL: a 2xx answer allows it; any other
// status denies it, and the first line of the body, when it is short
// plain text or a JSON {"description": ...}, is what the client is told.
// The request is bounded by the context the core gives (its
// AuthTimeout); no answer in time is a failure (denied unless FailOpen).
func HTTPAuthorizer(opt HookOptions) session.Authorizer {
	hc := opt.Client
	if hc == nil {
		hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	log := opt.Log
	if log == nil {
		log = slog.Default()
	}
	return func(ctx context.Context, req session.AuthRequest) error {
		err := callHook(ctx, hc, opt.URL, req)
		var de *session.DenyError
		if err == nil || errors.As(err, &de) {
			return err
		}
		if opt.FailOpen {
			log.Warn("authorization callback failed; allowed (fail-open)", "action", string(req.Action), "client", req.ClientID, "err", err.Error())
			return nil
		}
		log.Warn("authorization callback failed; denied", "action", string(req.Action), "client", req.ClientID, "err", err.Error())
		return &session.DenyError{Description: "Authorization service unavailable."}
	}
}

func callHook(ctx context.Context, hc *http.Client, url string, req session.AuthRequest) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("User-Agent", "rtmphub-auth")
	start := time.Now()
	resp, err := hc.Do(hr)
	if err != nil {
		return fmt.Errorf("authorization callback: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 500:
		return fmt.Errorf("authorization callback: status %d after %v", resp.StatusCode, time.Since(start).Round(time.Millisecond))
	}
	return &session.DenyError{Description: description(b, resp.StatusCode)}
}

// description extracts the refusal text of a callback's answer.
func description(b []byte, status int) string {
	var j struct {
		Description string `json:"description"`
	}
	s := ""
	if json.Unmarshal(b, &j) == nil {
		s = j.Description
	} else if line, _, _ := strings.Cut(string(b), "\n"); !strings.ContainsAny(line, "<{") {
		s = strings.TrimSpace(line)
	}
	if s == "" {
		return fmt.Sprintf("Access denied (%d %s).", status, http.StatusText(status))
	}
	if len(s) > maxDescription {
		s = s[:maxDescription]
	}
	return s
}

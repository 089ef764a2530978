package session

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Per-client access lists: FMS's Client.readAccess and Client.writeAccess.
//
// Each is a string of semicolon-separated paths relative to the
// application instance ("myMedia/mp3s;myData/notes"); a path grants
// whatever is named by it or lies under it (myMedia grants myMedia/mp3s and
// myMedia/mp3s/x). "/" grants everything (the default), "" nothing. A
// leading or trailing slash on a path does not matter ("/appSO/" is
// appSO).
//
//   - read access: playing a stream; subscribing to (using) a shared
//     object, and so receiving its changes.
//   - write access: publishing (and recording) a stream; creating a shared
//     object (the first use of one that neither is loaded nor has a file)
//     and changing or deleting its slots. A client without write access
//     to a shared object can still subscribe to an existing one.
//
// Names are matched as paths: a stream's type prefix ("mp4:", "flv:", ...)
// is not part of its path, and "a/../b" is b. A change applies to the
// client's later requests; what it already plays, publishes or
// subscribes to is kept.
//
// Refusals: play gets NetStream.Play.Failed, publish
// NetStream.Publish.BadName (as for the Authorize hook), a use
// SharedObject.NoReadAccess (SharedObject.NoWriteAccess when it would
// create the object), a change or removal SharedObject.NoWriteAccess
// followed by the slot's current value, which reverts the client's copy.

// maxAccessLen bounds an access string.
const maxAccessLen = 4096

// accessList is a parsed access string.
type accessList struct {
	src   string   // as set, normalized
	all   bool     // "/" is one of the paths
	paths []string // without leading or trailing slashes
}

// ErrBadAccess is returned for an access string that cannot be used.
var ErrBadAccess = errors.New("session: bad access string")

// parseAccess parses and normalizes an access string: paths are trimmed
// of spaces, empty ones dropped.
func parseAccess(s string) (*accessList, error) {
	if len(s) > maxAccessLen {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrBadAccess, len(s), maxAccessLen)
	}
	if strings.ContainsRune(s, 0) {
		return nil, fmt.Errorf("%w: NUL byte", ErrBadAccess)
	}
	a := &accessList{}
	var kept []string
	for _, p := range strings.Split(s, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		kept = append(kept, p)
		clean := strings.Trim(p, "/")
		if clean == "" {
			a.all = true
			continue
		}
		for _, el := range strings.Split(clean, "/") {
			if el == ".." || el == "." {
				return nil, fmt.Errorf("%w: %q has a %q element", ErrBadAccess, p, el)
			}
		}
		a.paths = append(a.paths, path.Clean(clean)) // "a//b" is a/b
	}
	a.src = strings.Join(kept, ";")
	return a, nil
}

// allows reports whether the list grants resource path name (already
// cleaned: no leading slash, no "." or ".." elements).
func (a *accessList) allows(name string) bool {
	if a == nil || a.all {
		return true // nil: never set, the default "/"
	}
	for _, p := range a.paths {
		if name == p || strings.HasPrefix(name, p+"/") {
			return true
		}
	}
	return false
}

func (a *accessList) String() string {
	if a == nil {
		return "/"
	}
	return a.src
}

// streamTypePrefixes are the type prefixes of stream names, which are not
// part of the stream's path.
var streamTypePrefixes = []string{"mp4:", "flv:", "mp3:", "f4v:", "id3:", "raw:"}

// streamPath is the path a stream name is checked under.
func streamPath(name string) string {
	for _, p := range streamTypePrefixes {
		if len(name) > len(p) && strings.EqualFold(name[:len(p)], p) {
			name = name[len(p):]
			break
		}
	}
	return resourcePath(name)
}

// resourcePath cleans a resource name into the form access paths are
// matched against: no leading slash, no "." or ".." elements.
func resourcePath(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// ReadAccess is the client's read access string (FMS Client.readAccess);
// "/" until set.
func (c *Client) ReadAccess() string { return c.readACL.Load().String() }

// WriteAccess is the client's write access string (FMS
// Client.writeAccess); "/" until set.
func (c *Client) WriteAccess() string { return c.writeACL.Load().String() }

// SetReadAccess sets the client's read access string for its later
// requests and returns it normalized. It may be called from any
// goroutine.
func (c *Client) SetReadAccess(s string) (string, error) {
	a, err := parseAccess(s)
	if err != nil {
		return "", err
	}
	c.readACL.Store(a)
	return a.src, nil
}

// SetWriteAccess sets the client's write access string for its later
// requests and returns it normalized. It may be called from any
// goroutine.
func (c *Client) SetWriteAccess(s string) (string, error) {
	a, err := parseAccess(s)
	if err != nil {
		return "", err
	}
	c.writeACL.Store(a)
	return a.src, nil
}

// mayPlay and mayPublish check a stream name (without its query).
func (c *Client) mayPlay(name string) bool    { return c.readACL.Load().allows(streamPath(name)) }
func (c *Client) mayPublish(name string) bool { return c.writeACL.Load().allows(streamPath(name)) }

// mayReadSO and mayWriteSO check a shared object name.
func (c *Client) mayReadSO(name string) bool  { return c.readACL.Load().allows(resourcePath(name)) }
func (c *Client) mayWriteSO(name string) bool { return c.writeACL.Load().allows(resourcePath(name)) }

// noAccess is the description of a refusal.
func noAccess(kind, what, name string) string {
	return fmt.Sprintf("No %s access to %s %s.", kind, what, name)
}

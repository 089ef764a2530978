package cluster

import (
	"encoding/base64"
	"errors"
	"strings"
)

// StreamID names a live stream across the hubs.
type StreamID struct {
	App, Instance, Stream string
}

func (s StreamID) String() string { return s.App + "/" + s.Instance + "/" + s.Stream }

var b64 = base64.RawURLEncoding

// key is the stream's key in the streams bucket. NATS keys allow letters,
// digits and "-_=./" with dots as separators: each part is base64url
// (letters, digits, - and _), and an empty part (never a valid name) is "=".
func (s StreamID) key() string {
	part := func(p string) string {
		if p == "" {
			return "="
		}
		return b64.EncodeToString([]byte(p))
	}
	return part(s.App) + "." + part(s.Instance) + "." + part(s.Stream)
}

// parseKey is the inverse of key.
func parseKey(k string) (StreamID, error) {
	parts := strings.Split(k, ".")
	if len(parts) != 3 {
		return StreamID{}, errors.New("cluster: bad stream key " + k)
	}
	var out [3]string
	for i, p := range parts {
		if p == "=" {
			continue
		}
		b, err := b64.DecodeString(p)
		if err != nil {
			return StreamID{}, errors.New("cluster: bad stream key " + k)
		}
		out[i] = string(b)
	}
	return StreamID{out[0], out[1], out[2]}, nil
}

// nodeKey is a node's key in the nodes bucket.
func nodeKey(name string) string { return b64.EncodeToString([]byte(name)) }

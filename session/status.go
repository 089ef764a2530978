package session

import (
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Status levels of FMS info objects.
const (
	levelStatus = "status"
	levelError  = "error"
)

// info builds an FMS info object: level, code, description, then extras.
func info(level, code, desc string, extra ...amf.Property) amf.Object {
	o := make(amf.Object, 0, 3+len(extra))
	o = append(o, amf.Property{Key: "level", Value: level}, amf.Property{Key: "code", Value: code}, amf.Property{Key: "description", Value: desc})
	return append(o, extra...)
}

// sendStatus sends onStatus(0, null, info) on stream msid, as FMS does:
// details names the stream and clientid the client.
func (c *Client) sendStatus(msid uint32, level, code, desc, details string) {
	c.sendCommand(msid, statusCommand(level, code, desc, details, c.id))
}

func statusCommand(level, code, desc, details string, clientID uint64) *message.Command {
	o := info(level, code, desc, amf.Property{Key: "details", Value: details}, amf.Property{Key: "clientid", Value: float64(clientID)})
	return &message.Command{Name: "onStatus", Object: nil, Args: []any{o}}
}

// statusMessage is the message sendStatus sends, for a stream that is not
// a client's.
func statusMessage(msid uint32, amf3 bool, level, code, desc, details string, clientID uint64) (message.Message, error) {
	typ, payload, err := message.EncodeCommand(statusCommand(level, code, desc, details, clientID), amf3)
	return message.Message{Type: typ, StreamID: msid, ChunkStreamID: message.DefaultCSID(typ, msid), Payload: payload}, err
}

// sendResult answers a call with _result(txid, null, vals...).
func (c *Client) sendResult(txid float64, vals ...any) {
	if txid == 0 {
		return
	}
	c.sendCommand(0, &message.Command{Name: "_result", TransactionID: txid, Object: nil, Args: vals})
}

// sendError answers a call with _error(txid, null, info).
func (c *Client) sendError(txid float64, code, desc string) {
	if txid == 0 {
		return
	}
	c.sendCommand(0, &message.Command{Name: "_error", TransactionID: txid, Object: nil, Args: []any{info(levelError, code, desc)}})
}

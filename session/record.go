package session

import (
	"log/slog"
	"strings"

	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/record"
)

// recordType reports whether a publish type records.
func recordType(typ string) (rec, appendTo bool) {
	switch strings.ToLower(typ) {
	case "record":
		return true, false
	case "append":
		return true, true
	}
	return false, false
}

// startRecording records stream st of instance in as name (a file of the
// instance's streams folder), telling status of its progress.
func (in *Instance) startRecording(st *live.Stream, name string, appendTo bool, status func(level, code, desc string), log *slog.Logger) *record.Recorder {
	s := in.srv
	return record.Start(st, record.Config{Store: s.media, Open: s.openWriter, App: in.app, Instance: in.name, Name: name,
		Append: appendTo, QueueBytes: s.cfg.RecordQueueBytes, Status: status, Log: log})
}

// startRecording records what stream msid of c publishes as name.
func (c *Client) startRecording(msid uint32, st *live.Stream, name string, appendTo bool) *record.Recorder {
	status := func(level, code, desc string) { c.sendStatus(msid, level, code, desc, name) }
	return c.inst.startRecording(st, name, appendTo, status, c.log)
}

package session_test

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// Persistent shared objects follow the recordings' rule: a symbolic link
// in <data>/<app>/sharedobjects/ may lead anywhere in the data folder, not
// out of it.
func TestSharedObjectFolderLinkStaysInDataFolder(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	outside := filepath.Join(dir, "outside")
	shared := filepath.Join(data, "shared")
	sos := filepath.Join(data, "game", "sharedobjects")
	for _, d := range []string{outside, shared, sos} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(outside, filepath.Join(sos, "out")))       // absolute, out of the data folder
	must(os.Symlink("../../shared", filepath.Join(sos, "in"))) // relative, inside it
	// A valid object file outside, which must not be read.
	body := []byte("RHSO\x01\x00\x00\x00\x07\x00\x00\x00\x00") // version 7, no slots
	fso := binary.BigEndian.AppendUint32(body, crc32.ChecksumIEEE(body))
	must(os.WriteFile(filepath.Join(outside, "top.fso"), fso, 0o644))

	base, _, logs := startServer(t, session.Config{DataDir: data, SOSaveInterval: 20 * time.Millisecond})
	ctx := sessiontest.Ctx(t, 5*time.Second)

	// Loading through the escaping link: refused, and logged with the link.
	c := sessiontest.Dial(t, base+"/game/out", client.Options{})
	c.UseSO("top", true, 0)
	m, err := c.ReadSO(ctx, "top")
	if err != nil || len(m.Events) == 0 || m.Events[0].Code != "SharedObject.ObjectCreationFailed" {
		t.Fatalf("use through a link out of the data folder: %+v %v", m, err)
	}
	if !sessiontest.Poll(2*time.Second, func() bool {
		return strings.Contains(logs.String(), "loading shared object") && strings.Contains(logs.String(), "outside the folder")
	}) {
		t.Errorf("no log naming the link:\n%s", logs)
	}

	// Saving through a link that appeared after the object was loaded:
	// refused, nothing written outside.
	c2 := sessiontest.Dial(t, base+"/game/late", client.Options{})
	st := &soState{props: map[string]any{}}
	c2.UseSO("top", true, 0)
	readSO(t, ctx, c2, "top", st)
	must(os.Symlink(outside, filepath.Join(sos, "late")))
	c2.SetSO("top", true, 0, kv("k", "v"))
	readSO(t, ctx, c2, "top", st)
	if !sessiontest.Poll(2*time.Second, func() bool {
		return strings.Contains(logs.String(), "saving shared object") && strings.Contains(logs.String(), filepath.Join(sos, "late"))
	}) {
		t.Errorf("no log of the refused save:\n%s", logs)
	}
	if es, _ := os.ReadDir(outside); len(es) != 1 {
		t.Errorf("files outside the data folder: %v", es)
	}

	// A link inside the data folder is fine, as for recordings.
	c3 := sessiontest.Dial(t, base+"/game/in", client.Options{})
	c3.UseSO("top", true, 0)
	readSO(t, ctx, c3, "top", &soState{props: map[string]any{}})
	c3.SetSO("top", true, 0, kv("k", "v"))
	if !sessiontest.Poll(3*time.Second, func() bool { _, err := os.Stat(filepath.Join(shared, "top.fso")); return err == nil }) {
		t.Errorf("no file through the link inside the data folder:\n%s", logs)
	}
}

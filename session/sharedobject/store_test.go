package sharedobject_test

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/sharedobject"
)

// memStore is a Store in memory, as a cluster's is in its bucket.
type memStore struct {
	mu    sync.Mutex
	data  map[string][]byte
	fail  error
	saves int
}

func (s *memStore) Load(app, inst, name string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, false, s.fail
	}
	d, ok := s.data[app+"/"+inst+"/"+name]
	return d, ok, nil
}

func (s *memStore) Save(app, inst, name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data == nil {
		s.data = make(map[string][]byte)
	}
	s.data[app+"/"+inst+"/"+name] = append([]byte(nil), data...)
	s.saves++
	return nil
}

// With a Store, persistent objects are saved to it and loaded from it
// (another registry, as the next owner of an instance, finds them), never
// to files; a temporary object of a stored name is refused as with a
// file; a store that fails refuses a persistent object, not a temporary
// one.
func TestRegistryWithStore(t *testing.T) {
	st := &memStore{}
	cfg := testConfig(t, 100)
	cfg.Store = st
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r1 := sharedobject.NewRegistry(cfg, "app", "inst", log)
	so, err := r1.Acquire("scores", true)
	if err != nil {
		t.Fatal(err)
	}
	so.Set("points", 42.0)
	so.Flush()
	so.Release()
	if st.saves == 0 {
		t.Fatal("not saved to the store")
	}
	if fs, _ := filepath.Glob(filepath.Join(cfg.DataDir, "*", "*", "*", "*")); len(fs) != 0 {
		t.Errorf("files written: %v", fs)
	}
	r2 := sharedobject.NewRegistry(cfg, "app", "inst", log)
	so2, err := r2.Acquire("scores", true)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := so2.Get("points"); !ok || v != 42.0 || so2.Version() == 0 {
		t.Fatalf("loaded %v %v v%d", v, ok, so2.Version())
	}
	so2.Release()
	m := &member{id: 1, t: t}
	subs := sharedobject.NewSubscriptions(r2, m, m)
	p, _ := message.EncodeSharedObject(nil, &message.SharedObjectMessage{Name: "scores", Events: []message.SOEvent{{Type: message.SOUse}}}, false)
	subs.Handle(&message.Message{Type: message.TypeSharedObjectAMF0, ChunkStreamID: message.CSIDSharedOb, Payload: p})
	equal(t, "temporary use of a stored name", m.take(), "scores@0 Status:SharedObject.BadPersistence")
	st.fail = errors.New("store down")
	if _, err := r2.Acquire("other", true); err == nil {
		t.Error("acquired a persistent object with the store failing")
	}
	if so, err := r2.Acquire("temp", false); err != nil {
		t.Errorf("temporary object with the store failing: %v", err)
	} else {
		so.Release()
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "app")); err == nil {
		t.Error("a data folder was made")
	}
}

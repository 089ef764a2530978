package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// Shared objects across hubs (issue 13, items 2 and 3), with real
// processes on Debian's nats-server: the first client of chat/room makes
// its hub the owner; a change of a persistent shared object by a client
// of B reaches A and C; the owner is killed with SIGKILL, again and again
// (a new hub takes its place each time; 20 rounds, about 80 s with -race,
// RTMPHUB_E2E_KILL_ROUNDS to change it): another hub owns the instance
// within the owner TTL, the clients of the other hubs get the object's
// state from it without reconnecting, the value written more than the
// save interval before the kill intact, and they go on changing it.

// soClient is a Go client's copy of a shared object.
type soClient struct {
	t     *testing.T
	who   string
	c     *client.Conn
	ver   uint32
	props map[string]any
	clear int // Clear events seen (one per use, then one per resync)
}

const soName = "score"

func newSOClient(t *testing.T, who string, s *server) *soClient {
	t.Helper()
	c := sessiontest.Dial(t, "rtmp://"+s.Addr+"/chat/room", client.Options{})
	v := &soClient{t: t, who: who, c: c, props: map[string]any{}}
	if err := c.UseSO(soName, true, 0); err != nil {
		t.Fatal(err)
	}
	v.until(10*time.Second, "use", func() bool { return v.clear > 0 })
	return v
}

func (v *soClient) read(d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := v.c.ReadSO(ctx, soName)
	if err != nil {
		return false
	}
	v.ver = m.Version
	for _, e := range m.Events {
		switch e.Type {
		case message.SOClear:
			v.props = map[string]any{}
			v.clear++
		case message.SOChange:
			v.props[e.Key] = e.Value
		case message.SORemove:
			delete(v.props, e.Key)
		}
	}
	return true
}

func (v *soClient) until(d time.Duration, what string, cond func() bool) {
	v.t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			v.t.Fatalf("%s: no %s within %v (props %v, v%d)", v.who, what, d, v.props, v.ver)
		}
		v.read(200 * time.Millisecond)
	}
}

func (v *soClient) set(key string, val any) {
	v.t.Helper()
	v.props[key] = val
	if err := v.c.SetSO(soName, true, v.ver, message.SOEvent{Key: key, Value: val}); err != nil {
		v.t.Fatalf("%s: set: %v", v.who, err)
	}
}

type instancesView struct {
	Instances []struct {
		App      string `json:"app"`
		Instance string `json:"instance"`
		Owner    string `json:"owner"`
	} `json:"instances"`
}

func roomOwner(t *testing.T, s *server) string {
	t.Helper()
	resp, err := http.Get("http://" + s.adminAddr(t) + "/api/v1/cluster")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var v instancesView
	if json.NewDecoder(resp.Body).Decode(&v) != nil {
		return ""
	}
	for _, in := range v.Instances {
		if in.App == "chat" && in.Instance == "room" {
			return in.Owner
		}
	}
	return ""
}

func TestClusterSharedObjects(t *testing.T) {
	e2e(t)
	url := startNATS(t)
	rounds := 20
	if n, err := strconv.Atoi(os.Getenv("RTMPHUB_E2E_KILL_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	hubFlags := []string{"--cluster", url, "--cluster-secret", "e2e-secret", "--admin-addr", "127.0.0.1:0",
		"--cluster-owner-ttl", "3s"}
	hubs := map[string]*server{}
	for _, name := range []string{"a", "b", "c"} {
		hubs[name] = startServer(t, append([]string{"--node-name", name}, hubFlags...)...)
	}
	for _, h := range hubs {
		waitJoined(t, h, 60*time.Second)
	}
	sessiontest.Eventually(t, 10*time.Second, "three nodes seen", func() bool {
		return len(getCluster(t, hubs["c"]).Nodes) == 3
	})
	clients := map[string]*soClient{}
	for _, name := range []string{"a", "b", "c"} { // a's client first: a owns
		clients[name] = newSOClient(t, name, hubs[name])
	}
	if o := roomOwner(t, hubs["b"]); o != "a" {
		t.Fatalf("owner %q, want a", o)
	}
	clients["b"].set("points", 1.0)
	for _, n := range []string{"a", "c"} {
		v := clients[n]
		v.until(10*time.Second, "b's change", func() bool { return v.props["points"] == 1.0 })
	}

	next := 'd'
	for round := range rounds {
		var owner string
		for _, h := range hubs {
			if owner = roomOwner(t, h); owner != "" {
				break
			}
		}
		if hubs[owner] == nil {
			t.Fatalf("round %d: owner %q unknown", round, owner)
		}
		want := clients[owner].props["points"]
		time.Sleep(1500 * time.Millisecond) // past the save interval (1s)
		hubs[owner].kill()
		killed := time.Now()
		delete(hubs, owner)
		delete(clients, owner)
		for _, v := range clients {
			v.clear = 0
		}
		var newOwner string
		sessiontest.Eventually(t, 15*time.Second, "a new owner", func() bool {
			for _, h := range hubs {
				if o := roomOwner(t, h); o != "" && o != owner {
					newOwner = o
					return true
				}
			}
			return false
		})
		tookOwner := time.Since(killed)
		for _, v := range clients {
			v.until(15*time.Second, "the state from the new owner", func() bool {
				return v.clear > 0 && v.props["points"] == want
			})
		}
		t.Logf("round %d: owner %s killed; %s owns chat/room after %v; the other hubs' clients resynced after %v, points %v",
			round, owner, newOwner, tookOwner.Round(10*time.Millisecond), time.Since(killed).Round(10*time.Millisecond), want)
		// They go on: a change from a client that is not the owner's.
		var writer *soClient
		for n, v := range clients {
			if n != newOwner {
				writer = v
				break
			}
		}
		val := float64(100 + round)
		writer.set("points", val)
		for _, v := range clients {
			v.until(10*time.Second, "the change after the takeover", func() bool { return v.props["points"] == val })
		}
		// A hub takes the killed one's place, with a client.
		name := string(next)
		next++
		hubs[name] = startServer(t, append([]string{"--node-name", name}, hubFlags...)...)
		waitJoined(t, hubs[name], 60*time.Second)
		clients[name] = newSOClient(t, name, hubs[name])
		if clients[name].props["points"] != val {
			t.Fatalf("round %d: new hub %s's client got %v", round, name, clients[name].props["points"])
		}
	}
}

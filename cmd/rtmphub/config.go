package main

import (
	"encoding"
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/rtmphub/rtmphub/session/admin"
)

// config is every setting of the binary, one row per field. Each row is
// read from the environment variable RTMPHUB_<env> and from the flag of
// the same name in lower case with dashes; a flag wins over the
// environment, which wins over the default.
//
// Defaults live in one place each: a row that configures a library takes
// the library's own default (links, from the DefaultConfig of session,
// tunnel, script and bridge); only the rows the command alone uses have
// theirs in defaultConfig. rtmphub help prints them from there.
//
// A row checks itself: by its type (byteSize, time.Duration, int, bool)
// or its kind tag (address, log-level...: see kinds.go), which parse and
// reject a bad value, and by its min and max tags, written as values of
// the row ("1s", "65536"; why says where a bound comes from). A number or
// duration without a min must be positive unless it can be off. Only the
// rules between settings are written out, in validate.
//
// Off is spelled one way: an empty value, a variable set to nothing or a
// flag given "", turns the setting off when the row has an off value, and
// is an error otherwise (see setting.offValue); it is never the default.
// A row's off value is its off tag (0 for numbers and durations, which
// are off at 0 as well), or "" when its default is empty already. The
// libraries spell off as a negative value where zero means their default:
// links maps the one to the other.
type config struct {
	RTMPAddr         string        `env:"RTMP_ADDR" kind:"address" help:"TCP address for RTMP"`
	DataDir          string        `env:"DATA_DIR" help:"applications folder: <data>/<app>/..."`
	LogLevel         string        `env:"LOG_LEVEL" kind:"log-level" help:"debug, info, warn or error"`
	LogFormat        string        `env:"LOG_FORMAT" kind:"log-format" help:"text or json"`
	MaxConnections   int           `env:"MAX_CONNECTIONS" help:"clients at once, all transports"`
	MaxMessageSize   byteSize      `env:"MAX_MESSAGE_SIZE" min:"1024" max:"16777215" why:"the largest RTMP message length" help:"largest message accepted from a client, bytes"`
	PlayerQueue      int           `env:"PLAYER_QUEUE" min:"16" max:"1048576" help:"messages queued per player before it skips to the next keyframe"`
	PlayerQueueBytes byteSize      `env:"PLAYER_QUEUE_BYTES" min:"65536" help:"payload bytes queued per player before it skips to the next keyframe"`
	StallTimeout     time.Duration `env:"STALL_TIMEOUT" help:"disconnect a client whose writes stall this long"`
	GOPCache         bool          `env:"GOP_CACHE" help:"start players at the last keyframe"`
	WriteMerge       time.Duration `env:"WRITE_MERGE" off:"0" max:"1s" help:"longest wait of audio for the next video frame to share a write (0 = write every message at once)"`
	MergedWrite      time.Duration `env:"MERGED_WRITE" off:"0" min:"10ms" max:"2s" help:"merged-write window for large audiences: a live player's media waits up to this long and leaves in one write (e.g. 100ms-350ms: far less CPU per player, that much more latency; 0 = off)"`
	TCPNoDelay       bool          `env:"TCP_NODELAY" help:"keep TCP_NODELAY for live players; off gives their sockets Nagle back: less CPU, at most a round trip of latency (other clients always keep TCP_NODELAY)"`
	ChunkSize        int           `env:"CHUNK_SIZE" min:"128" max:"65536" help:"outgoing RTMP chunk size"`
	StrictApps       bool          `env:"STRICT_APPS" help:"accept only applications that have a folder in the data dir, as FMS"`
	PublisherGrace   time.Duration `env:"PUBLISHER_GRACE" off:"0" help:"how long players wait for a vanished publisher to come back (0 = tell them at once)"`
	DebugAddr        string        `env:"DEBUG_ADDR" kind:"address" help:"address for Go's pprof profiles over HTTP, without a token (keep it on loopback; the admin API serves them behind its token)"`
	ShutdownTimeout  time.Duration `env:"SHUTDOWN_TIMEOUT" help:"longest graceful shutdown"`

	HTTPAddr         string        `env:"HTTP_ADDR" off:"" kind:"address" help:"TCP address for RTMPT, RTMP over HTTP (the RTMP port serves it too)"`
	TLSCert          string        `env:"TLS_CERT" help:"PEM certificate chain file: enables RTMPS and RTMPTS (TLS is also sniffed on the RTMP and HTTP ports)"`
	TLSKey           string        `env:"TLS_KEY" help:"PEM private key file of the certificate"`
	TLSAddr          string        `env:"TLS_ADDR" off:"" kind:"address" help:"TCP address for RTMPS/RTMPTS when a certificate is set"`
	TrustedProxies   string        `env:"TRUSTED_PROXIES" kind:"cidrs" help:"comma-separated CIDRs of reverse proxies whose X-Forwarded-For / Forwarded headers name the client"`
	RTMPTHold        time.Duration `env:"RTMPT_HOLD" off:"0" max:"10s" why:"librtmp gives up on a reply after 30s" help:"longest time an RTMPT idle poll waits for data before an empty reply (0 = answer at once)"`
	RTMPTReplyMerge  time.Duration `env:"RTMPT_REPLY_MERGE" off:"0" max:"100ms" why:"a streaming session's writers stop reading its polls after 120ms" help:"how long bytes for a streaming RTMPT player may wait for more before its poll takes them: fewer, fuller replies (0 = a reply per write)"`
	RTMPTTimeout     time.Duration `env:"RTMPT_TIMEOUT" min:"1s" help:"close an RTMPT session that sends no request for this long"`
	RTMPTMaxSessions int           `env:"RTMPT_MAX_SESSIONS" help:"RTMPT sessions at once"`
	RTMPTMaxPerIP    int           `env:"RTMPT_MAX_PER_IP" help:"RTMPT sessions at once from one client address"`
	RTMPTMaxBody     byteSize      `env:"RTMPT_MAX_BODY" min:"4096" help:"largest RTMPT request body, bytes (larger: 413)"`
	RTMPTIDPrefix    string        `env:"RTMPT_ID_PREFIX" kind:"session-id-prefix" help:"characters (up to 8, [A-Za-z0-9]) starting every RTMPT session id: give each instance behind one reverse proxy its own, and route on it"`
	RTMPTDirect      bool          `env:"RTMPT_DIRECT" help:"on plain TCP, serve RTMPT requests after a connection's first one without the HTTP server (false: every request through it)"`
	RTMPTMaxPending  byteSize      `env:"RTMPT_MAX_PENDING" min:"65536" help:"bytes an RTMPT session buffers for its client between polls; a full session blocks its writes (then --stall-timeout applies)"`
	RTMPTConnsPerIP  int           `env:"RTMPT_MAX_CONNS_PER_IP" min:"0" help:"HTTP connections (RTMPT, on any port) open at once from one client address, IPv6 by /64; trusted proxies are not limited per address (0 = the larger of 256 and twice --rtmpt-max-per-ip)"`
	RTMPTMaxBuffered byteSize      `env:"RTMPT_MAX_BUFFERED" help:"request body bytes all HTTP connections together may have buffered (each body's first 8 KiB excepted); a request past it gets 503 and its connection is closed"`
	RTMPTHeadTimeout time.Duration `env:"RTMPT_HEAD_TIMEOUT" min:"100ms" help:"longest time from an HTTP request's first byte to the end of its head"`
	RTMPTBodyTimeout time.Duration `env:"RTMPT_BODY_TIMEOUT" min:"100ms" help:"longest time for an HTTP request body after its head, plus one second per --rtmpt-min-body-rate bytes received"`
	RTMPTMinBodyRate byteSize      `env:"RTMPT_MIN_BODY_RATE" help:"bytes a second that earn a slow request body more time than --rtmpt-body-timeout"`

	RTMPWS             bool          `env:"RTMPWS" help:"RTMP over WebSocket at /rtmp on the RTMP, HTTP and TLS ports: binary frames carry the RTMP bytes, handshake included (protocol rtmpws, or rtmpwss over TLS or behind a trusted proxy that says X-Forwarded-Proto: https)"`
	RTMPWSAllowOrigins string        `env:"RTMPWS_ALLOW_ORIGINS" help:"comma-separated origins (https://example.com) whose pages may open /rtmp; another Origin gets 403 (the hub's own host and requests without Origin are always allowed); * = any"`
	RTMPWSPing         time.Duration `env:"RTMPWS_PING" off:"0" help:"how often the server pings a WebSocket client (also keeps reverse proxies from closing quiet connections; 0 = never)"`
	RTMPWSPongTimeout  time.Duration `env:"RTMPWS_PONG_TIMEOUT" min:"1s" help:"close a WebSocket client whose pong has not come back this long after a ping (close code 1008)"`
	RTMPWSMaxFrame     byteSize      `env:"RTMPWS_MAX_FRAME" min:"4096" max:"16MiB" help:"largest WebSocket message a client may send, bytes; larger closes the connection (1009)"`

	HTTPPlayback     bool          `env:"HTTP_PLAYBACK" help:"serve live streams to browsers on the RTMP, HTTP and TLS ports: /<app>[/<instance>]/<stream>.flv (HTTP-FLV, or WebSocket-FLV when upgraded), .../<stream>/index.m3u8 (LL-HLS) and .../<stream> (a player page); play authorization applies, with the token in the query string"`
	HTTPAllowOrigins string        `env:"HTTP_ALLOW_ORIGINS" help:"comma-separated origins (https://example.com) whose pages may play streams, for CORS and the WebSocket origin check; * = any"`
	HLSSegment       time.Duration `env:"HLS_SEGMENT" min:"100ms" max:"1m" help:"shortest HLS segment; a segment ends at the first keyframe after it"`
	HLSPart          time.Duration `env:"HLS_PART" min:"10ms" max:"10s" help:"shortest LL-HLS part (players buffer about three)"`
	HLSSegments      int           `env:"HLS_SEGMENTS" min:"7" max:"100" why:"LL-HLS needs 7" help:"segments an HLS playlist keeps"`
	HLSIdle          time.Duration `env:"HLS_IDLE" min:"1s" help:"stop a stream's HLS muxer once no HLS request came for this long"`
	HLSMaxMuxers     int           `env:"HLS_MAX_MUXERS" help:"HLS muxers at once (one per stream with HLS viewers); more: 503"`

	CallTimeout     time.Duration `env:"CALL_TIMEOUT" help:"fail a server-to-client call the client has not answered in this long"`
	BWCheck         bool          `env:"BW_CHECK" help:"answer checkBandwidth with the native FMS bandwidth check (onBWCheck bursts, then onBWDone)"`
	SOSyncInterval  time.Duration `env:"SO_SYNC_INTERVAL" help:"shared object sync period: changes within one go out in one message per subscriber"`
	SOSaveInterval  time.Duration `env:"SO_SAVE_INTERVAL" help:"longest a changed persistent shared object waits before it is written to <data>/<app>/sharedobjects/<instance>/"`
	MaxSharedObject int           `env:"MAX_SHARED_OBJECTS" help:"shared objects in use per application instance"`
	MaxSOSize       byteSize      `env:"MAX_SO_SIZE" help:"largest shared object: bytes of slot names and encoded values"`
	MaxSOProperties int           `env:"MAX_SO_PROPERTIES" help:"most slots in one shared object"`
	ScriptTimeout   time.Duration `env:"SCRIPT_TIMEOUT" help:"interrupt a main.asc callback (onConnect, a call, a timer...) that runs longer than this"`
	ScriptQueue     int           `env:"SCRIPT_QUEUE" help:"events waiting for one instance's main.asc; a client call finding it full fails with Application busy"`
	RPCTestApp      string        `env:"RPC_TEST_APP" help:"name of an application given the built-in test methods echo, add, fail, callBack and broadcast (for client tests)"`

	AdminAddr           string        `env:"ADMIN_ADDR" off:"" kind:"address" help:"TCP address of the admin API, metrics and health checks; off loopback it needs --admin-token"`
	AdminToken          string        `env:"ADMIN_TOKEN" help:"bearer token the admin API requires (all but /healthz and /readyz); also enables /debug/pprof/ there"`
	AuthURL             string        `env:"AUTH_URL" kind:"http-url" help:"URL POSTed a JSON request on every connect, publish and play: 2xx allows, anything else denies"`
	AuthTimeout         time.Duration `env:"AUTH_TIMEOUT" min:"1ms" max:"1m" help:"longest wait for the authorization callback"`
	AuthFailOpen        bool          `env:"AUTH_FAIL_OPEN" help:"allow when the authorization callback fails (error, timeout, 5xx) instead of denying"`
	AuthSecret          string        `env:"AUTH_SECRET" help:"secret of signed stream tokens: publish and play need ?token=hex(HMAC-SHA256(secret, app/stream/expires))&expires=<unix time>"`
	MaxConnectionsPerIP int           `env:"MAX_CONNECTIONS_PER_IP" off:"0" help:"clients at once from one address (0 = no limit)"`
	ClientBandwidthOut  byteSize      `env:"CLIENT_BANDWIDTH_OUT" off:"0" help:"bytes per second sent to each client at most (0 = no limit), as FMS setBandwidthLimit"`
	ClientBandwidthIn   byteSize      `env:"CLIENT_BANDWIDTH_IN" off:"0" help:"bytes per second read from each client at most (0 = no limit)"`
	ClientIdleTimeout   time.Duration `env:"CLIENT_IDLE_TIMEOUT" off:"0" min:"1s" help:"disconnect a client that sends nothing for this long while it has no stream publishing or playing, no shared object in use and no call in flight either way, with NetConnection.Connect.IdleTimeout as FMS (0 = off: silent RPC and SharedObject clients stay for ever)"`

	Cluster          string        `env:"CLUSTER" help:"comma-separated nats:// URLs of the NATS cluster this hub shares with the others: streams are published once across the hubs and pulled over RTMP by the hubs that have players (empty = this hub alone, no NATS)"`
	ClusterEmbedded  string        `env:"CLUSTER_EMBEDDED" kind:"address" help:"run a NATS server in this process with this client address (host:port), JetStream stored under <data>/.cluster/<node name>; the hubs' embedded servers form one NATS cluster through --cluster-routes (with --cluster, those servers are joined instead of this one)"`
	ClusterRouteAddr string        `env:"CLUSTER_ROUTE_ADDR" kind:"address" help:"route address of the embedded NATS server, which the other hubs' --cluster-routes name (empty: the host of --cluster-embedded, its port + 2000)"`
	ClusterRoutes    string        `env:"CLUSTER_ROUTES" help:"comma-separated route addresses (host:port) of the other hubs' embedded NATS servers"`
	NodeName         string        `env:"NODE_NAME" help:"this hub's name in the cluster (empty: the host name)"`
	ClusterAdvertise string        `env:"CLUSTER_ADVERTISE" kind:"address" help:"host:port the other hubs pull this hub's streams from over RTMP (empty: --rtmp-addr's, with an unspecified host replaced by this machine's first non-loopback address)"`
	ClusterTTL       time.Duration `env:"CLUSTER_TTL" min:"1s" max:"5m" help:"how long a hub's heartbeat and its streams' claims outlive it: a hub that died leaves the cluster, and its streams may be published on another hub, this long after its last refresh (every third of it)"`
	ClusterOwnerTTL  time.Duration `env:"CLUSTER_OWNER_TTL" min:"1s" max:"5m" help:"how long a hub's ownership of an application instance (its lease, renewed every third of it) outlives the hub: another hub with clients of the instance owns it this long, and at most a sixth more, after the owner died"`
	ClusterSecret    string        `env:"CLUSTER_SECRET" help:"secret the hubs share: it signs their pulls from one another, which the origin allows in place of its authorization (the edge authorized its players); empty: a pull is authorized as any play"`

	QUICAddr        string        `env:"QUIC_ADDR" off:"" kind:"address" help:"UDP address for RTMP over QUIC: ALPN rtmp-quic (RTMP bytes, one stream per connection) and roqr (whole messages framed on QUIC; the gateway relays them to the origin as chunked RTMP)"`
	QUICIdleTimeout time.Duration `env:"QUIC_IDLE_TIMEOUT" min:"1s" help:"close a QUIC connection silent this long"`
	QUICKeepAlive   time.Duration `env:"QUIC_KEEPALIVE" off:"0" help:"QUIC keep-alive period (0 = off)"`
	RoQRDatagrams   bool          `env:"ROQR_DATAGRAMS" help:"offer QUIC DATAGRAMs to RoQR clients: with a client that offers them too, inter frames and audio frames travel in datagrams (a lost one is dropped, not waited for); commands, metadata, sequence headers and keyframes stay on the stream"`
	Upstream        string        `env:"UPSTREAM" kind:"rtmp-url" help:"gateway mode: forward every client, byte for byte, to this rtmp://host:port origin instead of serving it here"`
	UpstreamProxy   int           `env:"UPSTREAM_PROXY_PROTOCOL" off:"0" max:"2" help:"send a PROXY protocol header (1 or 2) to the upstream naming the client; 0 = off"`
	UpstreamTimeout time.Duration `env:"UPSTREAM_TIMEOUT" help:"longest wait to connect to the upstream before refusing the client"`

	// explicit holds the names of the fields set by the environment or a
	// flag, as opposed to their defaults.
	explicit map[string]bool
}

const envPrefix = "RTMPHUB_"

// setting describes one field of config for flags, errors and help.
type setting struct {
	field reflect.StructField
	value reflect.Value
	env   string // full variable name
	flag  string
	def   string // the default, as help shows it
}

// settings is the table: one row per field of cfg that has an env tag.
func settings(cfg *config) []setting {
	out := rows(cfg)
	defs := defaultTexts()
	for i := range out {
		out[i].def = defs[out[i].field.Name]
	}
	return out
}

// rows is the table without the defaults, which it serves to compute.
func rows(cfg *config) []setting {
	v := reflect.ValueOf(cfg).Elem()
	t := v.Type()
	out := make([]setting, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("env")
		if name == "" {
			continue
		}
		out = append(out, setting{
			field: f,
			value: v.Field(i),
			env:   envPrefix + name,
			flag:  strings.ReplaceAll(strings.ToLower(name), "_", "-"),
		})
	}
	return out
}

// defaultTexts is the default of every row as help shows it.
var defaultTexts = sync.OnceValue(func() map[string]string {
	m := make(map[string]string)
	for _, s := range rows(defaultConfig()) {
		m[s.field.Name] = s.text()
	}
	return m
})

// name is how messages name the setting: "RTMPHUB_ADMIN_ADDR / --admin-addr".
func (s setting) name() string { return s.env + " / --" + s.flag }

// text is the setting's value as help and errors show it.
func (s setting) text() string {
	if d, ok := s.value.Interface().(time.Duration); ok {
		return formatDuration(d)
	}
	return fmt.Sprint(s.value.Interface())
}

// formatDuration writes d as a user would: 0, 500ms, 10s, 1m, 1m30s.
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	t := d.String()
	if strings.HasSuffix(t, "m0s") {
		t = strings.TrimSuffix(t, "0s")
	}
	if strings.HasSuffix(t, "h0m") {
		t = strings.TrimSuffix(t, "0m")
	}
	return t
}

// offValue is what an empty value sets: the row's off tag, or its default
// when that is empty (such a setting is off unless set). ok is false for a
// setting that cannot be off, where an empty value is an error: an empty
// --rtmp-addr would listen on a random port, an empty --data-dir in the
// working directory, an empty --gop-cache is neither true nor false.
func (s setting) offValue() (v string, ok bool) {
	if v, ok := s.field.Tag.Lookup("off"); ok {
		return v, true
	}
	if s.def == "" {
		return "", true
	}
	return "", false
}

// setEmpty applies an empty value to s.
func (s setting) setEmpty() error {
	off, ok := s.offValue()
	if !ok {
		return fmt.Errorf("must not be empty: this setting has no off; unset it for the default %q", s.def)
	}
	if off == "" {
		s.value.SetZero()
		return nil
	}
	return s.parse(off)
}

// kind is the type the row's kind tag names (nil: the field's own type).
func (s setting) kind() reflect.Type {
	k := s.field.Tag.Get("kind")
	if k == "" {
		return nil
	}
	t, ok := kinds[k]
	if !ok {
		panic("setting " + s.field.Name + ": no kind " + k)
	}
	return t
}

// parse sets s from text, through its kind's or its type's own parsing.
func (s setting) parse(text string) error { return parseInto(s.value, s.kind(), text) }

// parseInto sets v from text. A kind, or v's own type, that implements
// encoding.TextUnmarshaler parses itself; the plain types are parsed here.
func parseInto(v reflect.Value, kind reflect.Type, text string) error {
	p := v.Addr()
	if kind != nil {
		p = p.Convert(reflect.PointerTo(kind)) // *string as *address: the same bytes
	}
	if u, ok := p.Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(text))
	}
	switch v.Interface().(type) {
	case string:
		v.SetString(text)
	case bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return errors.New("want true or false")
		}
		v.SetBool(b)
	case int:
		n, err := strconv.Atoi(text)
		if err != nil {
			return errors.New("want a whole number")
		}
		v.SetInt(int64(n))
	case time.Duration:
		d, err := time.ParseDuration(text)
		if err != nil {
			return errors.New("want a duration such as 500ms or 10s")
		}
		v.SetInt(int64(d))
	default:
		return fmt.Errorf("unsupported setting type %s", v.Type())
	}
	return nil
}

// check validates the value s holds: its kind (the environment sets a
// string row without it) and its bounds.
func (s setting) check() error {
	if k := s.kind(); k != nil && s.value.Kind() == reflect.String && s.value.String() != "" {
		if err := parseInto(reflect.New(s.field.Type).Elem(), k, s.value.String()); err != nil {
			return err
		}
	}
	return s.checkBounds()
}

// checkBounds holds a number or duration to its row's min and max. The
// message is made of the tags, as the user writes the values.
func (s setting) checkBounds() error {
	if k := s.value.Kind(); k != reflect.Int && k != reflect.Int64 {
		return nil
	}
	off, canOff := s.offValue()
	canOff = canOff && off == "0"
	minText, hasMin := s.field.Tag.Lookup("min")
	maxText, hasMax := s.field.Tag.Lookup("max")
	lo, hi := int64(1), int64(0)
	if canOff {
		lo = 0
	}
	if hasMin {
		lo = s.bound(minText)
	} else {
		minText = strconv.FormatInt(lo, 10)
	}
	if hasMax {
		hi = s.bound(maxText)
	}
	n := s.value.Int()
	if canOff && n == 0 || n >= lo && (!hasMax || n <= hi) {
		return nil
	}
	var msg string
	switch {
	case hasMax:
		msg = "must be from " + minText + " to " + maxText
	case canOff && lo > 0:
		msg = "must be 0 (off) or at least " + minText
	case lo == 0:
		msg = "must not be negative"
	case hasMin:
		msg = "must be at least " + minText
	default:
		msg = "must be positive"
	}
	if why := s.field.Tag.Get("why"); why != "" {
		msg += " (" + why + ")"
	}
	return errors.New(msg)
}

// bound parses a min or max tag as a value of the row.
func (s setting) bound(text string) int64 {
	v := reflect.New(s.field.Type).Elem()
	if err := parseInto(v, nil, text); err != nil {
		panic(fmt.Sprintf("setting %s: bound %q: %v", s.field.Name, text, err))
	}
	return v.Int()
}

// setting returns the row of the config field p points to.
func (c *config) setting(p any) setting {
	ptr := reflect.ValueOf(p).Pointer()
	for _, s := range settings(c) {
		if s.value.Addr().Pointer() == ptr {
			return s
		}
	}
	panic(fmt.Sprintf("no setting at %T %#x", p, ptr))
}

// name is how messages name the setting of the field p points to.
func (c *config) name(p any) string { return c.setting(p).name() }

// isExplicit reports whether the field p points to was set by the
// environment or a flag rather than left at its default.
func (c *config) isExplicit(p any) bool { return c.explicit[c.setting(p).field.Name] }

// settingError names the variable and flag of a bad setting in one line.
type settingError struct {
	s   setting
	val string
	err error
}

func (e *settingError) Error() string {
	return fmt.Sprintf("bad setting %s = %q: %v", e.s.name(), e.val, e.err)
}

// loadConfig reads the environment (through lookup), then the flags in
// args. It returns flag.ErrHelp when help was asked for.
func loadConfig(args []string, environ map[string]string, usage io.Writer) (*config, error) {
	cfg := defaultConfig()
	// env reads an empty variable as unset (its default); empty ones are
	// kept from it and applied after, by the same rule as an empty flag.
	nonEmpty := make(map[string]string, len(environ))
	for k, v := range environ {
		if v != "" {
			nonEmpty[k] = v
		}
	}
	if err := env.ParseWithOptions(cfg, env.Options{Prefix: envPrefix, Environment: nonEmpty}); err != nil {
		return nil, envError(cfg, err, environ)
	}
	for _, s := range settings(cfg) {
		if v, ok := environ[s.env]; ok && v == "" {
			if err := s.setEmpty(); err != nil {
				return nil, &settingError{s: s, err: err}
			}
		}
	}
	fs := flag.NewFlagSet("rtmphub serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, s := range settings(cfg) {
		fs.Var(fieldValue{s}, s.flag, s.field.Tag.Get("help"))
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printSettings(usage)
			return nil, err
		}
		return nil, flagError(cfg, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.explicit = make(map[string]bool)
	for _, s := range settings(cfg) {
		if _, ok := environ[s.env]; ok {
			cfg.explicit[s.field.Name] = true
		}
	}
	fs.Visit(func(f *flag.Flag) {
		for _, s := range settings(cfg) {
			if s.flag == f.Name {
				cfg.explicit[s.field.Name] = true
			}
		}
	})
	return cfg, validate(cfg)
}

// envError turns env's errors into one line naming variable and flag.
func envError(cfg *config, err error, environ map[string]string) error {
	var agg env.AggregateError
	if errors.As(err, &agg) && len(agg.Errors) > 0 {
		err = agg.Errors[0]
	}
	var pe env.ParseError
	if errors.As(err, &pe) {
		for _, s := range settings(cfg) {
			if s.field.Name == pe.Name {
				return &settingError{s: s, val: environ[s.env], err: pe.Err}
			}
		}
	}
	return fmt.Errorf("bad environment: %w", err)
}

// flagError names the variable along with the flag flag.Parse complained
// of, in the words of an environment error: bad setting X / --x = "v": why.
func flagError(cfg *config, err error) error {
	msg := err.Error()
	for _, s := range settings(cfg) {
		if !strings.Contains(msg, " -"+s.flag+":") {
			continue
		}
		if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
			if val, err := strconv.QuotedPrefix(rest); err == nil {
				if why, ok := strings.CutPrefix(rest[len(val):], " for flag -"+s.flag+": "); ok {
					return fmt.Errorf("bad setting %s = %s: %s", s.name(), val, why)
				}
			}
		}
		return fmt.Errorf("bad setting %s: %s", s.name(), strings.TrimPrefix(msg, "invalid value "))
	}
	return fmt.Errorf("%s (see rtmphub help)", msg)
}

// validate checks every row by itself (setting.check), then the rules
// between rows.
func validate(cfg *config) error {
	var errs []error
	for _, s := range settings(cfg) {
		if err := s.check(); err != nil {
			errs = append(errs, &settingError{s: s, val: s.text(), err: err})
		}
	}
	rule := func(p any, ok bool, why string) {
		if !ok {
			s := cfg.setting(p)
			errs = append(errs, &settingError{s: s, val: s.text(), err: errors.New(why)})
		}
	}
	rule(&cfg.TLSCert, cfg.TLSCert != "" || cfg.TLSKey == "", "a key ("+cfg.name(&cfg.TLSKey)+") needs its certificate")
	rule(&cfg.TLSKey, cfg.TLSKey != "" || cfg.TLSCert == "", "a certificate ("+cfg.name(&cfg.TLSCert)+") needs its key")
	rule(&cfg.RTMPTTimeout, cfg.RTMPTTimeout > 2*cfg.RTMPTHold, "must be more than twice "+cfg.name(&cfg.RTMPTHold))
	rule(&cfg.RTMPTMaxBuffered, cfg.RTMPTMaxBuffered >= cfg.RTMPTMaxBody, "must be at least "+cfg.name(&cfg.RTMPTMaxBody))
	rule(&cfg.AdminAddr, cfg.AdminAddr == "" || cfg.AdminToken != "" || admin.IsLoopback(cfg.AdminAddr),
		"an admin API bound off loopback needs a token ("+cfg.name(&cfg.AdminToken)+")")
	rule(&cfg.ClusterRoutes, cfg.ClusterRoutes == "" || cfg.ClusterEmbedded != "", "routes need an embedded NATS server ("+cfg.name(&cfg.ClusterEmbedded)+")")
	rule(&cfg.ClusterRouteAddr, cfg.ClusterRouteAddr == "" || cfg.ClusterEmbedded != "", "needs an embedded NATS server ("+cfg.name(&cfg.ClusterEmbedded)+")")
	for _, u := range splitList(cfg.Cluster) {
		rule(&cfg.Cluster, strings.HasPrefix(u, "nats://") || strings.HasPrefix(u, "tls://"), "want comma-separated nats:// URLs")
	}
	return errors.Join(errs...)
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// fieldValue is a flag.Value over one config field.
type fieldValue struct{ s setting }

func (f fieldValue) String() string {
	if !f.s.value.IsValid() {
		return ""
	}
	return f.s.text()
}

func (f fieldValue) IsBoolFlag() bool { return f.s.value.IsValid() && f.s.value.Kind() == reflect.Bool }

func (f fieldValue) Set(s string) error {
	if s == "" {
		return f.s.setEmpty()
	}
	return f.s.parse(s)
}

func printSettings(w io.Writer) {
	var cfg config
	fmt.Fprintf(w, "Settings (flag > environment > default). An empty value (RTMPHUB_QUIC_ADDR= or\n"+
		"--quic-addr=) turns off a setting marked [empty = off] and is an error for the others:\n")
	for _, s := range settings(&cfg) {
		help := s.field.Tag.Get("help")
		if off, ok := s.offValue(); ok {
			if off == "" {
				help += " [empty = off]"
			} else {
				help += " [empty = " + off + "]"
			}
		}
		fmt.Fprintf(w, "  --%-18s %-26s default %-10q %s\n", s.flag, s.env, s.def, help)
	}
}

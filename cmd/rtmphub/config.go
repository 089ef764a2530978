package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/rtmphub/rtmphub/session/admin"
	"github.com/rtmphub/rtmphub/tunnel"
)

// config is every setting of the binary. Each field is read from the
// environment variable RTMPHUB_<env> and from the flag of the same name in
// lower case with dashes; a flag wins over the environment, which wins over
// the default.
//
// An empty value, a variable set to nothing or a flag given "", is not
// "the default": it turns the setting off when the setting has an off
// value, and is an error otherwise (see setting.offValue). A row's off
// value is its off tag, or its default when that is empty already.
type config struct {
	RTMPAddr         string        `env:"RTMP_ADDR" envDefault:":1935" help:"TCP address for RTMP"`
	DataDir          string        `env:"DATA_DIR" envDefault:"./data" help:"applications folder: <data>/<app>/..."`
	LogLevel         string        `env:"LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`
	LogFormat        string        `env:"LOG_FORMAT" envDefault:"text" help:"text or json"`
	MaxConnections   int           `env:"MAX_CONNECTIONS" envDefault:"10000" help:"clients at once, all transports"`
	MaxMessageSize   int           `env:"MAX_MESSAGE_SIZE" envDefault:"8388608" help:"largest message accepted from a client, bytes"`
	PlayerQueue      int           `env:"PLAYER_QUEUE" envDefault:"512" help:"messages queued per player before it skips to the next keyframe"`
	PlayerQueueBytes int           `env:"PLAYER_QUEUE_BYTES" envDefault:"4194304" help:"payload bytes queued per player before it skips to the next keyframe"`
	StallTimeout     time.Duration `env:"STALL_TIMEOUT" envDefault:"10s" help:"disconnect a client whose writes stall this long"`
	GOPCache         bool          `env:"GOP_CACHE" envDefault:"true" help:"start players at the last keyframe"`
	WriteMerge       time.Duration `env:"WRITE_MERGE" envDefault:"50ms" off:"0" help:"longest wait of audio for the next video frame to share a write (0 = write every message at once)"`
	TCPNoDelay       bool          `env:"TCP_NODELAY" envDefault:"false" help:"keep TCP_NODELAY for live players; off gives their sockets Nagle back: less CPU, at most a round trip of latency (other clients always keep TCP_NODELAY)"`
	ChunkSize        int           `env:"CHUNK_SIZE" envDefault:"4096" help:"outgoing RTMP chunk size"`
	StrictApps       bool          `env:"STRICT_APPS" envDefault:"false" help:"accept only applications that have a folder in the data dir, as FMS"`
	PublisherGrace   time.Duration `env:"PUBLISHER_GRACE" envDefault:"3s" off:"0" help:"how long players wait for a vanished publisher to come back (0 = tell them at once)"`
	DebugAddr        string        `env:"DEBUG_ADDR" envDefault:"" help:"address for Go's pprof profiles over HTTP, without a token (keep it on loopback; the admin API serves them behind its token)"`
	ShutdownTimeout  time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"5s" help:"longest graceful shutdown"`

	HTTPAddr         string        `env:"HTTP_ADDR" envDefault:":80" off:"" help:"TCP address for RTMPT, RTMP over HTTP (the RTMP port serves it too)"`
	TLSCert          string        `env:"TLS_CERT" envDefault:"" help:"PEM certificate chain file: enables RTMPS and RTMPTS (TLS is also sniffed on the RTMP and HTTP ports)"`
	TLSKey           string        `env:"TLS_KEY" envDefault:"" help:"PEM private key file of the certificate"`
	TLSAddr          string        `env:"TLS_ADDR" envDefault:":443" off:"" help:"TCP address for RTMPS/RTMPTS when a certificate is set"`
	TrustedProxies   string        `env:"TRUSTED_PROXIES" envDefault:"" help:"comma-separated CIDRs of reverse proxies whose X-Forwarded-For / Forwarded headers name the client"`
	RTMPTHold        time.Duration `env:"RTMPT_HOLD" envDefault:"500ms" off:"0" help:"longest time an RTMPT idle poll waits for data before an empty reply (0 = answer at once)"`
	RTMPTTimeout     time.Duration `env:"RTMPT_TIMEOUT" envDefault:"15s" help:"close an RTMPT session that sends no request for this long"`
	RTMPTMaxSessions int           `env:"RTMPT_MAX_SESSIONS" envDefault:"10000" help:"RTMPT sessions at once"`
	RTMPTMaxPerIP    int           `env:"RTMPT_MAX_PER_IP" envDefault:"100" help:"RTMPT sessions at once from one client address"`
	RTMPTMaxBody     int           `env:"RTMPT_MAX_BODY" envDefault:"8388608" help:"largest RTMPT request body, bytes (larger: 413)"`
	RTMPTIDPrefix    string        `env:"RTMPT_ID_PREFIX" envDefault:"" help:"characters (up to 8, [A-Za-z0-9]) starting every RTMPT session id: give each instance behind one reverse proxy its own, and route on it"`
	RTMPTDirect      bool          `env:"RTMPT_DIRECT" envDefault:"true" help:"on plain TCP, serve RTMPT requests after a connection's first one without the HTTP server (false: every request through it)"`
	RTMPTMaxPending  int           `env:"RTMPT_MAX_PENDING" envDefault:"1048576" help:"bytes an RTMPT session buffers for its client between polls; a full session blocks its writes (then --stall-timeout applies)"`
	RTMPTConnsPerIP  int           `env:"RTMPT_MAX_CONNS_PER_IP" envDefault:"0" help:"HTTP connections (RTMPT, on any port) open at once from one client address, IPv6 by /64; trusted proxies are not limited per address (0 = the larger of 256 and twice --rtmpt-max-per-ip)"`
	RTMPTMaxBuffered int           `env:"RTMPT_MAX_BUFFERED" envDefault:"67108864" help:"request body bytes all HTTP connections together may have buffered (each body's first 8 KiB excepted); a request past it gets 503 and its connection is closed"`
	RTMPTHeadTimeout time.Duration `env:"RTMPT_HEAD_TIMEOUT" envDefault:"10s" help:"longest time from an HTTP request's first byte to the end of its head"`
	RTMPTBodyTimeout time.Duration `env:"RTMPT_BODY_TIMEOUT" envDefault:"10s" help:"longest time for an HTTP request body after its head, plus one second per --rtmpt-min-body-rate bytes received"`
	RTMPTMinBodyRate int           `env:"RTMPT_MIN_BODY_RATE" envDefault:"8192" help:"bytes a second that earn a slow request body more time than --rtmpt-body-timeout"`

	CallTimeout     time.Duration `env:"CALL_TIMEOUT" envDefault:"30s" help:"fail a server-to-client call the client has not answered in this long"`
	BWCheck         bool          `env:"BW_CHECK" envDefault:"true" help:"answer checkBandwidth with the native FMS bandwidth check (onBWCheck bursts, then onBWDone)"`
	SOSyncInterval  time.Duration `env:"SO_SYNC_INTERVAL" envDefault:"20ms" help:"shared object sync period: changes within one go out in one message per subscriber"`
	SOSaveInterval  time.Duration `env:"SO_SAVE_INTERVAL" envDefault:"1s" help:"longest a changed persistent shared object waits before it is written to <data>/<app>/sharedobjects/<instance>/"`
	MaxSharedObject int           `env:"MAX_SHARED_OBJECTS" envDefault:"1000" help:"shared objects in use per application instance"`
	MaxSOSize       int           `env:"MAX_SO_SIZE" envDefault:"1048576" help:"largest shared object: bytes of slot names and encoded values"`
	MaxSOProperties int           `env:"MAX_SO_PROPERTIES" envDefault:"10000" help:"most slots in one shared object"`
	ScriptTimeout   time.Duration `env:"SCRIPT_TIMEOUT" envDefault:"5s" help:"interrupt a main.asc callback (onConnect, a call, a timer...) that runs longer than this"`
	ScriptQueue     int           `env:"SCRIPT_QUEUE" envDefault:"4096" help:"events waiting for one instance's main.asc; a client call finding it full fails with Application busy"`
	RPCTestApp      string        `env:"RPC_TEST_APP" envDefault:"" help:"name of an application given the built-in test methods echo, add, fail, callBack and broadcast (for client tests)"`

	AdminAddr           string        `env:"ADMIN_ADDR" envDefault:"127.0.0.1:1111" off:"" help:"TCP address of the admin API, metrics and health checks; off loopback it needs --admin-token"`
	AdminToken          string        `env:"ADMIN_TOKEN" envDefault:"" help:"bearer token the admin API requires (all but /healthz and /readyz); also enables /debug/pprof/ there"`
	AuthURL             string        `env:"AUTH_URL" envDefault:"" help:"URL POSTed a JSON request on every connect, publish and play: 2xx allows, anything else denies"`
	AuthTimeout         time.Duration `env:"AUTH_TIMEOUT" envDefault:"5s" help:"longest wait for the authorization callback"`
	AuthFailOpen        bool          `env:"AUTH_FAIL_OPEN" envDefault:"false" help:"allow when the authorization callback fails (error, timeout, 5xx) instead of denying"`
	AuthSecret          string        `env:"AUTH_SECRET" envDefault:"" help:"secret of signed stream tokens: publish and play need ?token=hex(HMAC-SHA256(secret, app/stream/expires))&expires=<unix time>"`
	MaxConnectionsPerIP int           `env:"MAX_CONNECTIONS_PER_IP" envDefault:"0" off:"0" help:"clients at once from one address (0 = no limit)"`
	ClientBandwidthOut  int           `env:"CLIENT_BANDWIDTH_OUT" envDefault:"0" off:"0" help:"bytes per second sent to each client at most (0 = no limit), as FMS setBandwidthLimit"`
	ClientBandwidthIn   int           `env:"CLIENT_BANDWIDTH_IN" envDefault:"0" off:"0" help:"bytes per second read from each client at most (0 = no limit)"`
	ClientIdleTimeout   time.Duration `env:"CLIENT_IDLE_TIMEOUT" envDefault:"0" off:"0" help:"disconnect a client that sends nothing for this long while it has no stream publishing or playing, no shared object in use and no call in flight either way, with NetConnection.Connect.IdleTimeout as FMS (0 = off: silent RPC and SharedObject clients stay for ever)"`

	QUICAddr        string        `env:"QUIC_ADDR" envDefault:":1935" off:"" help:"UDP address for RTMP over QUIC: ALPN rtmp-quic (RTMP bytes, one stream per connection) and roqr (whole messages framed on QUIC; the gateway relays them to the origin as chunked RTMP)"`
	QUICIdleTimeout time.Duration `env:"QUIC_IDLE_TIMEOUT" envDefault:"30s" help:"close a QUIC connection silent this long"`
	QUICKeepAlive   time.Duration `env:"QUIC_KEEPALIVE" envDefault:"10s" off:"0" help:"QUIC keep-alive period (0 = off)"`
	RoQRDatagrams   bool          `env:"ROQR_DATAGRAMS" envDefault:"true" help:"offer QUIC DATAGRAMs to RoQR clients: with a client that offers them too, inter frames and audio frames travel in datagrams (a lost one is dropped, not waited for); commands, metadata, sequence headers and keyframes stay on the stream"`
	Upstream        string        `env:"UPSTREAM" envDefault:"" help:"gateway mode: forward every client, byte for byte, to this rtmp://host:port origin instead of serving it here"`
	UpstreamProxy   int           `env:"UPSTREAM_PROXY_PROTOCOL" envDefault:"0" off:"0" help:"send a PROXY protocol header (1 or 2) to the upstream naming the client; 0 = off"`
	UpstreamTimeout time.Duration `env:"UPSTREAM_TIMEOUT" envDefault:"5s" help:"longest wait to connect to the upstream before refusing the client"`

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
}

func settings(cfg *config) []setting {
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

// offValue is what an empty value sets: the row's off tag, or its default
// when that is empty (such a setting is off unless set). ok is false for a
// setting that cannot be off, where an empty value is an error: an empty
// --rtmp-addr would listen on a random port, an empty --data-dir in the
// working directory, an empty --gop-cache is neither true nor false.
func (s setting) offValue() (v string, ok bool) {
	if v, ok := s.field.Tag.Lookup("off"); ok {
		return v, true
	}
	if s.field.Tag.Get("envDefault") == "" {
		return "", true
	}
	return "", false
}

// setEmpty applies an empty value to s.
func (s setting) setEmpty() error {
	off, ok := s.offValue()
	if !ok {
		return fmt.Errorf("must not be empty: this setting has no off; unset it for the default %q", s.field.Tag.Get("envDefault"))
	}
	return fieldValue{s}.Set(off)
}

// settingError names the variable and flag of a bad setting in one line.
type settingError struct {
	s   setting
	val string
	err error
}

func (e *settingError) Error() string {
	return fmt.Sprintf("bad setting %s / --%s = %q: %v", e.s.env, e.s.flag, e.val, e.err)
}

// loadConfig reads the environment (through lookup), then the flags in
// args. It returns flag.ErrHelp when help was asked for.
func loadConfig(args []string, environ map[string]string, usage io.Writer) (*config, error) {
	cfg := &config{}
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

// flagError names the variable along with the flag flag.Parse complained of.
func flagError(cfg *config, err error) error {
	msg := err.Error()
	for _, s := range settings(cfg) {
		if strings.Contains(msg, " -"+s.flag+":") {
			return fmt.Errorf("bad setting %s / --%s: %s", s.env, s.flag, strings.TrimPrefix(msg, "invalid value "))
		}
	}
	return fmt.Errorf("%s (see rtmphub help)", msg)
}

func validate(cfg *config) error {
	ss := settings(cfg)
	find := func(name string) setting {
		for _, s := range ss {
			if s.field.Name == name {
				return s
			}
		}
		panic("no setting " + name)
	}
	check := func(name string, ok bool, why string) error {
		if ok {
			return nil
		}
		s := find(name)
		return &settingError{s: s, val: fmt.Sprint(s.value.Interface()), err: errors.New(why)}
	}
	var level slog.Level
	_, trustedErr := tunnel.ParsePrefixes(cfg.TrustedProxies)
	return errors.Join(
		check("LogLevel", level.UnmarshalText([]byte(cfg.LogLevel)) == nil, "want debug, info, warn or error"),
		check("LogFormat", cfg.LogFormat == "text" || cfg.LogFormat == "json", "want text or json"),
		check("MaxConnections", cfg.MaxConnections > 0, "must be positive"),
		check("MaxMessageSize", cfg.MaxMessageSize >= 1024 && cfg.MaxMessageSize <= 0xFFFFFF, "must be from 1024 to 16777215 (the largest RTMP message length)"),
		check("PlayerQueue", cfg.PlayerQueue >= 16 && cfg.PlayerQueue <= 1<<20, "must be from 16 to 1048576"),
		check("PlayerQueueBytes", cfg.PlayerQueueBytes >= 64<<10, "must be at least 65536"),
		check("StallTimeout", cfg.StallTimeout > 0, "must be positive"),
		check("WriteMerge", cfg.WriteMerge >= 0 && cfg.WriteMerge <= time.Second, "must be from 0 to 1s"),
		check("ChunkSize", cfg.ChunkSize >= 128 && cfg.ChunkSize <= 65536, "must be from 128 to 65536"),
		check("PublisherGrace", cfg.PublisherGrace >= 0, "must not be negative"),
		check("ShutdownTimeout", cfg.ShutdownTimeout > 0, "must be positive"),
		check("TLSCert", cfg.TLSCert != "" || cfg.TLSKey == "", "a key needs its certificate (RTMPHUB_TLS_CERT / --tls-cert)"),
		check("TLSKey", cfg.TLSKey != "" || cfg.TLSCert == "", "a certificate needs its key (RTMPHUB_TLS_KEY / --tls-key)"),
		check("TrustedProxies", trustedErr == nil, fmt.Sprint(trustedErr)),
		check("RTMPTHold", cfg.RTMPTHold >= 0 && cfg.RTMPTHold <= 10*time.Second, "must be from 0 to 10s (librtmp gives up on a reply after 30s)"),
		check("RTMPTTimeout", cfg.RTMPTTimeout >= time.Second && cfg.RTMPTTimeout > 2*cfg.RTMPTHold, "must be at least 1s and more than twice --rtmpt-hold"),
		check("RTMPTMaxSessions", cfg.RTMPTMaxSessions > 0, "must be positive"),
		check("RTMPTMaxPerIP", cfg.RTMPTMaxPerIP > 0, "must be positive"),
		check("RTMPTMaxBody", cfg.RTMPTMaxBody >= 4096, "must be at least 4096"),
		check("RTMPTMaxPending", cfg.RTMPTMaxPending >= 65536, "must be at least 65536"),
		check("RTMPTConnsPerIP", cfg.RTMPTConnsPerIP >= 0, "must not be negative"),
		check("RTMPTMaxBuffered", cfg.RTMPTMaxBuffered >= cfg.RTMPTMaxBody, "must be at least --rtmpt-max-body"),
		check("RTMPTHeadTimeout", cfg.RTMPTHeadTimeout >= 100*time.Millisecond, "must be at least 100ms"),
		check("RTMPTBodyTimeout", cfg.RTMPTBodyTimeout >= 100*time.Millisecond, "must be at least 100ms"),
		check("RTMPTMinBodyRate", cfg.RTMPTMinBodyRate > 0, "must be positive"),
		check("RTMPTIDPrefix", tunnel.ValidSessionIDPrefix(cfg.RTMPTIDPrefix), "must be at most 8 characters [A-Za-z0-9]"),
		check("AdminAddr", cfg.AdminAddr == "" || cfg.AdminToken != "" || admin.IsLoopback(cfg.AdminAddr),
			"an admin API bound off loopback needs a token (RTMPHUB_ADMIN_TOKEN / --admin-token)"),
		check("AuthURL", validHookURL(cfg.AuthURL), "want an http:// or https:// URL"),
		check("AuthTimeout", cfg.AuthTimeout > 0 && cfg.AuthTimeout <= time.Minute, "must be positive, at most 1m"),
		check("MaxConnectionsPerIP", cfg.MaxConnectionsPerIP >= 0, "must not be negative"),
		check("ClientBandwidthOut", cfg.ClientBandwidthOut >= 0, "must not be negative"),
		check("ClientBandwidthIn", cfg.ClientBandwidthIn >= 0, "must not be negative"),
		check("ClientIdleTimeout", cfg.ClientIdleTimeout == 0 || cfg.ClientIdleTimeout >= time.Second, "must be 0 (off) or at least 1s"),
		check("QUICIdleTimeout", cfg.QUICIdleTimeout >= time.Second, "must be at least 1s"),
		check("QUICKeepAlive", cfg.QUICKeepAlive >= 0, "must not be negative"),
		check("Upstream", validUpstream(cfg.Upstream), "want rtmp://host[:port]"),
		check("UpstreamProxy", cfg.UpstreamProxy >= 0 && cfg.UpstreamProxy <= 2, "want 0 (off), 1 or 2"),
		check("UpstreamTimeout", cfg.UpstreamTimeout > 0, "must be positive"),
	)
}

// fieldValue is a flag.Value over one config field.
type fieldValue struct{ s setting }

func (f fieldValue) String() string {
	if !f.s.value.IsValid() {
		return ""
	}
	return fmt.Sprint(f.s.value.Interface())
}

func (f fieldValue) IsBoolFlag() bool { return f.s.value.IsValid() && f.s.value.Kind() == reflect.Bool }

func (f fieldValue) Set(s string) error {
	v := f.s.value
	if s == "" {
		if off, ok := f.s.offValue(); !ok || off != "" {
			return f.s.setEmpty()
		}
	}
	switch v.Interface().(type) {
	case string:
		v.SetString(s)
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("want true or false")
		}
		v.SetBool(b)
	case int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return errors.New("want a whole number")
		}
		v.SetInt(int64(n))
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return errors.New("want a duration such as 500ms or 10s")
		}
		v.SetInt(int64(d))
	default:
		return fmt.Errorf("unsupported setting type %s", v.Type())
	}
	return nil
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
		fmt.Fprintf(w, "  --%-18s %-26s default %-10q %s\n", s.flag, s.env, s.field.Tag.Get("envDefault"), help)
	}
}

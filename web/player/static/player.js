// rtmphub player page: plays one live stream as HTTP-FLV or WebSocket-FLV
// (mpegts.js), or LL-HLS (hls.js, or the browser's own HLS). The page's
// <main> carries the media URLs in data attributes; the choice of protocol
// is ?proto=flv|ws|hls, else the best the browser has.
//
// For tests and the curious: window.rtmphubPlayer holds the state
// (proto, engine, url, state, latency, errors[], retries, ...); every
// player error is also written with console.error.
(() => {
  'use strict';

  const root = document.getElementById('rtmphub-player');
  const video = document.getElementById('rtmphub-video');
  const statusEl = document.getElementById('rtmphub-status');
  const cfg = root.dataset;

  const MAX_ERRORS = 50;
  const BACKOFF_MS = [1000, 2000, 4000, 8000, 10000];
  const STALL_MS = 10000; // no progress for this long: start again

  const st = {
    proto: '',     // flv | ws | hls
    engine: '',    // mpegts.js | hls.js | native
    url: '',
    state: 'starting', // starting | loading | playing | waiting | retrying | failed
    latency: null, // seconds: end of the buffer minus the playhead
    liveEdge: null, // hls.js only: seconds behind the playlist's live edge
    errors: [],
    retries: 0,    // retries since playback last went well
    starts: 0,
    frames: 0,
    width: 0,
    height: 0,
    restart: () => restart(),
  };
  window.rtmphubPlayer = st;

  let player = null;   // mpegts.js player
  let hls = null;      // hls.js instance
  let retryTimer = 0;
  let retryAt = 0;
  let lastProgress = { t: -1, at: 0 };
  let hlsLoading = null;
  let shownError = ''; // the status line's error, until playback resumes

  function wsURL(p) {
    const u = new URL(p, location.href);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.href;
  }

  function nativeHLS() {
    return video.canPlayType('application/vnd.apple.mpegurl') !== '';
  }

  function hasMSEPlayback() {
    return !!(window.mpegts && mpegts.getFeatureList().mseLivePlayback);
  }

  // choose returns [proto, engine].
  function choose() {
    switch (cfg.proto) {
      case 'flv': return ['flv', 'mpegts.js'];
      case 'ws': return ['ws', 'mpegts.js'];
      case 'hls':
        // Asked for HLS: hls.js where MSE is there (it follows LL-HLS
        // parts and keeps latency down), else the browser's own.
        if (window.MediaSource || window.ManagedMediaSource) return ['hls', 'hls.js'];
        return ['hls', 'native'];
    }
    if (hasMSEPlayback()) return ['flv', 'mpegts.js'];
    if (nativeHLS()) return ['hls', 'native'];
    return ['hls', 'hls.js'];
  }

  function error(msg, detail) {
    const e = { at: new Date().toISOString(), proto: st.proto, engine: st.engine, msg: String(msg) };
    st.errors.push(e);
    shownError = e.msg;
    if (st.errors.length > MAX_ERRORS) st.errors.splice(0, st.errors.length - MAX_ERRORS);
    if (detail !== undefined) console.error('rtmphub player:', e.msg, detail);
    else console.error('rtmphub player:', e.msg);
  }

  function stop() {
    clearTimeout(retryTimer);
    retryTimer = 0;
    if (player) {
      const p = player;
      player = null;
      try { p.pause(); } catch (_) { /* already gone */ }
      try { p.unload(); } catch (_) { /* already gone */ }
      try { p.detachMediaElement(); } catch (_) { /* already gone */ }
      try { p.destroy(); } catch (_) { /* already gone */ }
    }
    if (hls) {
      const h = hls;
      hls = null;
      try { h.destroy(); } catch (_) { /* already gone */ }
    }
    if (st.engine === 'native') {
      video.removeAttribute('src');
      video.load();
    }
  }

  // fail records an error and starts again after a backoff: the stream
  // may not be published yet (404), or its publisher went away.
  function fail(msg, detail, status) {
    error(msg, detail);
    stop();
    if (status === 401 || status === 403) {
      // The same URL can never succeed: a token is missing, bad or
      // expired. A new one needs a new page.
      st.state = 'failed';
      render();
      return;
    }
    const delay = BACKOFF_MS[Math.min(st.retries, BACKOFF_MS.length - 1)];
    st.retries++;
    st.state = 'retrying';
    retryAt = Date.now() + delay;
    retryTimer = setTimeout(start, delay);
    render();
  }

  function restart(why) {
    stop();
    if (why) error(why);
    start();
  }

  function play() {
    const p = video.play();
    if (p && p.catch) {
      p.catch((e) => {
        if (e && e.name === 'NotAllowedError') {
          st.state = 'waiting';
          st.needsClick = true;
          render();
        }
        // AbortError: a new load replaced this one; nothing to say.
      });
    }
  }

  function startMpegts(url) {
    const p = mpegts.createPlayer({ type: 'flv', isLive: true, url }, {
      enableWorker: false,
      enableStashBuffer: false,     // hand data to MSE as it comes
      stashInitialSize: 128 * 1024,
      lazyLoad: false,              // a live stream is never paused to load
      deferLoadAfterSourceOpen: false,
      autoCleanupSourceBuffer: true,
      autoCleanupMaxBackwardDuration: 30,
      autoCleanupMinBackwardDuration: 10,
      // Playback a little faster while behind; jump when far behind. A
      // viewer joins at the cached keyframe, up to a GOP behind: this
      // brings it to about 0.6 s within a few seconds, whatever its
      // start.
      liveSync: true,
      liveSyncMaxLatency: 0.9,
      liveSyncTargetLatency: 0.6,
      liveSyncPlaybackRate: 1.2,
      liveBufferLatencyChasing: true,
      liveBufferLatencyMaxLatency: 2.0,
      liveBufferLatencyMinRemain: 0.5,
    });
    player = p;
    p.on(mpegts.Events.ERROR, (type, detail, info) => {
      if (player !== p) return;
      let what = '';
      if (typeof info === 'string') what = ': ' + info;
      else if (info) what = (info.code ? ' ' + info.code : '') + (info.msg ? ': ' + info.msg : '');
      fail(type + ' ' + detail + what, info, info && info.code);
    });
    p.on(mpegts.Events.LOADING_COMPLETE, () => {
      if (player !== p) return;
      fail('the stream ended');
    });
    p.on(mpegts.Events.MEDIA_INFO, (mi) => {
      if (mi && mi.width) { st.width = mi.width; st.height = mi.height; }
    });
    p.attachMediaElement(video);
    p.load();
    play();
  }

  function loadHlsJs() {
    if (window.Hls) return Promise.resolve();
    if (!hlsLoading) {
      hlsLoading = new Promise((resolve, reject) => {
        const s = document.createElement('script');
        s.src = cfg.hlsjs;
        s.onload = () => resolve();
        s.onerror = () => { hlsLoading = null; reject(new Error('could not load hls.js')); };
        document.head.appendChild(s);
      });
    }
    return hlsLoading;
  }

  function startHlsJs(url) {
    const gen = st.starts;
    loadHlsJs().then(() => {
      if (gen !== st.starts) return; // restarted meanwhile
      if (!Hls.isSupported()) {
        if (nativeHLS()) { st.engine = 'native'; startNative(url); return; }
        st.state = 'failed';
        error('this browser can play neither FLV (MSE) nor HLS');
        render();
        return;
      }
      const h = new Hls({
        lowLatencyMode: true,
        backBufferLength: 30,
        maxLiveSyncPlaybackRate: 1.5,
        enableWorker: true,
      });
      hls = h;
      h.on(Hls.Events.ERROR, (_ev, data) => {
        if (hls !== h) return;
        const code = data.response && data.response.code ? ' ' + data.response.code : '';
        if (data.fatal) {
          fail('hls.js ' + data.type + ' ' + data.details + code, data.error || data, data.response && data.response.code);
        } else if (data.details !== 'bufferStalledError') {
          // hls.js recovers from these itself; keep them visible.
          console.warn('rtmphub player: hls.js', data.type, data.details + code);
        }
      });
      h.on(Hls.Events.MANIFEST_PARSED, () => play());
      h.loadSource(url);
      h.attachMedia(video);
    }, (e) => fail(e.message));
  }

  function startNative(url) {
    video.src = url;
    play();
  }

  function start() {
    clearTimeout(retryTimer);
    retryTimer = 0;
    st.starts++;
    st.needsClick = false;
    const [proto, engine] = choose();
    st.proto = proto;
    st.engine = engine;
    st.url = proto === 'ws' ? wsURL(cfg.flv) : (proto === 'flv' ? cfg.flv : cfg.hls);
    st.state = 'loading';
    lastProgress = { t: -1, at: Date.now() };
    for (const a of root.querySelectorAll('nav a')) {
      a.classList.toggle('active', a.dataset.proto === proto);
    }
    render();
    if (engine === 'mpegts.js' && !window.mpegts) {
      st.state = 'failed';
      error('mpegts.js did not load');
      render();
      return;
    }
    try {
      if (engine === 'mpegts.js') startMpegts(st.url);
      else if (engine === 'hls.js') startHlsJs(st.url);
      else startNative(st.url);
    } catch (e) {
      fail(engine + ': ' + (e && e.message ? e.message : e), e);
    }
  }

  // Errors of the media element itself (decoding, MSE) and of native HLS.
  video.addEventListener('error', () => {
    const e = video.error;
    if (!e || (!player && !hls && st.engine !== 'native')) return;
    // mpegts.js empties src when it detaches; the error that raises may
    // arrive after the next player attached.
    if (e.code === MediaError.MEDIA_ERR_SRC_NOT_SUPPORTED && st.engine === 'mpegts.js' &&
        (!e.message || /empty src/i.test(e.message))) return;
    fail('video element error ' + e.code + (e.message ? ': ' + e.message : ''));
  });
  video.addEventListener('playing', () => { st.state = 'playing'; st.needsClick = false; shownError = ''; render(); });
  video.addEventListener('waiting', () => { if (st.state === 'playing') { st.state = 'waiting'; render(); } });
  video.addEventListener('loadedmetadata', () => {
    if (video.videoWidth) { st.width = video.videoWidth; st.height = video.videoHeight; }
  });
  video.addEventListener('click', () => { if (st.needsClick) play(); });

  function latency() {
    const b = video.buffered;
    if (!b || b.length === 0) return null;
    const l = b.end(b.length - 1) - video.currentTime;
    return l >= 0 ? l : null;
  }

  function tick() {
    st.latency = latency();
    st.liveEdge = hls && typeof hls.latency === 'number' ? hls.latency : null;
    if (video.getVideoPlaybackQuality) st.frames = video.getVideoPlaybackQuality().totalVideoFrames;
    const now = Date.now();
    if (st.state === 'playing' || st.state === 'waiting' || st.state === 'loading') {
      if (video.currentTime !== lastProgress.t) {
        if (lastProgress.t >= 0 && video.currentTime > lastProgress.t && st.state === 'playing') st.retries = 0;
        lastProgress = { t: video.currentTime, at: now };
      } else if (!video.paused && now - lastProgress.at > STALL_MS) {
        fail('no progress for ' + STALL_MS / 1000 + ' s');
        return;
      }
    }
    render();
  }

  const LABELS = { flv: 'HTTP-FLV', ws: 'WS-FLV', hls: 'LL-HLS' };

  function span(cls, text) {
    const s = document.createElement('span');
    if (cls) s.className = cls;
    s.textContent = text;
    return s;
  }

  function render() {
    const parts = [span('proto', (LABELS[st.proto] || st.proto) + ' · ' + st.engine)];
    const add = (cls, text) => { parts.push(document.createTextNode(' · ')); parts.push(span(cls, text)); };
    if (st.state === 'retrying') {
      if (/\b404\b/.test(shownError)) add('', 'not live yet');
      add('', 'retry ' + st.retries + ' in ' + Math.max(0, Math.ceil((retryAt - Date.now()) / 1000)) + ' s');
    } else if (st.needsClick) {
      add('err', 'click the video to play');
    } else {
      add(st.state === 'playing' ? 'ok' : st.state === 'failed' ? 'err' : '', st.state);
    }
    if (st.latency !== null && st.state === 'playing') {
      let l = 'latency ≈ ' + st.latency.toFixed(1) + ' s';
      if (st.liveEdge > 0) l += ' (live edge ' + st.liveEdge.toFixed(1) + ' s)';
      add('', l);
    }
    if (st.width) add('', st.width + '×' + st.height);
    if (shownError) add('err', shownError);
    statusEl.replaceChildren(...parts);
    statusEl.title = st.url;
  }

  document.addEventListener('visibilitychange', () => {
    // Back from a hidden tab the buffer is stale: jump to the live edge.
    if (!document.hidden && st.state === 'playing' && st.latency !== null && st.latency > 3) {
      const b = video.buffered;
      if (b.length) video.currentTime = Math.max(0, b.end(b.length - 1) - 0.5);
    }
  });

  if (window.mpegts) {
    mpegts.LoggingControl.applyConfig({ enableVerbose: false, enableDebug: false, enableInfo: false });
  }
  start();
  setInterval(tick, 500);
})();

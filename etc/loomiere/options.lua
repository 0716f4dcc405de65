-- Loomiere options (Lua 5.1). Every line is optional: what you leave out
-- keeps the built-in default shown here. Check a change with `loomiere -t`,
-- apply it with `sv hup loomiere` (SIGHUP): a broken file is refused and
-- the running configuration stays. Stop with `sv -w 35 stop loomiere`: sv
-- waits 7 s by default, less than the drain below.

-- Listen address for clients: '*' = every IPv4 and IPv6 address, or an IP.
options.bind = '*'
-- Client port for plain HTTP; false serves HTTPS only.
options.port = 8080
-- HTTPS, beside the plain port. The master reads the certificate chain and
-- key (PEM; RSA, ECDSA or Ed25519) as root at start and on each reload; keep
-- them in /etc/loomiere/tls/ (root only) or point at certbot's live folder.
-- kernel = 'auto' hands each connection to kernel TLS after its handshake
-- where the kernel has the tls module (modprobe tls), so bodies stay
-- sendfile'd; elsewhere, or with 'off', rustls encrypts in user space.
-- `loomiere -t` checks the files.
-- session_timeout: seconds a client may resume its session (on any worker,
-- across reloads); the ticket key is replaced this often.
-- options.tls = { port = 443, bind = '*',
--   cert = '/etc/letsencrypt/live/example.com/fullchain.pem',
--   key = '/etc/letsencrypt/live/example.com/privkey.pem', kernel = 'auto',
--   session_timeout = 21600 }
-- Admin port serving /monitor (false disables it) and its address.
options.root = 8081
options.root_bind = '127.0.0.1'
-- When set (16+ printable characters), every admin request (/monitor,
-- /metrics, /space, the dashboard at /) needs 'Authorization: Bearer <token>'.
options.root_token = ''

-- Worker processes; options.cpus is the number of CPUs of this machine.
options.workers = options.cpus
-- Most concurrent client connections over all workers; past it a new
-- connection gets 503 with Retry-After.
options.clients = 10000
-- Bandwidth conservation. A player gets its media at full speed until it
-- holds `throttle` seconds of playback, then only as fast as it plays,
-- measured on the file's own timestamps (variable bitrate is respected).
-- Seek URLs (?start=), plain FLV and fast-start MP4 files, and Range requests
-- into them are throttled; an MP4 with its moov at the end is sent whole to a
-- plain GET (a player needs all of it first), and ?start=0 gives any MP4 the
-- fast-start rewrite. 0 turns the throttle off.
options.throttle = 20
-- Seconds between slices of a throttled stream (0.05 to 60).
options.period = 1
-- Bodies shorter than this are sent at full speed. Sizes are bytes or
-- strings with k, m or g (1024-based): 1048576 = '1m'.
options.throttle_from = '1m'
-- A constant rate, in bytes per second, for bodies the timeline does not
-- pace (other files, short or damaged media), after their first
-- `rate_after` bytes, like nginx's limit_rate / limit_rate_after. 0 = none.
options.rate = 0
options.rate_after = 0
-- The smallest throttled slice worth a wake-up: a stream whose period
-- releases less (a low-bitrate film) waits more periods, at most a quarter
-- of the throttle or 5 s. 0 sends a slice every period.
options.min_slice = '32k'
-- Index cache size per worker, in MB. A larger index is built for each
-- request and dropped; MP4 files with a moov over 256 MB or over 20 million
-- samples a track are indexed when the cache could hold them.
options.cache = 64

-- Account the workers switch to after binding, when started as root.
-- When 'loomiere' does not exist and this line is left out, 'nobody' is used.
-- options.user = 'loomiere'

-- Time-outs, in seconds.
options.header_timeout = 10     -- a request head must arrive within this (else 408)
options.keepalive_timeout = 15  -- an idle keep-alive connection is closed after this
options.send_timeout = 60       -- a response whose socket accepts nothing for this long is
                                -- dropped (a throttled stream asleep between slices is not stalled)
options.drain_timeout = 30      -- on SIGTERM, in-flight responses get this long, then are cut
                                -- (a reload never cuts them: old workers stream to the end);
                                -- `sv -w N stop loomiere` with N above it waits for the drain
options.stall_timeout = 10      -- a worker (or the monitor) whose event loop has not turned for
                                -- this long (2 to 3600) is killed with SIGKILL and replaced, and
                                -- the log says what it was doing; an idle loop turns every second

-- Limits of one route function call: Lua instructions (pattern matching in
-- string.find/match/gmatch/gsub counts too), and the memory of the workers'
-- Lua state; a call also stops at half of stall_timeout. A runaway function
-- answers 500; the worker goes on. Route functions and this file have no
-- io, os.execute, require, load*, dofile, debug or coroutine.
options.lua_instructions = 1000000
options.lua_memory = '16m'

-- One Combined Log Format line per response on stderr.
options.access_log = true

-- MP4 seeks (?start=): 'keyframe' starts at the keyframe at or before start
-- (the duration grows by the distance back to it); 'exact' decodes from the
-- keyframe but hides the frames before start with an edit list.
options.seek = 'keyframe'

-- HLS and DASH: every MP4 file is also /film.mp4/master.m3u8 and
-- /film.mp4/manifest.mpd, packaged on the fly. Each segment starts at the
-- first keyframe at or after its turn of this many seconds (0.5 to 60).
options.segment_seconds = 6

-- Virtual hosts, tried in the order written; the first whose pattern (PCRE2,
-- case-insensitive, unanchored) matches the Host header serves the request.
-- The empty pattern matches every host, so put it last. A host may set its
-- own throttle, period, throttle_from, rate, rate_after, min_slice, send_timeout and
-- segment_seconds,
-- subtitle_default (the language tag of the sidecar subtitles shown unasked,
-- e.g. 'en'; by default none is) and subtitle_names (names over the built-in
-- table: { ['pt-BR'] = 'Português (Brasil)' }),
-- and list several folders, tried in order for each file (the first that
-- has it serves it): folders = { '/srv/new', '/srv/archive' }.
-- options.hosts['^video\\.example\\.com$'] = { folder = '/srv/video' }
-- options.hosts['^radio\\.'] = { folder = '/srv/radio', throttle = 60 }
--
-- For HTTPS (with options.tls set) a host may have its own certificate,
-- chosen when the client's SNI name selects the host; send plain HTTP to
-- HTTPS with a 308 (ACME challenges under /.well-known/acme-challenge/ stay
-- on plain HTTP for certbot --webroot); and add Strict-Transport-Security:
-- options.hosts['^films\\.example\\.org$'] = { folder = '/srv/films',
--   cert = '/etc/letsencrypt/live/films.example.org/fullchain.pem',
--   key = '/etc/letsencrypt/live/films.example.org/privkey.pem',
--   https = 'redirect', hsts = 31536000 }
--
-- A host may have routes: PCRE2 patterns searched in the request target
-- (path and query), tried in order; the first that matches decides.
--   rewrite  = '/new/$1?x=$2'  the matched part becomes the template ($0-$9,
--                              ${name}); served by the same host, not routed again
--   redirect = 'https://cdn.example/$1', status = 301|302|303|307|308 (302)
--   error    = 403, message = 'shown on the page'   (any 4xx or 5xx)
-- The original's names still work: alter = '/%1' (every match replaced),
-- route = '/new' (302), moved = '/new' (301).
--   call = function(url, headers, ip, port) ... end   a Lua function decides:
--     return 200, '/new' (rewrite) | 200 or nothing (as is) | 302, 'https://...'
--     | 403 (error). It may use string, table, math, os.time/date/clock and
--     loomiere.log(level, msg), .hmac_sha256(key, data), .md5(data),
--     .escape(s), .unescape(s), .time(); no io, os.execute, require, load*.
--   { match = '^/members/', call = function(url, headers)
--       if (headers['cookie'] or ''):find('member=1') then return 200 end
--       return 403
--     end },
-- options.hosts['^video\\.example\\.com$'] = { folder = '/srv/video', routes = {
--   { match = '^/watch/(\\d+)/(?<file>[^/]+)$', rewrite = '/${file}?start=$1' },
--   { match = '^/old/(.*)$', redirect = '/$1', status = 301 },
--   { match = '^/private/', error = 403, message = 'Not for you.' },
-- } }
--
-- Access control, per host, checked in this order before the routes (each
-- refusal's page says why without naming lists or keys; `man loomiere`,
-- ACCESS CONTROL, has the details):
--   deny = { '192.0.2.0/24' }, allow = { '10.0.0.0/8', '2001:db8::/32' }
--       addresses and CIDR blocks, IPv4 and IPv6; deny first, then a
--       non-empty allow refuses all it does not list (403)
--   countries = { allow = { 'RO', 'DE' } } or { deny = { 'XX' }, unknown = false }
--       needs options.geoip below; unknown countries pass unless unknown = false
--   referers = { '(^|\\.)example\\.com$' }, referers_empty = true
--       PCRE2 searched in the Referer's host (403 when none matches);
--       referers_empty decides for requests without a Referer
--   secret = 'at least 16 characters'   (or secrets = { 'new', 'old' } to rotate)
--   token_ip = false
--       only signed links are served: ?expires=<unix time>&token=<hex of
--       HMAC-SHA256(secret, path .. expires [.. client ip with token_ip])>;
--       wrong or missing 403, expired 410. `loomiere --sign /film.mp4
--       --expires 3600 [--ip ADDR] [--host NAME]` prints one.
-- and headers:
--   cors = '*'   or { 'https://www.example.com' }
--       Access-Control-Allow-Origin (+ Expose-Headers for Content-Range),
--       and OPTIONS preflights allowing GET, HEAD and the Range header
--   expires = { ['video/*'] = 3600, ['image/*'] = 86400, ['*'] = 0 }
--       Cache-Control: public, max-age=N and Expires, by mime type
--       (private for signed links); without it nothing is cacheable
-- Player hints: hints = true lets players report where they are, and the
-- throttle follows them (nothing is sent while a player is paused). A page
-- adds <script src="/.hint.js"></script> and marks its players
-- <video data-loomiere src="/film.mp4">; see PLAYER HINTS in man loomiere.
--   hints = false
-- options.hosts['^embed\\.example\\.com$'] = { folder = '/srv/video',
--   referers = { '(^|\\.)example\\.com$' }, secret = 'change-me-to-a-long-random-key',
--   cors = { 'https://www.example.com' }, expires = { ['video/*'] = 3600 }, hints = true }
options.hosts[''] = { folder = '/var/www' }

-- A MaxMind DB of countries (GeoLite2-Country, DB-IP lite), for hosts'
-- countries and route functions' loomiere.country(ip); re-opened on reload.
-- options.geoip = '/var/lib/GeoIP/GeoLite2-Country.mmdb'

-- Per client address, over all workers: at most per_ip concurrent
-- connections and rate new ones per second after a burst (429 with
-- Retry-After past them; closed without an answer past 10x the rate).
-- IPv6 clients count by /64; exempt addresses are not counted; 0 = off.
-- options.limits = { per_ip = 20, rate = 10, burst = 20, exempt = { '127.0.0.0/8' } }

-- Extra types: options.mimes['mime/type'] = 'ext,ext'. The built-in table
-- already covers flv, mp4, m4v, m4a, mov, 3gp, f4v, mp3, aac, ogg, webm,
-- mkv, m3u8, ts, vtt, images, json, txt, html, css, js and svg.
-- options.mimes['video/x-ms-wmv'] = 'wmv'

-- Loomiere options (Lua 5.1). Every line is optional: what you leave out
-- keeps the built-in default shown here. Check a change with `loomiere -t`,
-- apply it with `sv hup loomiere` (SIGHUP): a broken file is refused and
-- the running configuration stays.

-- Listen address for clients: '*' = every IPv4 and IPv6 address, or an IP.
options.bind = '*'
-- Client port.
options.port = 8080
-- Admin port serving /monitor (false disables it) and its address.
options.root = 8081
options.root_bind = '127.0.0.1'

-- Worker processes; options.cpus is the number of CPUs of this machine.
options.workers = options.cpus
-- Most concurrent client connections over all workers; past it a new
-- connection gets 503 with Retry-After.
options.clients = 10000
-- Seconds of play time sent ahead of the player.
options.throttle = 20
-- Index cache size per worker, in MB.
options.cache = 64

-- Account the workers switch to after binding, when started as root.
-- When 'loomiere' does not exist and this line is left out, 'nobody' is used.
-- options.user = 'loomiere'

-- Time-outs, in seconds.
options.header_timeout = 10     -- a request head must arrive within this (else 408)
options.keepalive_timeout = 15  -- an idle keep-alive connection is closed after this
options.send_timeout = 60       -- a response that makes no progress for this long is dropped
options.drain_timeout = 30      -- on SIGTERM or reload, in-flight responses get this long

-- One Combined Log Format line per response on stderr.
options.access_log = true

-- MP4 seeks (?start=): 'keyframe' starts at the keyframe at or before start
-- (the duration grows by the distance back to it); 'exact' decodes from the
-- keyframe but hides the frames before start with an edit list.
options.seek = 'keyframe'

-- Virtual hosts, tried in the order written; the first whose pattern (PCRE2,
-- case-insensitive, unanchored) matches the Host header serves the request.
-- The empty pattern matches every host, so put it last.
-- options.hosts['^video\\.example\\.com$'] = { folder = '/srv/video' }
options.hosts[''] = { folder = '/var/www' }

-- Extra types: options.mimes['mime/type'] = 'ext,ext'. The built-in table
-- already covers flv, mp4, m4v, m4a, mov, 3gp, f4v, mp3, aac, ogg, webm,
-- mkv, m3u8, ts, vtt, images, json, txt, html, css, js and svg.
-- options.mimes['video/x-ms-wmv'] = 'wmv'

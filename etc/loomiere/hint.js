/* Loomiere player hints: tells the server where each player is, so that it
 * streams a few seconds ahead of the real play head and nothing while the
 * player is paused. Mark the players and include this script:
 *
 *   <video data-loomiere src="/film.mp4" controls></video>
 *   <script src="/.hint.js"></script>
 *
 * Served at /.hint.js by hosts with `hints = true`; installed as
 * /usr/share/loomiere/hint.js. No dependencies.
 */
(function () {
  'use strict';
  var LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  var PLAYING_EVERY_MS = 1000; // at most one report a second while playing
  var PAUSED_EVERY_MS = 5000;  // reports stay fresh (10 s) through a pause

  function newKey() {
    var bytes = new Uint8Array(24);
    crypto.getRandomValues(bytes);
    var key = '';
    for (var i = 0; i < bytes.length; i++) key += LETTERS[bytes[i] & 63];
    return key;
  }

  function attach(media) {
    if (media.loomiereKey) return;
    var source = media.getAttribute('src') ||
      (media.querySelector('source[src]') || { getAttribute: function () { return null; } }).getAttribute('src');
    if (!source) return;
    var key = media.loomiereKey = newKey();
    var url = new URL(source, document.baseURI);
    url.searchParams.set('hint', key);
    var report = new URL('/.hint', url);
    var last = 0;

    // Once the rest of the film is buffered its download is over and the
    // server follows no stream with this key (a report would get 404); a
    // seek outside the buffer starts a new download and the reports again.
    function downloaded() {
      var ranges = media.buffered, end = media.duration;
      if (!isFinite(end)) return false;
      for (var i = 0; i < ranges.length; i++) {
        if (ranges.start(i) <= media.currentTime + 0.5 && ranges.end(i) >= end - 0.5) return true;
      }
      return false;
    }

    function send(always) {
      var now = Date.now();
      if (!always && now - last < PLAYING_EVERY_MS) return;
      if (downloaded()) return;
      last = now;
      report.search = '?key=' + key + '&t=' + media.currentTime.toFixed(3) +
        '&paused=' + (media.paused ? 1 : 0);
      if (navigator.sendBeacon && navigator.sendBeacon(report.href)) return;
      fetch(report.href, { method: 'POST', keepalive: true, mode: 'no-cors' }).catch(function () {});
    }

    media.addEventListener('timeupdate', function () { send(false); });
    ['play', 'playing', 'pause', 'seeking', 'seeked', 'waiting'].forEach(function (name) {
      media.addEventListener(name, function () { send(true); });
    });
    setInterval(function () { if (media.paused && !media.ended) send(true); }, PAUSED_EVERY_MS);
    media.src = url.href;
  }

  function scan() {
    var players = document.querySelectorAll('video[data-loomiere], audio[data-loomiere]');
    for (var i = 0; i < players.length; i++) attach(players[i]);
  }
  // The players already parsed at once (a page script may play them next),
  // and those after this script once the document is complete.
  scan();
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', scan);
})();

/* The portal's one client of REST API v1, used by every page. No build step.
   - config: the server's status labels, image kinds and URLs, read from the page
     (#portal-config, rendered from web/portal/present.py's page_config): no script keeps its
     own copy, none hard-codes /api/v1.
   - request(): JSON or FormData with the session's CSRF header; a refusal is an ApiError with
     the API's status, code, field and message.
   - follow(): one loop for every page that watches a batch, an item or a strip: load the JSON,
     load it again when the batch's event stream (server-sent events) says something happened
     (and when it reconnects), and poll only while the stream is down (fast while busy, slowly
     otherwise, never while the tab is hidden).
   portal.js adds what the pages share besides (formatting, slider read-outs, costs). */
"use strict";

window.Portal = (function () {
  const configNode = document.getElementById("portal-config");
  const config = configNode ? JSON.parse(configNode.textContent) : { status_labels: {}, image_kinds: [], urls: {} };

  /* A URL the page was given: url("batch", id) fills in "{id}". */
  function url(name, id) {
    const template = config.urls[name];
    if (!template) throw new Error("the page has no URL for " + name);
    return id === undefined ? template : template.replace("{id}", encodeURIComponent(id));
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  /* The API's refusal: {"error": {"code", "message", "field", ...}} and the HTTP status. */
  class ApiError extends Error {
    constructor(status, error) {
      super((error && error.message) || ("HTTP " + status));
      this.status = status;
      this.code = error ? error.code : null;
      this.field = error ? error.field : null;
      this.details = error || {};
    }
  }

  async function request(method, target, body) {
    const init = {
      method: method,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrfToken() },
    };
    if (body instanceof FormData) {
      init.body = body;  // the browser writes the multipart boundary
    } else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(target, init);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) throw new ApiError(response.status, data && data.error ? data.error : { message: response.statusText });
    return data;
  }

  const EVENT_KINDS = ["snapshot", "item.preview_ready", "item.done", "item.failed", "batch.completed"];

  /* Follow a resource. options:
       json      the URL of its JSON (GET)
       events    the batch's event stream URL, or null (then polling only)
       onData    called with each fresh JSON
       busy      (data) -> whether something is still changing (polls fast without a stream)
       onEvent   (kind, payload) -> false to skip the reload this event would cause
       initial   the JSON the page was rendered with (no first request)
       fastMs, slowMs   polling without a stream, busy and idle (slowMs null: stop when idle)
       safetyMs  with a stream, a slow poll while busy (default none: a stream that drops
                 or ends, at the latest after ANYCOST_SSE_MAX_SECONDS, reconnects and the
                 page loads once then, so a missed event is caught up with)
       onStream  (up) -> called when the event stream opens or drops
     Returns {refresh(ms), stop(), streaming()}. */
  function follow(options) {
    const fastMs = options.fastMs || 700;
    const slowMs = options.slowMs === undefined ? 10000 : options.slowMs;
    const safetyMs = options.safetyMs || null;
    let timer = null, due = Infinity, inFlight = false, again = false, stopped = false;
    let streaming = false, source = null, last = options.initial || null;

    function schedule(ms) {
      if (stopped) return;
      const at = performance.now() + ms;
      if (timer !== null && due <= at) return;  // an earlier load is already due
      clearTimeout(timer);
      due = at;
      timer = setTimeout(load, ms);
    }

    function next(failed) {
      if (failed) { schedule(5000); return; }
      const busy = last ? options.busy(last) : true;
      if (streaming) { if (busy && safetyMs !== null) schedule(safetyMs); return; }
      if (document.hidden) return;  // visibilitychange loads again
      if (busy) schedule(fastMs); else if (slowMs !== null) schedule(slowMs);
    }

    async function load() {
      timer = null;
      due = Infinity;
      if (inFlight) { again = true; return; }
      inFlight = true;
      let failed = false;
      try {
        const data = await request("GET", options.json);
        if (stopped) return;
        last = data;
        options.onData(data);
      } catch (e) {
        failed = true;
        if (options.onError) options.onError(e);
      } finally {
        inFlight = false;
      }
      if (again) { again = false; schedule(0); return; }
      next(failed);
    }

    function listen() {
      if (!options.events || !window.EventSource) return;
      source = new EventSource(options.events);
      let opened = false;
      source.onopen = function () {
        streaming = true;
        if (options.onStream) options.onStream(true);
        if (opened) schedule(0);  // back after a drop: catch up on what was missed
        opened = true;
      };
      source.onerror = function () {
        // EventSource reconnects by itself (the server ends streams after a while); until
        // then, and for good once it gives up (CLOSED), the poll keeps the page current.
        streaming = false;
        if (options.onStream) options.onStream(false);
        if (timer === null && !inFlight) next(false);
        if (source.readyState === EventSource.CLOSED) setTimeout(function () { if (!stopped) listen(); }, 10000);
      };
      EVENT_KINDS.forEach(function (kind) {
        source.addEventListener(kind, function (e) {
          let payload = null;
          try { payload = JSON.parse(e.data); } catch (err) { return; }
          if (options.onEvent && options.onEvent(kind, payload) === false) return;
          schedule(50);  // a burst of events is one load
        });
      });
    }

    function onVisible() { if (!document.hidden && !streaming && timer === null && !inFlight) schedule(0); }
    document.addEventListener("visibilitychange", onVisible);
    listen();
    if (last) next(false); else schedule(0);
    return {
      refresh: function (ms) { schedule(ms || 0); },
      streaming: function () { return streaming; },
      stop: function () {
        stopped = true;
        clearTimeout(timer);
        if (source) source.close();
        document.removeEventListener("visibilitychange", onVisible);
      },
    };
  }

  return { config, url, csrfToken, request, ApiError, follow };
})();

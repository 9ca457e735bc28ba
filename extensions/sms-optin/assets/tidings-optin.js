/* Tidings SMS opt-in. Vanilla JS, loaded with defer; no dependencies. */
(function () {
  'use strict';
  var root = document.querySelector('[data-tidings-optin]');
  if (!root || root.getAttribute('data-ready')) return;
  root.setAttribute('data-ready', '1');

  var d = root.dataset;
  var KEY = 'tidings-optin';
  var preview = d.preview === '1';
  var proxy = d.proxy || '/apps/sms';
  var popup = d.mode !== 'bar';

  function remember(value) {
    try { localStorage.setItem(KEY, value); } catch (e) { /* storage blocked */ }
  }
  function remembered() {
    try { return localStorage.getItem(KEY); } catch (e) { return null; }
  }

  if (!preview && remembered()) return;
  if (d.mobile === '0' && window.matchMedia && matchMedia('(max-width: 749px)').matches) return;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var name in attrs) node.setAttribute(name, attrs[name]);
    if (text) node.textContent = text;
    return node;
  }

  /* Text colour on the accent: black or white, whichever contrasts more. */
  function onAccent() {
    var m = /^#?([0-9a-f]{6})$/i.exec((getComputedStyle(root).getPropertyValue('--tidings-accent') || '').trim());
    if (!m) return '#fff';
    var n = parseInt(m[1], 16);
    var lum = [n >> 16, (n >> 8) & 255, n & 255].map(function (c) {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var l = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
    return (l + 0.05) / 0.05 > 1.05 / (l + 0.05) ? '#000' : '#fff';
  }

  function load() {
    fetch(proxy + '/widget', { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (cfg) { if (cfg && cfg.enabled) show(cfg); })
      .catch(function () { /* no widget when the app cannot be reached */ });
  }

  function show(cfg) {
    var consentText = String(cfg.consent_text || '');
    if (!consentText) return; /* never collect a number without the disclosure */
    var opener = document.activeElement;
    var busy = false;

    var panel = el('div', {
      class: 'tidings-optin__panel',
      role: popup ? 'dialog' : 'region',
      'aria-labelledby': 'tidings-optin-title'
    });
    if (popup) panel.setAttribute('aria-modal', 'true');

    var close = el('button', { type: 'button', class: 'tidings-optin__close', 'aria-label': d.tClose || 'Close' }, '\u00d7');
    var title = el('h2', { id: 'tidings-optin-title', class: 'tidings-optin__title' },
      d.headline || cfg.headline || d.tHeadline);
    panel.appendChild(close);
    panel.appendChild(title);
    if (cfg.body) panel.appendChild(el('p', { class: 'tidings-optin__body' }, cfg.body));
    var offer = d.offer || cfg.offer_text;
    if (offer) panel.appendChild(el('p', { class: 'tidings-optin__offer' }, offer));

    var form = el('form', { class: 'tidings-optin__form', novalidate: '' });
    form.appendChild(el('label', { for: 'tidings-optin-phone', class: 'tidings-optin__label' }, d.tPhone || 'Phone'));
    var input = el('input', {
      id: 'tidings-optin-phone', class: 'tidings-optin__input', name: 'phone', type: 'tel',
      autocomplete: 'tel', inputmode: 'tel', required: '', 'aria-describedby': 'tidings-optin-error'
    });
    form.appendChild(input);
    var error = el('p', { id: 'tidings-optin-error', class: 'tidings-optin__error', 'aria-live': 'assertive' });
    form.appendChild(error);

    /* Honeypot: people never see or reach it; bots fill it. */
    var trap = el('div', { class: 'tidings-optin__hp', 'aria-hidden': 'true' });
    var hp = el('input', { type: 'text', name: 'company', tabindex: '-1', autocomplete: 'off' });
    trap.appendChild(hp);
    form.appendChild(trap);

    var consent = el('p', { id: 'tidings-optin-consent', class: 'tidings-optin__consent' }, consentText);
    form.appendChild(consent);
    var submit = el('button', {
      type: 'submit', class: 'tidings-optin__submit', 'aria-describedby': 'tidings-optin-consent'
    }, d.button || cfg.button_label || d.tButton);
    submit.style.color = onAccent();
    form.appendChild(submit);
    panel.appendChild(form);

    var status = el('p', { class: 'tidings-optin__status', role: 'status', 'aria-live': 'polite' });
    panel.appendChild(status);

    var wrap = el('div', { class: popup ? 'tidings-optin__overlay' : 'tidings-optin__bar' });
    wrap.appendChild(panel);
    root.appendChild(wrap);
    root.hidden = false;

    function focusables() {
      return [].filter.call(
        panel.querySelectorAll('button, input, a[href], [tabindex]'),
        function (n) { return !n.disabled && n.tabIndex >= 0 && n.offsetParent !== null; }
      );
    }

    function dismiss() {
      if (!preview && !remembered()) remember('dismissed');
      document.removeEventListener('keydown', onKey, true);
      document.removeEventListener('focusin', onFocusIn, true);
      root.hidden = true;
      root.removeChild(wrap);
      if (opener && opener.focus && document.contains(opener)) opener.focus();
    }

    function onKey(e) {
      if (e.key === 'Escape' && (popup || panel.contains(document.activeElement))) {
        e.preventDefault();
        dismiss();
      } else if (e.key === 'Tab' && popup) {
        var list = focusables();
        var first = list[0];
        var last = list[list.length - 1];
        if (!first) return;
        if (e.shiftKey && (document.activeElement === first || !panel.contains(document.activeElement))) {
          e.preventDefault();
          last.focus();
        } else if (!e.shiftKey && (document.activeElement === last || !panel.contains(document.activeElement))) {
          e.preventDefault();
          first.focus();
        }
      }
    }

    function onFocusIn(e) {
      if (popup && !panel.contains(e.target)) (focusables()[0] || panel).focus();
    }

    function fail(message) {
      error.textContent = message;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }

    function done(message) {
      if (!preview) remember('subscribed');
      form.hidden = true;
      status.textContent = message;
      close.focus();
    }

    close.addEventListener('click', dismiss);
    if (popup) {
      wrap.addEventListener('click', function (e) { if (e.target === wrap) dismiss(); });
    }
    document.addEventListener('keydown', onKey, true);
    document.addEventListener('focusin', onFocusIn, true);
    input.addEventListener('input', function () {
      if (error.textContent) {
        error.textContent = '';
        input.removeAttribute('aria-invalid');
      }
    });

    form.addEventListener('submit', function (e) {
      e.preventDefault();
      if (busy) return;
      var phone = input.value.trim();
      if (!phone) return fail(d.tRequired || 'Enter your phone number.');
      busy = true;
      submit.disabled = true;
      submit.setAttribute('aria-busy', 'true');
      error.textContent = '';
      var body = new URLSearchParams();
      body.append('phone', phone);
      body.append('consent_text', consentText);
      body.append('page_url', location.href);
      body.append('company', hp.value);
      fetch(proxy + '/subscribe', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: body.toString()
      })
        .then(function (r) {
          return r.json().catch(function () { return {}; }).then(function (j) { return { ok: r.ok, j: j || {} }; });
        })
        .then(function (res) {
          var j = res.j;
          if (res.ok && j.ok) done(j.message || '');
          else fail((j.error && j.error.message) || d.tError);
        }, function () { fail(d.tError || 'Something went wrong, please try again.'); })
        .then(function () {
          busy = false;
          submit.disabled = false;
          submit.removeAttribute('aria-busy');
        });
    });

    if (popup) input.focus();
  }

  setTimeout(load, preview ? 0 : Math.max(0, parseFloat(d.delay) || 0) * 1000);
})();

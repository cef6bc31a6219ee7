/* trustflow console: the page's script. It talks only to the console that
 * served it (/api/..., same origin), keeps the session's CSRF token in
 * memory and sends it with every action, and builds everything it shows
 * with createElement and textContent: client ids, topics and alert details
 * come from the broker, chosen by whoever published, and never become
 * markup. */
(function () {
  'use strict';

  var STATE_EVERY_MS = 1500, QUARANTINE_EVERY_MS = 5000, ALERTS_SHOWN = 200;
  var csrf = null, alertsNext = 0, timers = [], busy = false;

  function $(id) { return document.getElementById(id); }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function time(ms) {
    if (typeof ms !== 'number') return '';
    return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }

  function num(v) { return typeof v === 'number' ? v : 0; }

  /* Two significant digits below 0.1: 13 messages an hour is 0.0036/s,
   * not 0.00. */
  function perSecond(n, seconds) {
    var r = num(n) / seconds;
    if (r === 0) return '0';
    return r >= 10 ? r.toFixed(0) : r >= 0.1 ? r.toFixed(2) : r.toPrecision(2);
  }

  /* --- Talking to the console. ------------------------------------------ */

  function api(method, path, body) {
    var opts = { method: method, credentials: 'same-origin', headers: {} };
    if (method === 'POST') {
      opts.headers['Content-Type'] = 'application/json';
      if (csrf) opts.headers['X-CSRF-Token'] = csrf;
      opts.body = JSON.stringify(body || {});
    }
    return fetch(path, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (r.status === 401 && path !== '/api/login') signedOut('Your session ended: sign in again.');
        if (!r.ok) {
          var err = new Error(data.error || ('HTTP ' + r.status));
          err.status = r.status;
          throw err;
        }
        return data;
      });
    });
  }

  /* --- Signing in and out. ---------------------------------------------- */

  function signedIn(user, token) {
    csrf = token;
    alertsNext = 0;
    clear($('alerts'));
    $('who').textContent = 'Signed in as ' + user;
    $('signout').hidden = false;
    $('signin').hidden = true;
    $('console').hidden = false;
    $('password').value = '';
    refreshState();
    refreshQuarantine();
    timers.push(setInterval(refreshState, STATE_EVERY_MS));
    timers.push(setInterval(refreshQuarantine, QUARANTINE_EVERY_MS));
  }

  function signedOut(message) {
    csrf = null;
    timers.forEach(clearInterval);
    timers = [];
    $('who').textContent = '';
    $('signout').hidden = true;
    $('console').hidden = true;
    $('signin').hidden = false;
    $('signin-error').textContent = message || '';
  }

  $('signin-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    $('signin-error').textContent = '';
    $('signin-button').disabled = true;
    api('POST', '/api/login', { username: $('username').value, password: $('password').value })
      .then(function (d) { signedIn(d.user, d.csrf); })
      .catch(function (e) { $('signin-error').textContent = e.message; })
      .then(function () { $('password').value = ''; $('signin-button').disabled = false; });
  });

  $('signout').addEventListener('click', function () {
    api('POST', '/api/logout').catch(function () {}).then(function () { signedOut(''); });
  });

  /* --- Metrics and alerts, live. ---------------------------------------- */

  function refreshState() {
    if (busy) return;
    busy = true;
    api('GET', '/api/state?since=' + alertsNext).then(function (s) {
      showPolicies(s.policies || []);
      showBroker(s.broker);
      showAlerts(s.alerts || []);
      alertsNext = s.alerts_next || alertsNext;
      var latest = (s.policies || []).concat(s.broker ? [s.broker] : [])
        .reduce(function (t, m) { return Math.max(t, num(m.ts)); }, 0);
      $('status').className = 'status';
      $('status').textContent = latest ? 'Metrics of ' + time(latest) + '.' : 'Waiting for metrics.';
    }).catch(function (e) {
      if (e.status !== 401) {
        $('status').className = 'status lost';
        $('status').textContent = 'The console does not answer: ' + e.message;
      }
    }).then(function () { busy = false; });
  }

  function rate(value, label, field) {
    var d = el('div', null, 'rate');
    var v = el('div', value, 'value');
    v.setAttribute('data-field', field);
    d.appendChild(v);
    d.appendChild(el('div', label, 'label'));
    return d;
  }

  function recipientsTable(title, rows, columns, kind) {
    var box = el('div');
    box.appendChild(el('h4', title));
    if (!rows || rows.length === 0) {
      box.appendChild(el('p', 'none', 'empty'));
      return box;
    }
    var t = el('table'), head = el('tr');
    t.setAttribute('data-recipients', kind);
    columns.forEach(function (c) { head.appendChild(el('th', c)); });
    t.appendChild(head);
    rows.forEach(function (r) {
      var tr = el('tr');
      if (kind.indexOf('clients') >= 0) {
        tr.setAttribute('data-client', r.client);
        tr.appendChild(el('td', r.client === '' ? '(others)' : r.client));
      }
      tr.setAttribute('data-org', r.org);
      tr.appendChild(el('td', r.org));
      tr.appendChild(el('td', num(r.deliveries), 'num'));
      t.appendChild(tr);
    });
    box.appendChild(t);
    return box;
  }

  function showPolicies(list) {
    var holder = $('policies');
    clear(holder);
    if (list.length === 0) {
      holder.appendChild(el('p', 'No policies to show yet: a policy shows here from its ' +
        'first message on.', 'empty'));
      return;
    }
    list.forEach(function (m) {
      var card = el('div', null, 'policy'), msgs = m.messages || {};
      var minute = m.last_minute || {}, hour = m.last_hour || {};
      card.setAttribute('data-policy', m.policy);
      var h = el('h3', m.policy + ' v' + m.version + ' ');
      h.appendChild(el('span', 'owned by ' + m.owner, 'owner'));
      card.appendChild(h);
      var rates = el('div', null, 'rates');
      rates.appendChild(rate(perSecond(minute.messages, 60), 'messages/s, last minute', 'rate-minute'));
      rates.appendChild(rate(perSecond(hour.messages, 3600), 'messages/s, last hour', 'rate-hour'));
      rates.appendChild(rate(num(minute.messages), 'messages, last minute', 'minute'));
      rates.appendChild(rate(num(msgs.stamped), 'messages stamped', 'stamped'));
      rates.appendChild(rate(num(msgs.delivered), 'deliveries', 'delivered'));
      rates.appendChild(rate(num(msgs.quarantined), 'quarantined', 'quarantined'));
      card.appendChild(rates);
      var w = el('div', null, 'windows');
      w.appendChild(recipientsTable('Organizations, last minute', minute.orgs,
        ['organization', 'deliveries'], 'orgs-minute'));
      w.appendChild(recipientsTable('Clients, last minute', minute.clients,
        ['client', 'organization', 'deliveries'], 'clients-minute'));
      w.appendChild(recipientsTable('Organizations, last hour', hour.orgs,
        ['organization', 'deliveries'], 'orgs-hour'));
      w.appendChild(recipientsTable('Clients, last hour', hour.clients,
        ['client', 'organization', 'deliveries'], 'clients-hour'));
      card.appendChild(w);
      holder.appendChild(card);
    });
  }

  function showBroker(b) {
    $('broker-section').hidden = !b;
    if (!b) return;
    var dl = $('broker'), msgs = b.messages || {};
    clear(dl);
    function row(k, v) { dl.appendChild(el('dt', k)); dl.appendChild(el('dd', v)); }
    row('counting since', time(b.since));
    row('messages stamped', num(msgs.stamped));
    row('deliveries', num(msgs.delivered));
    row('withheld', num(msgs.withheld));
    row('quarantined', num(msgs.quarantined));
    var refused = msgs.refused || {};
    row('refused', Object.keys(refused).map(function (k) { return k + ' ' + refused[k]; }).join(', ') || '0');
    if (b.trace) row('trace queue', num(b.trace.queue) + (b.trace.failing ? ' (failing)' : ''));
    if (b.signer) row('signing pool', num(b.signer.pool_level) + ' of ' + num(b.signer.pool_size));
  }

  function showAlerts(alerts) {
    var list = $('alerts');
    Array.prototype.forEach.call(list.querySelectorAll('li.fresh'), function (li) {
      li.className = '';
    });
    alerts.forEach(function (a) {
      var li = el('li', null, 'fresh');
      li.setAttribute('data-alert', a.id);
      li.appendChild(el('span', a.kind, 'kind'));
      li.appendChild(document.createTextNode(' '));
      li.appendChild(el('span', a.detail, 'detail'));
      var meta = el('div', time(a.ts) + ' · policy ' + (a.policy || '-') + ' · ' +
        (a.org || '-') + '/' + (a.client || '-') + ' · action ' + a.action, 'meta');
      if (a.policy) {
        var b = el('button', 'Impact report');
        b.type = 'button';
        b.className = 'impact-button';
        b.addEventListener('click', function () { showImpact(a.id); });
        meta.appendChild(b);
      }
      li.appendChild(meta);
      list.insertBefore(li, list.firstChild);
    });
    while (list.children.length > ALERTS_SHOWN) list.removeChild(list.lastChild);
    $('alerts-empty').hidden = list.children.length > 0;
  }

  /* --- Quarantine. ------------------------------------------------------- */

  function refreshQuarantine() {
    return api('GET', '/api/quarantine').then(function (q) {
      var body = $('quarantine').tBodies[0];
      clear(body);
      (q.flows || []).forEach(function (f) {
        var tr = el('tr');
        tr.setAttribute('data-flow', f.flow);
        tr.appendChild(el('td', f.flow));
        tr.appendChild(el('td', f.policy));
        tr.appendChild(el('td', f.client));
        tr.appendChild(el('td', num(f.held), 'num held'));
        tr.appendChild(el('td', time(f.since)));
        var td = el('td');
        td.appendChild(flowButton('Release', 'release', f.flow, false));
        td.appendChild(flowButton('Discard', 'discard', f.flow, false));
        tr.appendChild(td);
        body.appendChild(tr);
      });
      $('quarantine-empty').hidden = body.rows.length > 0;
      $('quarantine').hidden = body.rows.length === 0;
    }).catch(function (e) {
      if (e.status !== 401) $('quarantine-result').textContent = 'Cannot list: ' + e.message;
    });
  }

  /* A button that releases or discards flow. Discarding loses data: the
   * first click asks, the second does it. */
  function flowButton(label, action, flow, override) {
    var b = el('button', label, action + '-button');
    b.type = 'button';
    b.addEventListener('click', function () {
      if (action === 'discard' && !b.getAttribute('data-armed')) {
        b.setAttribute('data-armed', '1');
        b.textContent = 'Discard: sure?';
        return;
      }
      b.disabled = true;
      var req = { flow: flow };
      if (override) req.override = true;
      api('POST', '/api/' + action, req).then(function (r) {
        var out = $('quarantine-result');
        clear(out);
        if (action === 'discard') {
          out.textContent = flow + ': ' + r.discarded + ' discarded.';
        } else {
          out.textContent = flow + ': ' + r.released + ' released, ' + r.expired +
            ' expired, ' + r.kept + ' kept held' + (r.overridden ? ', ' + r.overridden +
            ' by override' : '') + '.';
          if (r.kept > 0) {
            out.appendChild(document.createTextNode(' Those kept break the policy\'s rules: '));
            out.appendChild(flowButton('Release them anyway (override)', 'release', flow, true));
          }
        }
        return refreshQuarantine();
      }).catch(function (e) {
        $('quarantine-result').textContent = flow + ': ' + e.message;
        b.disabled = false;
      });
    });
    return b;
  }

  /* --- A message by its tf-id. ------------------------------------------ */

  /* The way a message came: its publisher, the brokers its earlier stamps
   * name (a relayed message's hops: compact stamps, the broker third),
   * and this broker. */
  function pathOf(m) {
    var steps = [m.org + '/' + m.client];
    (m.hops || []).forEach(function (h) {
      var parts = String(h).split('|');
      if (parts.length > 2) steps.push(parts[2]);
    });
    if (m.broker) steps.push(m.broker);
    return steps.join(' \u2192 ');
  }

  $('lookup-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var id = $('lookup-id').value.trim(), out = $('message');
    clear(out);
    if (!id) return;
    api('GET', '/api/message?id=' + encodeURIComponent(id)).then(function (m) {
      var dl = el('dl');
      dl.setAttribute('data-message', m.id);
      function row(k, v, cls) {
        dl.appendChild(el('dt', k));
        var dd = el('dd', v, cls);
        dd.setAttribute('data-field', k);
        dl.appendChild(dd);
      }
      row('tf-id', m.id);
      row('topic', m.topic);
      row('status', m.status + (m.reason ? ' (' + m.reason + ')' : ''));
      row('received', time(m.ts));
      row('policy', m.policy === null ? 'none' : m.policy);
      row('path', pathOf(m), 'path');
      row('stamp', 'seq ' + m.seq + ', key ' + (m.kid || '-') + ', payload sha256 ' +
        m.sha256 + ' (' + m.size + ' bytes)');
      if (m.by) row('by', m.by);
      out.appendChild(dl);
      function list(title, items, reason) {
        out.appendChild(el('h4', title + ' (' + (items || []).length + ')'));
        if (!items || items.length === 0) return;
        var t = el('table'), head = el('tr');
        t.setAttribute('data-list', title);
        ['client', 'organization', 'session', 'time'].concat(reason ? ['reason'] : [])
          .forEach(function (c) { head.appendChild(el('th', c)); });
        t.appendChild(head);
        items.forEach(function (d) {
          var tr = el('tr');
          tr.setAttribute('data-client', d.client);
          tr.appendChild(el('td', d.client));
          tr.appendChild(el('td', d.org));
          tr.appendChild(el('td', d.client_id));
          tr.appendChild(el('td', time(d.ts)));
          if (reason) tr.appendChild(el('td', d.reason));
          t.appendChild(tr);
        });
        out.appendChild(t);
      }
      list('Recipients', m.deliveries, false);
      list('Withheld', m.withheld, true);
      list('Queued', m.queued, false);
      list('Dropped', m.dropped, true);
      (m.views || []).forEach(function (v) { list('Recipients of view ' + v.topic, v.deliveries, false); });
    }).catch(function (e) {
      out.appendChild(el('p', e.message, 'error'));
    });
  });

  /* --- An alert's impact report (drawn by impact.js, as tfctl report
   * impact --html draws it). ------------------------------------------ */

  function showImpact(alertId) {
    var out = $('impact-report');
    $('impact-section').hidden = false;
    clear(out);
    out.appendChild(el('p', 'Loading…', 'empty'));
    api('GET', '/api/impact?alert=' + encodeURIComponent(alertId)).then(function (d) {
      window.tfImpact.render(d, out);
      $('impact-section').scrollIntoView();
    }).catch(function (e) {
      clear(out);
      out.appendChild(el('p', e.message, 'error'));
    });
  }

  /* --- Start: a session that is still there goes on. --------------------- */

  fetch('/api/session', { credentials: 'same-origin' }).then(function (r) {
    return r.ok ? r.json() : null;
  }).then(function (s) {
    if (s && s.csrf) signedIn(s.user, s.csrf); else signedOut('');
  }).catch(function () { signedOut('The console does not answer.'); });
})();

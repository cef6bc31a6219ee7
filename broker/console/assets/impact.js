/* The diagram of an alert's impact: the publisher, the topics its flow
 * sent on, who received them, and what was held. One drawing for both
 * pages that show it: the file `tfctl report impact --html` writes (this
 * script inlined, the report's JSON in <script id="impact">) and the
 * console (this script served, the JSON from /api/impact).
 *
 * Every label comes from the broker and may hold anything a client chose
 * (client ids, topics): it goes in as textContent, never as markup. */
(function () {
  'use strict';
  var ns = 'http://www.w3.org/2000/svg';

  /* The SVG diagram of report d (the JSON of tfctl report impact). */
  function diagram(d) {
    var topics = d.topics || [], recipients = d.recipients || [], alert = d.alert || {};
    /* The held box goes below the topics: a row of its own. */
    var rows = Math.max(topics.length + (d.held > 0 ? 1 : 0), recipients.length, 1);
    var h = 60 + rows * 50, svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('width', 900);
    svg.setAttribute('height', h);
    svg.setAttribute('id', 'flow-diagram');
    function box(x, y, w, label, color, kind, name) {
      var g = document.createElementNS(ns, 'g');
      g.setAttribute('data-' + kind, name);
      var r = document.createElementNS(ns, 'rect');
      r.setAttribute('x', x); r.setAttribute('y', y);
      r.setAttribute('width', w); r.setAttribute('height', 34); r.setAttribute('rx', 6);
      r.setAttribute('fill', color); r.setAttribute('stroke', '#555');
      g.appendChild(r);
      /* A label longer than its box is cut; the whole shows on hover. */
      var fits = Math.floor((w - 16) / 7.5), text = String(label);
      var t = document.createElementNS(ns, 'text');
      t.setAttribute('x', x + 8); t.setAttribute('y', y + 22);
      t.textContent = text.length > fits ? text.slice(0, fits - 1) + '\u2026' : text;
      g.appendChild(t);
      var tip = document.createElementNS(ns, 'title');
      tip.textContent = text;
      g.appendChild(tip);
      svg.appendChild(g);
      return [x, y + 17, x + w];
    }
    function line(a, b) {
      var l = document.createElementNS(ns, 'line');
      l.setAttribute('x1', a[2]); l.setAttribute('y1', a[1]);
      l.setAttribute('x2', b[0]); l.setAttribute('y2', b[1]);
      l.setAttribute('stroke', '#888');
      svg.insertBefore(l, svg.firstChild);
    }
    var pub = box(10, h / 2 - 17, 250, alert.client + ' (' + alert.org + ')', '#fde2d0',
                  'publisher', alert.client);
    var tops = topics.map(function (t, i) {
      return box(320, 30 + i * 50, 260, t, '#e8eef8', 'topic', t);
    });
    tops.forEach(function (t) { line(pub, t); });
    recipients.forEach(function (r, i) {
      var b = box(660, 30 + i * 50, 230, r.client + ' (' + r.org + '): ' + r.messages,
                  '#e3f4e1', 'recipient', r.client);
      tops.forEach(function (t) { line(t, b); });
    });
    if (d.held > 0) {
      var hb = box(320, 30 + Math.max(topics.length, 1) * 50, 260, 'held: ' + d.held,
                   '#f3e0f7', 'held', 'held');
      line(pub, hb);
    }
    return svg;
  }

  function el(tag, text) {
    var e = document.createElement(tag);
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  /* The whole report in container: what the alert says, the flow's
   * numbers, the diagram and the table of recipients (the console; the
   * file writes the text and table itself, readable without scripts). */
  function render(d, container) {
    var alert = d.alert || {};
    var box = el('div');
    box.className = 'impact-report';
    box.appendChild(el('h3', 'Impact of a ' + alert.kind + ' alert'));
    var p = el('p', alert.detail);
    p.className = 'alert';
    box.appendChild(p);
    var facts = el('p');
    facts.appendChild(document.createTextNode('Flow '));
    facts.appendChild(el('b', d.flow));
    facts.appendChild(document.createTextNode(': ' + d.messages +
      ' messages in the window before the alert; ' + d.held +
      " of the flow's messages held from the window's start on. Action: "));
    facts.appendChild(el('b', alert.action));
    facts.appendChild(document.createTextNode('.'));
    box.appendChild(facts);
    var holder = el('div');
    holder.className = 'diagram';
    holder.appendChild(diagram(d));
    box.appendChild(holder);
    box.appendChild(el('h4', 'Recipients'));
    var table = el('table'), head = el('tr');
    ['organization', 'client', 'messages'].forEach(function (h) { head.appendChild(el('th', h)); });
    table.appendChild(head);
    (d.recipients || []).forEach(function (r) {
      var tr = el('tr');
      tr.appendChild(el('td', r.org));
      tr.appendChild(el('td', r.client));
      tr.appendChild(el('td', r.messages));
      table.appendChild(tr);
    });
    box.appendChild(table);
    while (container.firstChild) container.removeChild(container.firstChild);
    container.appendChild(box);
  }

  window.tfImpact = { diagram: diagram, render: render };

  /* The report file: its data is in the page itself. */
  var data = document.getElementById('impact'), target = document.getElementById('diagram');
  if (data && target)
    target.appendChild(diagram(JSON.parse(data.textContent)));
})();

// The DOM: the status bar, a card per tag (latest value, unit, chart), alarm
// toasts and error banners. Cards and charts are redrawn at most once per
// animation frame, however many windows arrived in between.

import { SeriesChart } from './chart.js';
import { formatValue } from './model.js';

const STATE_TEXT = { connecting: 'connecting', connected: 'connected', reconnecting: 'reconnecting', offline: 'offline', unauthorized: 'authorization lost, reload' };

export class View {
  constructor(doc, config) {
    this.doc = doc;
    this.config = config;
    this.cards = new Map(); // tag → { root, value, unit, label, stats, chart }
    this.dirty = new Set();
    this.frame = null;
    this.$ = (id) => doc.getElementById(id);
    this.$('channels').textContent = config.channels.join(', ');
    this.$('mode').textContent = config.mode === 'pusher' ? `pusher-js ${config.host || location.hostname}${config.port ? ':' + config.port : ''}` : `SSE ${config.sseUrl}`;
    window.addEventListener('resize', () => this.cards.forEach((c) => c.chart?.resize()));
  }

  showErrors(errors) {
    const box = this.$('errors');
    box.hidden = false;
    box.replaceChildren(...errors.map((e) => Object.assign(this.doc.createElement('li'), { textContent: e })));
  }

  showNotice(text) {
    const box = this.$('notice');
    box.hidden = false;
    box.textContent = text;
  }

  setState(state) {
    const el = this.$('state');
    el.dataset.state = state;
    el.textContent = STATE_TEXT[state] ?? state;
  }

  setFooter({ sinceMs, eventsPerSecond, samplesPerSecond, lastError }) {
    this.$('since').textContent = sinceMs === null ? 'no event yet' : `last event ${formatAge(sinceMs)} ago`;
    this.$('rate').textContent = `${eventsPerSecond.toFixed(1)} events/s · ${Math.round(samplesPerSecond).toLocaleString('en')} samples/s`;
    this.$('last-error').textContent = lastError ? `last error: ${lastError}` : '';
  }

  /** The series changed: redraw on the next frame. */
  touch(series) {
    this.dirty.add(series);
    if (this.frame === null) {
      this.frame = requestAnimationFrame(() => this.render());
    }
  }

  render() {
    this.frame = null;
    for (const s of this.dirty) {
      const card = this.card(s);
      card.value.textContent = formatValue(s.last);
      card.unit.textContent = s.unit;
      card.label.textContent = s.label;
      const w = s.window;
      card.stats.textContent = w ? `min ${formatValue(w.min)} · avg ${formatValue(w.avg)} · max ${formatValue(w.max)} · n ${w.count}` : '';
      const out = s.last !== null && ((s.hi !== null && s.last > s.hi) || (s.lo !== null && s.last < s.lo));
      card.root.classList.toggle('out-of-range', out);
      if (s.t.length) {
        card.chart ??= new SeriesChart(card.chartBox, s.unit);
        card.chart.update(s);
      }
    }
    this.dirty.clear();
  }

  card(s) {
    let card = this.cards.get(s.tag);
    if (card) {
      return card;
    }
    const el = (tag, cls, parent) => {
      const e = this.doc.createElement(tag);
      e.className = cls;
      parent?.append(e);
      return e;
    };
    const root = el('article', 'tag');
    root.dataset.tag = s.tag;
    const head = el('header', 'tag-head', root);
    el('span', 'tag-name', head).textContent = s.tag;
    const label = el('span', 'tag-label', head);
    const reading = el('div', 'reading', root);
    const value = el('span', 'value', reading);
    const unit = el('span', 'unit', reading);
    const chartBox = el('div', 'chart', root);
    const stats = el('div', 'window', root);
    card = { root, value, unit, label, stats, chartBox, chart: null };
    this.cards.set(s.tag, card);
    this.area(s.area).append(root);
    return card;
  }

  area(name) {
    const id = `area-${name || 'other'}`;
    let section = this.doc.querySelector(`section[data-area="${CSS.escape(id)}"]`);
    if (!section) {
      section = this.doc.createElement('section');
      section.className = 'area';
      section.dataset.area = id;
      const h = this.doc.createElement('h2');
      h.textContent = name || 'Tags';
      const grid = this.doc.createElement('div');
      grid.className = 'grid';
      section.append(h, grid);
      this.$('tags').append(section);
    }
    return section.querySelector('.grid');
  }

  /** A tag list arrived after its cards: move them into their areas. */
  regroup(series) {
    for (const s of series) {
      const card = this.cards.get(s.tag);
      if (card && card.root.parentElement !== this.area(s.area)) {
        this.area(s.area).append(card.root);
      }
      this.touch(s);
    }
    for (const section of this.doc.querySelectorAll('section.area')) {
      if (!section.querySelector('.tag')) {
        section.remove();
      }
    }
  }

  toast(alarm) {
    const box = this.$('toasts');
    const t = this.doc.createElement('div');
    t.className = `toast toast-${alarm.state}`;
    t.setAttribute('role', 'alert');
    const time = new Date(alarm.at).toLocaleTimeString('en-GB');
    const title = this.doc.createElement('strong');
    title.textContent = alarm.state === 'normal' ? `${alarm.tag} back to normal` : `${alarm.tag} ${alarm.state}`.trim();
    const body = this.doc.createElement('span');
    body.textContent = `${alarm.message} (${time})`;
    t.append(title, body);
    box.prepend(t);
    while (box.children.length > 6) {
      box.lastElementChild.remove();
    }
    setTimeout(() => t.remove(), this.config.toastMs);
  }
}

function formatAge(ms) {
  if (ms < 1000) {
    return `${(ms / 1000).toFixed(1)} s`;
  }
  if (ms < 60000) {
    return `${Math.round(ms / 1000)} s`;
  }
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

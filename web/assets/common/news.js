// 员工公告 (ADM-4): the banner both staff pages show under their top bar (the back office and the
// agents' console): the newest published announcement to staff not yet dismissed in this tab,
// replaced by each one that arrives live on the page's own staff socket.
import { api } from '/static/common/api.js';
import { h, mount, showTime } from '/static/common/dom.js';

const DISMISSED = 'hospital.staff.dismissed-announcements';

function dismissed() {
  try { return JSON.parse(sessionStorage.getItem(DISMISSED) || '[]'); } catch { return []; }
}

/** The banner's element (empty, hence hidden, until there is something to say). */
export function newsBar() {
  return h('div', { class: 'news', id: 'staff-news', role: 'status' });
}

/** Shows announcement `a` in `bar` (or nothing, if it was dismissed in this tab). */
export function showNews(bar, a) {
  if (!a || dismissed().includes(a.id)) return mount(bar);
  mount(bar, h('strong', {}, `员工公告：${a.title}`), h('span', { class: 'text' }, a.body),
    h('span', { class: 'muted' }, showTime(a.published_at || a.publish_at, true)),
    h('button', { class: 'secondary', id: 'dismiss-news', onclick: () => {
      sessionStorage.setItem(DISMISSED, JSON.stringify([...dismissed(), a.id].slice(-50)));
      mount(bar);
    } }, '知道了'));
}

/** Shows the newest published one not dismissed (on load, and after a reconnect). */
export async function latestNews(bar) {
  try {
    const list = await api('GET', '/api/v1/staff/announcements');
    showNews(bar, list.find((a) => !dismissed().includes(a.id)));
  } catch { /* the banner is a courtesy: the page works without it */ }
}

// The agents' console: login first; the live workspace comes with the chat feature.
import { api, token, messageOf, ApiError } from '/static/common/api.js';
import { h, mount } from '/static/common/dom.js';
import { loginView } from '/static/common/login.js';

const app = document.getElementById('app');
const TITLE = '客服工作台';

async function start() {
  if (!token()) return loginView(app, TITLE, start);
  try {
    const me = await api('GET', '/api/v1/staff/me');
    mount(app, h('header', { class: 'topbar' }, h('span', { class: 'title' }, TITLE),
      h('span', { class: 'spacer' }), h('span', {}, me.name || me.username)));
  } catch (x) {
    loginView(app, TITLE, start, x instanceof ApiError && x.status !== 401 ? messageOf(x) : '');
  }
}

start();

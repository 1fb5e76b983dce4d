// The back office: login first; its pages come with the back-office feature.
import { api, login, token, messageOf, ApiError } from '/static/common/api.js';
import { h, mount } from '/static/common/dom.js';

const app = document.getElementById('app');

function loginView(message) {
  const user = h('input', { name: 'username', placeholder: '工号 / 用户名', autocomplete: 'username' });
  const pass = h('input', { name: 'password', type: 'password', placeholder: '密码', autocomplete: 'current-password' });
  const err = h('div', { class: 'error', role: 'alert' }, message || '');
  const form = h('form', { class: 'login', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      await login(user.value.trim(), pass.value);
      start();
    } catch (x) {
      err.textContent = messageOf(x);
    }
  } }, h('h1', {}, '医院管理后台'), user, pass, h('button', { type: 'submit' }, '登录'), err);
  mount(app, form);
}

async function start() {
  if (!token()) return loginView();
  try {
    const me = await api('GET', '/api/v1/staff/me');
    mount(app, h('header', { class: 'topbar' }, h('span', { class: 'title' }, '医院管理后台'),
      h('span', { class: 'spacer' }), h('span', {}, me.name || me.username)));
  } catch (x) {
    loginView(x instanceof ApiError && x.status !== 401 ? messageOf(x) : '');
  }
}

start();
